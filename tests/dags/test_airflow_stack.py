"""The embedded Airflow for real: api-server, scheduler and dag-processor as separate
processes (as ``make up`` starts them), driven only through the REST client.

This is what catches configuration traps ``dag.test()`` cannot: components that disagree
on the JWT secret, tasks that cannot reach the Execution API, a REST body Airflow
refuses, a pool the scheduler does not know.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scene3d.airflow import airflow_commands, airflow_password
from scene3d.airflow_client import AirflowOrchestrator
from scene3d.jobs.paths import job_folder
from scene3d.names import GPU_POOL, RECONSTRUCTION_DAG, reconstruction_run_id
from scene3d.orchestrator import OrchestratorUnavailable
from scene3d.store import JobStore

pytestmark = [pytest.mark.slow, pytest.mark.bench]


def _stop(proc: subprocess.Popen) -> None:
    """Stop one component and the children it spawned (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def airflow(migrated, tmp_path_factory) -> Iterator[AirflowOrchestrator]:
    settings, env = migrated
    port = int(env["AIRFLOW__API__PORT"])
    commands = airflow_commands(port)
    logs = tmp_path_factory.mktemp("airflow-processes")
    procs: list[subprocess.Popen] = []
    try:
        for name in ("api-server", "scheduler", "dag-processor"):
            with (logs / f"{name}.log").open("w") as out:
                procs.append(
                    subprocess.Popen(
                        commands[name],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own group: stopped with its children
                    )
                )
        client = AirflowOrchestrator(
            f"http://127.0.0.1:{port}", settings.airflow_user, airflow_password(settings)
        )
        client.wait_until_healthy(120, ("metadatabase", "scheduler", "dag_processor"))
        client.ensure_pool(GPU_POOL, 1, "GPU-heavy scene3d tasks")
        deadline = time.monotonic() + 60
        while True:  # the DAG appears once the dag-processor has parsed the folder
            try:
                client.unpause(RECONSTRUCTION_DAG)
                break
            except OrchestratorUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield client
        client.close()
    finally:
        for proc in procs:
            _stop(proc)
        for name in ("api-server", "scheduler", "dag-processor"):
            print(f"--- {name} (tail) ---\n" + (logs / f"{name}.log").read_text()[-2000:])


def test_a_triggered_job_runs_to_success(airflow, migrated, bench_dir) -> None:
    settings, _ = migrated
    job_id = str(uuid.uuid4())
    with JobStore(settings.database_url) as store:
        owner = store.get_user("owner") or store.create_user("owner", "not-a-real-hash")
        store.create_job(job_id, owner.id, "middlebury", "temple")
    upload = job_folder(settings, job_id).upload
    upload.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(upload, "w") as archive:
        for image in sorted((bench_dir / "train" / "middlebury").glob("temple*.png")):
            archive.write(image, image.name)

    airflow.trigger_reconstruction(job_id)
    airflow.trigger_reconstruction(job_id)  # a client retry: 409, quietly ignored

    run_id = reconstruction_run_id(job_id)
    deadline = time.monotonic() + 150
    state = None
    while time.monotonic() < deadline:
        state = airflow.dag_run_state(RECONSTRUCTION_DAG, run_id)
        if state in ("success", "failed"):
            break
        time.sleep(2)
    assert state == "success"
    with JobStore(settings.database_url) as store:
        job = store.get_job(job_id)
    assert job is not None and (job.stage, job.progress) == ("success", 100)

    # Our log lines are in Airflow's task log, under the platform's log folder.
    task_logs = Path(settings.home, "logs", "airflow", f"dag_id={RECONSTRUCTION_DAG}")
    matching = list(task_logs.glob(f"run_id={run_id}/task_id=matching/attempt=*.log"))
    assert matching and f"job {job_id}: matching done" in matching[0].read_text()
