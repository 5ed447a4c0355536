"""``experiment_pipeline_dag``: retrain, measure, and move ``champion`` only on a win.

Triggered by ``POST /drift/trigger-retrain`` (admins); one run at a time (a trigger
during a run gets that run back). Tasks, in order:

- ``reproduce`` (GPU pool): ``dvc repro`` of the benchmark pipeline (``dvc.yaml``) in the
  DVC workspace ``home/experiments``, the current champion being one of the candidates;
  unchanged stages are skipped; outputs and run cache are pushed to the DVC remote.
- ``log_runs``: MLflow experiment ``scene3d-experiments``, one parent run per DAG run with
  one child per candidate (parameters, per-dataset metrics, submission CSVs, config),
  ``dvc.lock`` and ``params.yaml`` attached.
- ``promote``: the best other candidate is registered as a new version of
  ``scene3d-reconstruction``; ``champion`` moves to it only if it beats the champion on the
  same benchmark hash by more than ``select.margin``; otherwise it is tagged ``challenger``.

The glue is :mod:`scene3d.dagkit`; the steps are :mod:`scene3d.experiments`.
"""

from __future__ import annotations

from airflow.sdk import DAG

from scene3d import dagkit
from scene3d.names import EXPERIMENT_DAG

with DAG(
    dag_id=EXPERIMENT_DAG,
    description="Benchmark candidates (DVC), log them to MLflow, move champion on a win",
    doc_md=__doc__,
    schedule=None,
    catchup=False,
    max_active_runs=1,
    # triggered only on demand: unpaused from the start, so a trigger never waits on a
    # platform start-up that had not seen this file yet
    is_paused_upon_creation=False,
    default_args=dict(dagkit.RETRY_POLICY),
    tags=["scene3d", "mlops"],
) as dag:
    dagkit.experiment_chain(["reproduce", "log_runs", "promote"], gpu_steps=["reproduce"])
