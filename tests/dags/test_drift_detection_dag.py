"""drift_detection_dag: its shape, and ``dag.test()`` in real Airflow over a job whose
photos drifted: retraining is triggered once, with the reason in its conf, and a second
run while that one is queued starts nothing."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from drift.profile import ReferenceProfile
from scene3d.drift_monitor import LATEST_FILE, TRIGGERED_FILE
from scene3d.jobs.drift_check import check_images
from scene3d.jobs.paths import job_folder
from scene3d.names import DRIFT_DAG
from scene3d.store import JobStore
from tests.dags.conftest import run_airflow
from tests.drift.conftest import make_image

TASKS = ["check_window", "should_retrain", "trigger_retraining", "record_trigger"]


@pytest.fixture(scope="module")
def parsed(platform) -> dict:
    _, env = platform
    return run_airflow(env, "inspect")


def test_shape_and_schedule(parsed) -> None:
    assert parsed["import_errors"] == {}
    assert parsed["heavy_modules"] == []  # Evidently, MLflow, the store: inside tasks only
    dag = parsed["dags"][DRIFT_DAG]
    assert dag["topological"] == TASKS
    # hourly, each run covering the hour since the previous one (a data-interval timetable)
    assert dag["timetable"] == "CronDataIntervalTimetable"
    assert dag["timetable_expression"] == "0 * * * *"  # @hourly
    assert dag["tasks"]["record_trigger"]["trigger_rule"].lower().endswith("none_failed")
    assert dag["catchup"] is False and dag["max_active_runs"] == 1
    assert dag["params"] == ["window_hours"]
    assert all(task["retries"] == 2 for task in dag["tasks"].values())


def _drifted_job(settings, tmp_path) -> str:
    """A reference of mid-grey textured photos, and a job of dark, blurred grey ones."""
    reference = ReferenceProfile.from_images(
        [make_image(tmp_path / f"r{i}.png", i) for i in range(40)], "synthetic"
    )
    reference.save(settings.drift_reference)
    dark = [
        make_image(tmp_path / f"d{i}.png", 100 + i, size=(80, 80), gain=0.15, blur=3, colour=False)
        for i in range(12)
    ]
    with JobStore(settings.database_url) as store:
        user = store.get_user("drift-user") or store.create_user("drift-user", "h")
        job = store.create_job(str(uuid.uuid4()), user.id, "d", "s")
    check_images(settings, dark, reference, job_folder(settings, job.id).drift)
    return job.id


def test_high_drift_triggers_retraining_once(migrated, tmp_path) -> None:
    settings, env = migrated
    job_id = _drifted_job(settings, tmp_path)

    first = run_airflow(env, "drift", "24", timeout=600)
    assert first["state"] == "success", first
    assert set(first["tasks"].values()) == {"success"}, first["tasks"]
    latest = json.loads((settings.drift_dir / LATEST_FILE).read_text())
    assert latest["severity"] == "high" and latest["jobs"] == [job_id]
    assert latest["n_images"] == 12 and latest["window"][1] - latest["window"][0] == 24 * 3600
    [retrain] = first["retraining_runs"]
    assert retrain["run_id"].startswith("drift__")
    assert retrain["conf"]["reason"].startswith("high drift")
    assert retrain["conf"]["drift_run"] == latest["run_id"]
    triggered = json.loads((settings.drift_dir / TRIGGERED_FILE).read_text())
    assert triggered["retrain_run"] == retrain["run_id"] and time.time() - triggered["at"] < 600
    runs = settings.drift_dir / "runs"
    assert any(p.name == "report.html" for p in runs.rglob("*"))

    second = run_airflow(env, "drift", "24", timeout=600)
    assert second["tasks"]["check_window"] == "success"
    assert second["tasks"]["trigger_retraining"] == "skipped"  # one is queued already
    assert [r["run_id"] for r in second["retraining_runs"]] == [retrain["run_id"]]
