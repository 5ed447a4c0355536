"""``reconstruction_dag``: one run reconstructs one uploaded job.

The API triggers it through the REST API with ``conf={"job_id": ...}`` and run id
``job_<job_id>``. One task per step of ``scene3d.jobs.flow.RECONSTRUCTION_TASKS``, in
order: extract -> drift_check -> matching -> triangulate -> decimate -> export. The tasks
are idempotent and record stage, progress and message in the job store themselves.

- ``max_active_runs`` = ``SCENE3D_MAX_CONCURRENT_JOBS`` (default 1): runs beyond it wait
  in Airflow's ``queued`` state and their job keeps stage ``queued`` until it starts.
- ``matching`` runs in the pool ``scene3d_gpu`` (its slots bound concurrent GPU work) and
  on the Ray Serve model worker when the platform runs one.
- Engine errors fail a task at once; anything else is retried twice with backoff. After
  the last try the job ends ``failed`` with a readable message.

The glue is :mod:`scene3d.dagkit`; this file only declares.
"""

from __future__ import annotations

from airflow.sdk import DAG

from scene3d import dagkit
from scene3d.jobs.flow import RECONSTRUCTION_TASKS
from scene3d.names import RECONSTRUCTION_DAG

with DAG(
    dag_id=RECONSTRUCTION_DAG,
    description="Photo ZIP of one job -> point clouds, poses CSV, cluster statistics",
    doc_md=__doc__,
    schedule=None,
    catchup=False,
    max_active_runs=dagkit.max_active_runs(),
    params={"job_id": dagkit.JOB_ID_PARAM},
    default_args=dagkit.job_default_args(),
    on_failure_callback=dagkit.mark_run_failed,
    tags=["scene3d"],
) as dag:
    dagkit.job_step_chain(RECONSTRUCTION_TASKS)
