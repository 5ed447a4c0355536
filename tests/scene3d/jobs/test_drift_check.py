"""scene3d.jobs.drift_check and scene3d.drift_monitor: which reference judges a job, a job's
kept check, the scheduled window, the retraining guard and its cool-down. Real files,
a real job store and (marked slow) a real MLflow registry."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from drift.profile import ReferenceProfile
from scene3d import drift_monitor, registry
from scene3d.jobs.drift_check import (
    FEATURES_FILE,
    HTML_FILE,
    check_job,
    ensure_platform_reference,
    job_features,
    reference_for,
)
from scene3d.jobs.paths import job_folder
from scene3d.names import REFERENCE_ARTIFACT
from scene3d.settings import Settings
from scene3d.store import JobStore
from tests.conftest import find_bench_dirs
from tests.drift.conftest import make_image


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'j.db'}")


@pytest.fixture
def store(settings: Settings):
    with JobStore(settings.database_url) as store:
        store.migrate()
        yield store


def _photos(folder: Path, seeds: range, **kwargs) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [make_image(folder / f"p{s}.png", s, **kwargs) for s in seeds]


def _job(store: JobStore, created_at: float | None = None) -> str:
    user = store.get_user("u") or store.create_user("u", "h")
    job = store.create_job(str(uuid.uuid4()), user.id, "d", "s")
    if created_at is not None:
        with store._write() as conn:
            from sqlalchemy import text

            conn.execute(
                text("UPDATE jobs SET created_at = :t WHERE id = :id"),
                {"t": created_at, "id": job.id},
            )
    return job.id


def test_without_any_reference_a_job_is_unknown(settings, store, tmp_path) -> None:
    job_id = _job(store)
    report = check_job(settings, store, store.get_job(job_id), _photos(tmp_path / "a", range(6)))
    assert report["severity"] == "unknown"
    assert store.get_job(job_id).drift_severity == "unknown"
    folder = job_folder(settings, job_id).drift
    assert (folder / FEATURES_FILE).is_file() and not (folder / HTML_FILE).exists()


def test_a_job_is_judged_by_the_platform_reference_and_kept(settings, store, tmp_path) -> None:
    ReferenceProfile.from_images(_photos(tmp_path / "r", range(40)), "mine").save(
        settings.drift_reference
    )
    job_id = _job(store)
    dark = _photos(tmp_path / "d", range(100, 112), gain=0.15, blur=3, colour=False)
    report = check_job(settings, store, store.get_job(job_id), dark)
    assert report["severity"] == "high" and report["reference"] == "mine (40 images)"
    job = store.get_job(job_id)
    assert job.has_drift and job.drift_report["share_drifted"] == report["share_drifted"]
    assert (job_folder(settings, job_id).drift / HTML_FILE).stat().st_size > 10_000
    kept = job_features(settings, job_id)
    assert kept.n_images == 12 and len(kept.descriptors) == 12


def test_a_broken_reference_file_is_no_reference(settings) -> None:
    settings.drift_reference.parent.mkdir(parents=True)
    settings.drift_reference.write_text('{"version": 1}')
    assert reference_for(settings, None) is None


def test_first_start_builds_the_reference_from_the_benchmark(settings) -> None:
    roots = find_bench_dirs()
    if not roots:
        pytest.skip("no shared benchmark: set SCENE3D_BENCH_DIR or place it in ../shared/data")
    path = ensure_platform_reference(settings)
    assert path == settings.drift_reference
    profile = ReferenceProfile.load(path)
    assert profile.n_images >= 30 and "bench" in profile.name
    stamp = path.stat().st_mtime_ns
    assert ensure_platform_reference(settings) == path and path.stat().st_mtime_ns == stamp


def test_the_window_pools_the_jobs_checked_in_the_interval(settings, store, tmp_path) -> None:
    """By when the photos were looked at, not when the job was created: a job queued across
    the end of an interval counts in the next one."""
    import os

    ReferenceProfile.from_images(_photos(tmp_path / "r", range(40)), "mine").save(
        settings.drift_reference
    )
    inside, outside = _job(store, created_at=100.0), _job(store, created_at=1500.0)
    for job_id, seeds, checked in ((inside, range(50, 56), 1500), (outside, range(60, 66), 5000)):
        check_job(settings, store, store.get_job(job_id), _photos(tmp_path / job_id, seeds))
        os.utime(job_folder(settings, job_id).drift / FEATURES_FILE, (checked, checked))
    _job(store, created_at=1500.0)  # no drift check yet: nothing to pool
    result = drift_monitor.check_window(settings, 900.0, 2000.0, "scheduled__x:1+00")
    assert result["jobs"] == [inside] and result["n_images"] == 6
    assert result["severity"] == "low" and result["mlflow_run_id"] is None
    latest = drift_monitor.read_state(settings, drift_monitor.LATEST_FILE)
    assert latest["run_id"] == "scheduled__x:1+00" and "checks" not in latest
    empty = drift_monitor.check_window(settings, 0.0, 10.0, "manual__y")
    assert empty["severity"] == "unknown" and empty["reason"] == "no upload in this interval"


def test_kept_features_of_another_version_are_left_out(settings, store, tmp_path) -> None:
    job_id = _job(store)
    check_job(settings, store, store.get_job(job_id), _photos(tmp_path / "a", range(6)))
    path = job_folder(settings, job_id).drift / FEATURES_FILE
    data = json.loads(path.read_text())
    del data["values"]["noise"]
    path.write_text(json.dumps(data))
    assert job_features(settings, job_id) is None
    batch, ids = drift_monitor.pooled(settings, [store.get_job(job_id)])
    assert batch.n_images == 0 and ids == []


def test_a_reference_of_the_former_format_is_rebuilt_from_the_benchmark(settings) -> None:
    if not find_bench_dirs():
        pytest.skip("no shared benchmark: set SCENE3D_BENCH_DIR or place it in ../shared/data")
    settings.drift_reference.parent.mkdir(parents=True)
    settings.drift_reference.write_text('{"version": 1, "samples": {"brightness": [0.5]}}')
    assert ensure_platform_reference(settings) == settings.drift_reference
    assert ReferenceProfile.load(settings.drift_reference).n_images >= 30


def test_a_failed_check_leaves_the_job_unknown(settings, store, monkeypatch) -> None:
    from scene3d.jobs import drift_check, tasks

    job_id = _job(store)
    folder = job_folder(settings, job_id)
    monkeypatch.setattr(tasks, "task_context", lambda *a: _Ctx(store.get_job(job_id), folder))

    def broken(*args):
        raise MemoryError("out of memory")

    monkeypatch.setattr(drift_check, "check_job", broken)
    tasks.drift_check(job_id, store, settings)
    job = store.get_job(job_id)
    assert job.drift_severity == "unknown"
    assert job.drift_report["reason"] == "the drift check failed: MemoryError"


class _Ctx:
    """What the drift task reads of its context: the job, its images, a timer."""

    def __init__(self, job, folder) -> None:
        self.job, self.folder = job, folder

    def images(self) -> list:
        return []

    def timed(self, step: str):
        import contextlib

        return contextlib.nullcontext()


HIGH = {"severity": "high", "share_drifted": 0.6, "n_images": 12, "jobs": ["j"], "run_id": "r1"}


def test_retraining_only_on_high_drift_with_none_running_and_after_the_cool_down(
    settings,
) -> None:
    assert drift_monitor.retrain_request(settings, {**HIGH, "severity": "medium"}, 0) is None
    assert drift_monitor.retrain_request(settings, HIGH, active_runs=1) is None
    conf = drift_monitor.retrain_request(settings, HIGH, 0, now=10_000.0)
    assert conf["drift_run"] == "r1" and "60%" in conf["reason"]
    drift_monitor.record_trigger(settings, conf, "drift__r1")
    at = drift_monitor.read_state(settings, drift_monitor.TRIGGERED_FILE)["at"]
    hours = settings.drift_retrain_cooldown_hours
    assert drift_monitor.retrain_request(settings, HIGH, 0, now=at + hours * 3600 - 60) is None
    assert drift_monitor.retrain_request(settings, HIGH, 0, now=at + hours * 3600 + 60)


def test_drift_window_of_a_run(monkeypatch) -> None:
    from datetime import UTC, datetime

    from scene3d import dagkit

    end = datetime(2026, 12, 6, 12, tzinfo=UTC)
    start = datetime(2026, 12, 6, 11, tzinfo=UTC)
    scheduled = {"data_interval_start": start, "data_interval_end": end}
    assert dagkit.drift_window(scheduled) == (start.timestamp(), end.timestamp())
    manual = {"data_interval_start": end, "data_interval_end": end, "params": {}}
    assert dagkit.drift_window(manual) == (end.timestamp() - 3600, end.timestamp())
    conf = {**manual, "dag_run": type("Run", (), {"conf": {"window_hours": 24}})()}
    assert dagkit.drift_window(conf) == (end.timestamp() - 86400, end.timestamp())


@pytest.mark.slow
def test_a_version_carries_its_reference_and_jobs_are_judged_by_it(
    settings, tmp_path, monkeypatch
) -> None:
    from dataclasses import replace

    monkeypatch.chdir(tmp_path)  # a sqlite:/// store keeps artifacts under ./mlruns
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    settings = replace(settings, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    ReferenceProfile.from_images(_photos(tmp_path / "p", range(8)), "platform").save(
        settings.drift_reference
    )
    own = tmp_path / "version_reference.json"
    ReferenceProfile.from_images(_photos(tmp_path / "v", range(20, 30)), "chosen-on").save(own)
    version = registry.ensure_champion(settings, artifacts={REFERENCE_ARTIFACT: own})
    assert reference_for(settings, version).name == "chosen-on"
    assert reference_for(settings, None).name == "platform"
    bare = registry.register_version(settings, registry.load_preset("fast"))
    assert reference_for(settings, bare).name == "platform"  # a version without one
    assert json.loads(own.read_text())["name"] == "chosen-on"
