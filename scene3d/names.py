"""Names shared by the API, the DAG files, the platform and the UIs, defined once.

No imports: DAG files read these at parse time.
"""

RECONSTRUCTION_DAG = "reconstruction_dag"
"""One run reconstructs one uploaded job (run id :func:`reconstruction_run_id`)."""
DRIFT_DAG = "drift_detection_dag"
"""Scheduled drift check over recent uploads."""
EXPERIMENT_DAG = "experiment_pipeline_dag"
"""Evaluates candidate models on the benchmark and moves ``champion``."""
PLATFORM_DAGS = (RECONSTRUCTION_DAG, DRIFT_DAG, EXPERIMENT_DAG)
"""Every DAG the platform unpauses once Airflow is up (those present are unpaused)."""

GPU_POOL = "scene3d_gpu"
"""Airflow pool the GPU-heavy tasks run in; its slots bound concurrent GPU work."""

JOBS_EXPERIMENT = "scene3d-jobs"
"""MLflow experiment with one run per job."""


def reconstruction_run_id(job_id: str) -> str:
    """The one ``dag_run_id`` a job can ever have: repeating a trigger cannot start twice."""
    return f"job_{job_id}"


MODEL_NAME = "scene3d-reconstruction"
"""The registered MLflow model whose versions are engine configurations."""
REFERENCE_ARTIFACT = "reference_profile"
"""Key of the drift reference profile in a model version's artifacts."""
CHAMPION_ALIAS = "champion"
"""The alias of the version the model worker serves."""
MODELS_EXPERIMENT = "scene3d-models"
"""MLflow experiment holding the runs that logged registered model versions."""
DRIFT_EXPERIMENT = "scene3d-drift"
"""MLflow experiment with one run per scheduled drift check (``drift_detection_dag``)."""
EXPERIMENTS_EXPERIMENT = "scene3d-experiments"
"""MLflow experiment with one parent run per retraining run and a child per candidate."""
