"""scene3d.jobs.runner: where each task runs, and a whole job that fails ends readable."""

from __future__ import annotations

import uuid

import pytest

from scene3d.jobs import runner
from scene3d.jobs.paths import job_folder
from scene3d.settings import Settings
from scene3d.store import JobStore

JOB = str(uuid.uuid4())


@pytest.fixture
def job(tmp_path):
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 's.db'}")
    with JobStore(settings.database_url) as store:
        store.migrate()
        owner = store.create_user("owner", "not-a-real-hash")
        store.create_job(JOB, owner.id, "d", "s")
        yield settings, store


def test_only_worker_tasks_go_to_the_worker_and_only_with_a_cluster(tmp_path) -> None:
    local = Settings(home=tmp_path)
    cluster = Settings(home=tmp_path, ray_address="127.0.0.1:6380")
    assert not runner.runs_on_worker("matching", local)
    assert runner.runs_on_worker("matching", cluster)
    assert not runner.runs_on_worker("extract", cluster)


def test_worker_tasks_are_handed_to_the_model_worker(job, monkeypatch) -> None:
    settings, store = job
    handed: list[tuple[str, str]] = []

    class Worker:
        def run_task(self, name: str, job_id: str) -> None:
            handed.append((name, job_id))

    monkeypatch.setattr("scene3d.worker.remote_worker", lambda s: Worker())
    cluster = Settings(**{**settings.__dict__, "ray_address": "127.0.0.1:6380"})
    runner.dispatch_task("matching", JOB, store, cluster)
    assert handed == [("matching", JOB)]


def test_a_job_whose_upload_is_not_a_zip_ends_failed_with_the_engines_words(job) -> None:
    settings, store = job
    upload = job_folder(settings, JOB).upload
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"<html>not a zip</html>")
    runner.run_job(JOB, store, settings)
    failed = store.get_job(JOB)
    assert failed.stage == "failed"
    assert failed.error and "zip" in failed.error.lower() and "Traceback" not in failed.error


def test_a_vanished_job_is_skipped(job) -> None:
    settings, store = job
    missing = str(uuid.uuid4())
    runner.run_job(missing, store, settings)
    assert store.get_job(missing) is None
