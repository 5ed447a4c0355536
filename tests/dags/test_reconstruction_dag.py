"""reconstruction_dag: it parses, it has the documented shape, and ``dag.test()`` runs a
real (small) job end to end through the same task functions the local orchestrator uses.
"""

from __future__ import annotations

import uuid
import zipfile
from itertools import pairwise
from pathlib import Path

import pytest

from scene3d.jobs.paths import job_folder
from scene3d.names import GPU_POOL
from scene3d.settings import Settings
from scene3d.store import JobStore
from tests.dags.conftest import run_airflow

EXPECTED_TASKS = ["extract", "drift_check", "matching", "triangulate", "decimate", "export"]


@pytest.fixture(scope="module")
def parsed(platform) -> dict:
    _, env = platform
    return run_airflow(env, "inspect")


def test_dags_folder_imports_without_errors(parsed) -> None:
    assert parsed["import_errors"] == {}
    assert "reconstruction_dag" in parsed["dags"]


def test_parsing_loads_no_engine_store_or_framework(parsed) -> None:
    assert parsed["heavy_modules"] == []


def test_tasks_are_the_task_functions_in_order(parsed) -> None:
    from scene3d.jobs.tasks import TASKS

    dag = parsed["dags"]["reconstruction_dag"]
    assert list(TASKS) == EXPECTED_TASKS
    assert dag["topological"] == EXPECTED_TASKS
    assert set(dag["tasks"]) == set(EXPECTED_TASKS)
    for before, after in pairwise(EXPECTED_TASKS):
        assert dag["tasks"][after]["upstream"] == [before]
    assert dag["tasks"]["extract"]["upstream"] == []


def test_run_settings(parsed) -> None:
    dag = parsed["dags"]["reconstruction_dag"]
    assert dag["schedule"] is None
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert dag["params"] == ["job_id"]
    assert dag["has_failure_callback"]
    for task_id, task in dag["tasks"].items():
        assert task["retries"] == 2, task_id
        assert task["retry_delay"] == 10
        assert task["retry_exponential_backoff"]
        assert task["has_failure_callback"]
        assert task["pool"] == (GPU_POOL if task_id == "matching" else "default_pool")


def test_max_active_runs_follows_max_concurrent_jobs(platform) -> None:
    _, env = platform
    parsed = run_airflow({**env, "SCENE3D_MAX_CONCURRENT_JOBS": "3"}, "inspect")
    assert parsed["dags"]["reconstruction_dag"]["max_active_runs"] == 3


def _new_job(settings: Settings, scene: str, images: list[Path]) -> str:
    job_id = str(uuid.uuid4())
    with JobStore(settings.database_url) as store:
        owner = store.get_user("owner") or store.create_user("owner", "not-a-real-hash")
        store.create_job(job_id, owner.id, "dag-test", scene)
    upload = job_folder(settings, job_id).upload
    upload.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(upload, "w") as archive:
        for image in images:
            archive.write(image, image.name)
    return job_id


@pytest.mark.slow
@pytest.mark.bench
def test_dag_test_reconstructs_a_real_scene(migrated, bench_dir) -> None:
    settings, env = migrated
    images = sorted((bench_dir / "train" / "middlebury").glob("temple*.png"))
    assert len(images) == 16
    job_id = _new_job(settings, "temple", images)

    result = run_airflow(env, "run", job_id)

    assert result["state"] == "success", result
    assert set(result["tasks"].values()) == {"success"}
    with JobStore(settings.database_url) as store:
        job = store.get_job(job_id)
        clusters = store.get_clusters(job_id)
    assert job is not None
    assert (job.stage, job.progress, job.error) == ("success", 100, None)
    assert job.n_valid_images == 16
    assert job.registration_rate is not None and job.registration_rate > 0.8
    assert clusters and all(c.num_points3D > 0 for c in clusters)
    run = job_folder(settings, job_id).run
    assert run.submission.is_file()
    for cluster in clusters:
        assert (run.ply / cluster.filename).is_file()
    assert set(job.timings or {}) >= {"ingest", "features", "matching", "mapping", "export"}


@pytest.mark.slow
def test_unreconstructable_upload_ends_failed_with_a_readable_error(migrated, tmp_path) -> None:
    from pipeline.eval.synthetic import make_noise_image

    settings, env = migrated
    noise = []
    for i in range(3):
        make_noise_image(tmp_path / f"noise_{i}.png", seed=i)
        noise.append(tmp_path / f"noise_{i}.png")
    job_id = _new_job(settings, "noise", noise)

    result = run_airflow(env, "run", job_id)

    assert result["state"] == "failed", result
    with JobStore(settings.database_url) as store:
        job = store.get_job(job_id)
    assert job is not None
    assert job.stage == "failed"
    assert job.error and "no scene could be reconstructed" in job.error
    assert "Traceback" not in job.error
    # An engine error is the same on every try: the task fails at once, not after retries.
    assert result["tasks"]["export"] == "failed"
    assert result["tries"]["export"] == 1
