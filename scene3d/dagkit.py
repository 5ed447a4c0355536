"""What every scene3d DAG needs, so that ``dags/<name>.py`` files are short declarations.

- :func:`job_id_from`: the job a run is about (``dag_run.conf["job_id"]`` or the param),
- :func:`run_job_step`: the step runner (a task of :mod:`scene3d.jobs` with the store,
  sent to the model worker where :mod:`scene3d.jobs.runner` says so),
- :func:`mark_job_failed`, :func:`mark_run_failed`: failure callbacks that end the job
  ``failed`` with a readable error,
- :data:`RETRY_POLICY`, :func:`pool_for`, :func:`max_active_runs`: retries, pools and
  concurrency, from the settings,
- :func:`job_step_chain`: one task per step of a flow, in order;
- :func:`experiment_chain`, :func:`run_experiment_step`: the same for the retraining
  steps of :mod:`scene3d.experiments`;
- :func:`drift_chain`: the scheduled drift check of :mod:`scene3d.drift_monitor`, and the
  guarded start of retraining it may ask for.

Parsing must stay fast (the dag-processor re-parses DAG files regularly): this module
imports only Airflow's SDK, the settings and the light names at the top; the engine, the
store and torch are imported inside the functions that tasks run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

from scene3d.jobs.flow import WORKER_TASKS
from scene3d.names import EXPERIMENT_DAG, GPU_POOL
from scene3d.settings import Settings

log = logging.getLogger("airflow.task")

JOB_ID_PARAM = Param(
    None,
    type=["null", "string"],
    description="Id of a job in the scene3d job store (its upload is already on disk)",
)
"""The ``job_id`` param of job DAGs. It has a default: Airflow builds a task context for
the DAG failure callback without the run's conf, and a required param fails that callback."""


def job_id_from(context: dict[str, Any]) -> str | None:
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    job_id = conf.get("job_id") or (context.get("params") or {}).get("job_id")
    return str(job_id) if job_id else None


def run_job_step(task_name: str, **context: Any) -> None:
    """Run one step of the job named in ``dag_run.conf["job_id"]``.

    Errors of the engine (``Scene3DError``: bad upload, nothing matched) are the same on
    every try, so they fail the task at once; anything else is retried.
    """
    from pipeline.errors import Scene3DError
    from scene3d.jobs.runner import dispatch_task
    from scene3d.store import JobStore

    job_id = job_id_from(context)
    if not job_id:
        raise AirflowFailException('this DAG needs conf {"job_id": "<job id>"}')
    settings = Settings.from_env()
    store = JobStore(settings.database_url)
    start = time.perf_counter()
    log.info("job %s: %s started", job_id, task_name)
    try:
        dispatch_task(task_name, job_id, store, settings)
    except Scene3DError as exc:
        # AirflowFailException skips the retries; the failure callback reads the engine's
        # error from __cause__.
        log.error("job %s: %s failed: %s", job_id, task_name, exc)
        raise AirflowFailException(str(exc)) from exc
    finally:
        store.close()
    log.info("job %s: %s done in %.1f s", job_id, task_name, time.perf_counter() - start)


def _failure_message(exc: object, task_id: str) -> str:
    from scene3d.jobs.progress import readable_error

    if isinstance(exc, AirflowFailException) and exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, BaseException):
        return readable_error(exc)
    # No exception object: the task process died or was stopped from outside.
    return f"internal error (task {task_id} stopped unexpectedly); see the Airflow task log"


def _mark_failed(job_id: str, message: str) -> None:
    from scene3d.store import JobStore

    store = JobStore(Settings.from_env().database_url)
    try:
        if store.mark_failed(job_id, message):  # False: the job had already ended
            log.error("job %s marked failed: %s", job_id, message)
    finally:
        store.close()


def mark_job_failed(context: dict[str, Any]) -> None:
    """Task ``on_failure_callback``, called after the last try: the job ends ``failed``."""
    job_id = job_id_from(context)
    if job_id:
        ti = context.get("task_instance") or context.get("ti")
        _mark_failed(job_id, _failure_message(context.get("exception"), ti.task_id if ti else "?"))


def mark_run_failed(context: dict[str, Any]) -> None:
    """DAG ``on_failure_callback``: for runs that fail without a task callback (a run
    marked failed in the UI, a killed task process). The task's more precise message
    wins: ``mark_failed`` leaves jobs that already ended alone."""
    job_id = job_id_from(context)
    run_id = getattr(context.get("dag_run"), "run_id", None) or context.get("run_id", "?")
    log.info("run %s of job %s failed (%s)", run_id, job_id, context.get("reason", ""))
    if job_id:
        _mark_failed(job_id, f"the Airflow run {run_id} failed; see its task logs")


def run_experiment_step(step: str, **context: Any) -> Any:
    """Run step ``step`` of :mod:`scene3d.experiments` for this DAG run (its result goes
    to XCom, so the Airflow UI shows whether ``champion`` moved)."""
    from scene3d import experiments

    run_id = getattr(context.get("dag_run"), "run_id", None) or str(context.get("run_id"))
    return experiments.STEPS[step](Settings.from_env(), run_id)


def experiment_chain(steps: Iterable[str], gpu_steps: Iterable[str]) -> list[PythonOperator]:
    """One task per retraining step, in order; ``gpu_steps`` run in the GPU pool."""
    heavy = set(gpu_steps)
    return _chain(
        steps, run_experiment_step, "step", lambda s: GPU_POOL if s in heavy else "default_pool"
    )


DRIFT_WINDOW_PARAM = Param(
    None,
    type=["null", "number"],
    exclusiveMinimum=0,
    description="Hours before the run's end to check (default: the scheduled interval)",
)
"""The ``window_hours`` param of ``drift_detection_dag``: a manual run checks this many
hours of uploads (a manual run's interval is empty)."""


def drift_window(context: dict[str, Any]) -> tuple[float, float]:
    """The run's interval in epoch seconds: ``window_hours`` back from its end when given,
    else the scheduled interval, else the last hour."""
    end = context.get("data_interval_end")
    start = context.get("data_interval_start")
    end_s = end.timestamp() if end is not None else time.time()
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    hours = conf.get("window_hours") or (context.get("params") or {}).get("window_hours")
    if hours:
        return end_s - float(hours) * 3600, end_s
    if start is not None and start.timestamp() < end_s:
        return start.timestamp(), end_s
    return end_s - 3600, end_s


def check_drift_window(**context: Any) -> dict[str, Any]:
    """Task ``check_window``: the interval's uploads against the champion's reference."""
    from scene3d import drift_monitor

    start, end = drift_window(context)
    run_id = getattr(context.get("dag_run"), "run_id", None) or str(context.get("run_id"))
    return drift_monitor.check_window(Settings.from_env(), start, end, run_id)


def should_retrain(**context: Any) -> dict[str, Any] | bool:
    """Task ``should_retrain``: the retraining conf, or False to skip the start. Tasks
    cannot query Airflow's database: the count of active runs comes from the Task SDK."""
    from scene3d import drift_monitor

    ti = context["ti"]
    result = ti.xcom_pull(task_ids="check_window")
    active = ti.get_dr_count(dag_id=EXPERIMENT_DAG, states=["queued", "running"])
    return drift_monitor.retrain_request(Settings.from_env(), result, active) or False


def record_retrain_trigger(**context: Any) -> None:
    """Task ``record_trigger``: the cool-down starts when retraining did."""
    from scene3d import drift_monitor

    conf = context["ti"].xcom_pull(task_ids="should_retrain")
    run_id = getattr(context.get("dag_run"), "run_id", None) or str(context.get("run_id"))
    drift_monitor.record_trigger(Settings.from_env(), conf, retrain_run_id(run_id))


def retrain_run_id(drift_run_id: str) -> str:
    """The one retraining run a drift run can start (a retried trigger finds it)."""
    return f"drift__{drift_run_id}"


def drift_chain() -> list[Any]:
    """check_window -> should_retrain -> trigger_retraining -> record_trigger."""
    from airflow.providers.standard.operators.python import ShortCircuitOperator
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    check = PythonOperator(task_id="check_window", python_callable=check_drift_window)
    decide = ShortCircuitOperator(task_id="should_retrain", python_callable=should_retrain)
    trigger = TriggerDagRunOperator(
        task_id="trigger_retraining",
        trigger_dag_id=EXPERIMENT_DAG,
        trigger_run_id=retrain_run_id("{{ run_id }}"),
        conf="{{ ti.xcom_pull(task_ids='should_retrain') }}",  # a dict: native rendering
        logical_date=None,
        skip_when_already_exists=True,
        wait_for_completion=False,
    )
    # none_failed: a retried trigger that found its run already there counts as started
    record = PythonOperator(
        task_id="record_trigger",
        python_callable=record_retrain_trigger,
        trigger_rule="none_failed",
    )
    check >> decide >> trigger >> record
    return [check, decide, trigger, record]


RETRY_POLICY: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}
"""Transient failures (a locked database, a lost worker) are retried twice with
exponential backoff from 10 s."""


def job_default_args() -> dict[str, Any]:
    """``default_args`` of a job DAG: the retry policy and the failure callback."""
    return {**RETRY_POLICY, "on_failure_callback": mark_job_failed}


def pool_for(task_id: str) -> str:
    """The GPU pool for the tasks that run on the model worker, else Airflow's default."""
    return GPU_POOL if task_id in WORKER_TASKS else "default_pool"


def max_active_runs(settings: Settings | None = None) -> int:
    """Runs of a job DAG at once (``settings.max_concurrent_jobs``); extra runs queue."""
    return (settings or Settings.from_env()).max_concurrent_jobs


def job_step_chain(task_ids: Iterable[str]) -> list[PythonOperator]:
    """One task per job step, each after the previous one (call inside ``with DAG(...)``)."""
    return _chain(task_ids, run_job_step, "task_name", pool_for)


def _chain(
    task_ids: Iterable[str],
    call: Callable[..., Any],
    name_argument: str,
    pool_of: Callable[[str], str],
) -> list[PythonOperator]:
    """Tasks ``call(<name_argument>=task_id)``, each after the previous one."""
    tasks: list[PythonOperator] = []
    for task_id in task_ids:
        task = PythonOperator(
            task_id=task_id,
            python_callable=call,
            op_kwargs={name_argument: task_id},
            pool=pool_of(task_id),
        )
        if tasks:
            tasks[-1] >> task
        tasks.append(task)
    return tasks
