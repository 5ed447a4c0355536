"""``reconstruction_dag``: one run reconstructs one uploaded job.

The API triggers it through the REST API with ``conf={"job_id": ...}`` and run id
``job_<job_id>`` (see ``scene3d.airflow_client``). Each entry of ``scene3d.tasks.TASKS``
is one task, in order: extract -> drift_check -> matching -> triangulate -> decimate ->
export. The task functions are idempotent and record stage, progress and message in
the job store themselves; this file only wires them into Airflow.

Concurrency and queueing:
- ``max_active_runs`` = ``SCENE3D_MAX_CONCURRENT_JOBS`` (default 1). Runs beyond it wait
  in Airflow's ``queued`` state and their job keeps stage ``queued`` in the store (with
  progress 0) until its first task starts.
- ``matching`` (features and matching, the GPU-heavy part) runs in the pool
  ``scene3d_gpu``; its slots bound concurrent GPU work across runs.

Failures: errors of the engine (``Scene3DError``: bad upload, nothing matched) are the
same on every try, so they fail the task at once; anything else (a locked database, a
lost worker) is retried twice with exponential backoff from 10 s. After the last try
the task's ``on_failure_callback`` marks the job ``failed`` with a readable message.

Parsing must stay fast (the dag-processor re-parses this file regularly): the engine,
the store and torch are imported inside the task functions only.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param
from airflow.sdk.exceptions import AirflowFailException

from scene3d.airflow import GPU_POOL, RECONSTRUCTION_DAG

log = logging.getLogger("airflow.task")

TASK_IDS = ("extract", "drift_check", "matching", "triangulate", "decimate", "export")
"""The keys of ``scene3d.tasks.TASKS`` in order (the DAG file must not import the engine;
a test checks the two agree)."""
GPU_TASKS = frozenset({"matching"})


def _max_concurrent_jobs() -> int:
    raw = os.environ.get("SCENE3D_MAX_CONCURRENT_JOBS", "")
    try:
        value = int(raw) if raw.strip() else 1
    except ValueError:
        log.warning("SCENE3D_MAX_CONCURRENT_JOBS=%r is not a whole number; using 1", raw)
        return 1
    return max(1, value)


def _job_id(context: dict[str, Any]) -> str | None:
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    job_id = conf.get("job_id") or (context.get("params") or {}).get("job_id")
    return str(job_id) if job_id else None


def run_step(task_name: str, **context: Any) -> None:
    """Run one step of the job named in ``dag_run.conf["job_id"]``."""
    from pipeline.errors import Scene3DError
    from scene3d.settings import Settings
    from scene3d.store import JobStore
    from scene3d.tasks import TASKS

    job_id = _job_id(context)
    if not job_id:
        raise AirflowFailException('this DAG needs conf {"job_id": "<job id>"}')
    settings = Settings.from_env()
    store = JobStore(settings.database_url)
    start = time.perf_counter()
    log.info("job %s: %s started", job_id, task_name)
    try:
        TASKS[task_name](job_id, store, settings)
    except Scene3DError as exc:
        # Deterministic: a retry would fail the same way. AirflowFailException skips
        # the retries; the failure callback reads the engine's error from __cause__.
        log.error("job %s: %s failed: %s", job_id, task_name, exc)
        raise AirflowFailException(str(exc)) from exc
    finally:
        store.close()
    log.info("job %s: %s done in %.1f s", job_id, task_name, time.perf_counter() - start)


def _failure_message(exc: object, task_id: str) -> str:
    from scene3d.jobs import readable_error

    if isinstance(exc, AirflowFailException) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, BaseException):
        return readable_error(exc)
    # No exception object: the task process died or was stopped from outside.
    return f"internal error (task {task_id} stopped unexpectedly); see the Airflow task log"


def _mark_failed(job_id: str, message: str) -> None:
    from scene3d.settings import Settings
    from scene3d.store import JobStore

    store = JobStore(Settings.from_env().database_url)
    try:
        if store.mark_failed(job_id, message):  # False: the job had already ended
            log.error("job %s marked failed: %s", job_id, message)
    finally:
        store.close()


def mark_job_failed(context: dict[str, Any]) -> None:
    """Task ``on_failure_callback``, called after the last try: the job ends ``failed``."""
    job_id = _job_id(context)
    if job_id:
        ti = context.get("task_instance") or context.get("ti")
        _mark_failed(job_id, _failure_message(context.get("exception"), ti.task_id if ti else "?"))


def mark_run_failed(context: dict[str, Any]) -> None:
    """DAG ``on_failure_callback``: for runs that fail without a task callback (a run
    marked failed in the UI, a killed task process). The task's more precise message
    wins: ``mark_failed`` leaves jobs that already ended alone."""
    job_id = _job_id(context)
    run_id = getattr(context.get("dag_run"), "run_id", None) or context.get("run_id", "?")
    log.info("run %s of job %s failed (%s)", run_id, job_id, context.get("reason", ""))
    if job_id:
        _mark_failed(job_id, f"the Airflow run {run_id} failed; see its task logs")


with DAG(
    dag_id=RECONSTRUCTION_DAG,
    description="Photo ZIP of one job -> point clouds, poses CSV, cluster statistics",
    doc_md=__doc__,
    schedule=None,
    catchup=False,
    max_active_runs=_max_concurrent_jobs(),
    params={
        # A default is needed: Airflow builds a task context for the DAG failure callback
        # without the run's conf, and a required param then fails that callback.
        "job_id": Param(
            None,
            type=["null", "string"],
            description="Id of a job in the scene3d job store (its upload is already on disk)",
        )
    },
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
        "on_failure_callback": mark_job_failed,
    },
    on_failure_callback=mark_run_failed,
    tags=["scene3d"],
) as dag:
    previous = None
    for name in TASK_IDS:
        step = PythonOperator(
            task_id=name,
            python_callable=run_step,
            op_kwargs={"task_name": name},
            pool=GPU_POOL if name in GPU_TASKS else "default_pool",
        )
        if previous is not None:
            previous >> step
        previous = step
