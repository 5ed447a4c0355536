"""Airflow-side half of the DAG tests, run in a subprocess with ``airflow_env(...)``.

Airflow reads its configuration once, at import time, from the environment; running
it in a child process keeps the test process (and every other test) free of
Airflow's globals and of the temporary ``AIRFLOW_HOME``. Usage::

    python -m tests.dags.airflow_runner inspect
    python -m tests.dags.airflow_runner run <job_id>
    python -m tests.dags.airflow_runner drift <window_hours>

The result is printed as one JSON line prefixed with :data:`MARKER`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

MARKER = "AIRFLOW_RUNNER_RESULT "
HEAVY = ("pipeline", "drift", "torch", "pycolmap", "ray", "mlflow", "scene3d.store", "api")
"""Modules the dag-processor must not load to parse the DAG files."""


def _bag() -> Any:
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=settings.DAGS_FOLDER)


def inspect() -> dict[str, Any]:
    """Import the DAGs folder as the dag-processor would; describe what it found."""
    bag = _bag()
    dags: dict[str, Any] = {}
    for dag_id, dag in bag.dags.items():
        dags[dag_id] = {
            "schedule": None if dag.schedule is None else str(dag.schedule),
            "timetable": type(dag.timetable).__name__,
            "timetable_expression": getattr(dag.timetable, "expression", None),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "params": sorted(dag.params.keys()),
            "has_failure_callback": dag.on_failure_callback is not None,
            "tasks": {
                t.task_id: {
                    "upstream": sorted(t.upstream_task_ids),
                    "pool": t.pool,
                    "retries": t.retries,
                    "retry_delay": t.retry_delay.total_seconds(),
                    "retry_exponential_backoff": bool(t.retry_exponential_backoff),
                    "has_failure_callback": bool(t.on_failure_callback),
                    "trigger_rule": str(t.trigger_rule),
                }
                for t in dag.tasks
            },
            "topological": [t.task_id for t in dag.topological_sort()]
            if hasattr(dag, "topological_sort")
            else None,
        }
    loaded = [name for name in HEAVY if name in sys.modules]
    return {"import_errors": dict(bag.import_errors), "dags": dags, "heavy_modules": loaded}


def run(job_id: str) -> dict[str, Any]:
    """``dag.test()`` of reconstruction_dag for one job (tasks run in this process)."""
    from airflow.models.pool import Pool

    from scene3d.names import GPU_POOL, RECONSTRUCTION_DAG

    Pool.create_or_update_pool(GPU_POOL, 1, "GPU-heavy scene3d tasks", include_deferred=False)
    dag = _bag().get_dag(RECONSTRUCTION_DAG)
    dag_run = dag.test(run_conf={"job_id": job_id}, logical_date=None)
    tis = dag_run.get_task_instances()
    return {
        "state": str(dag_run.state),
        "tasks": {ti.task_id: str(ti.state) for ti in tis},
        "tries": {ti.task_id: ti.try_number for ti in tis},
    }


def drift(window_hours: str) -> dict[str, Any]:
    """``dag.test()`` of drift_detection_dag over the last ``window_hours``; the task
    states and the experiment_pipeline_dag runs the metadata database then holds."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from scene3d.names import DRIFT_DAG, EXPERIMENT_DAG

    bag = _bag()
    dag_run = bag.get_dag(DRIFT_DAG).test(
        run_conf={"window_hours": float(window_hours)}, logical_date=None
    )
    tis = dag_run.get_task_instances()
    with create_session() as session:
        runs = DagRun.find(dag_id=EXPERIMENT_DAG, session=session)
        retrain = [{"run_id": r.run_id, "state": str(r.state), "conf": r.conf} for r in runs]
    return {
        "state": str(dag_run.state),
        "tasks": {ti.task_id: str(ti.state) for ti in tis},
        "retraining_runs": retrain,
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["inspect"]:
        result = inspect()
    elif argv[:1] == ["run"] and len(argv) == 2:
        result = run(argv[1])
    elif argv[:1] == ["drift"] and len(argv) == 2:
        result = drift(argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(MARKER + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
