"""``drift_detection_dag``: are recent uploads still like the data the champion was chosen on?

Scheduled (``SCENE3D_DRIFT_SCHEDULE``, hourly by default; catchup off; one run at a time).
Tasks, in order:

- ``check_window``: the image features of the jobs created in the run's interval (a manual
  run: ``window_hours`` back from now) against the champion's reference profile, with
  Evidently; the report is logged to MLflow experiment ``scene3d-drift`` and its verdict
  feeds the API's ``drift_window_*`` Prometheus gauges;
- ``should_retrain``: only on ``high`` severity, never while ``experiment_pipeline_dag`` is
  queued or running, and at most once per ``SCENE3D_DRIFT_RETRAIN_COOLDOWN_HOURS``;
  otherwise the rest is skipped;
- ``trigger_retraining``: starts ``experiment_pipeline_dag`` with the reason and the drift
  run in its conf;
- ``record_trigger``: the cool-down starts.

The glue is :mod:`scene3d.dagkit`; the steps are :mod:`scene3d.drift_monitor`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, CronDataIntervalTimetable

from scene3d import dagkit
from scene3d.names import DRIFT_DAG
from scene3d.settings import Settings

with DAG(
    dag_id=DRIFT_DAG,
    description="Recent uploads against the champion's drift reference; retrain on high drift",
    doc_md=__doc__,
    # A data-interval timetable: each run covers the time since the previous one (a plain
    # cron string gives an empty interval in Airflow 3).
    schedule=CronDataIntervalTimetable(Settings.from_env().drift_schedule, timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    params={"window_hours": dagkit.DRIFT_WINDOW_PARAM},
    render_template_as_native_obj=True,  # the retraining conf is rendered as a dict
    default_args=dict(dagkit.RETRY_POLICY),
    tags=["scene3d", "mlops"],
) as dag:
    dagkit.drift_chain()
