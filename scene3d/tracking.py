"""MLflow tracking of jobs: one run per job in experiment ``scene3d-jobs``.

Runs are found again by their ``job_id`` tag, so a retried export task updates the
job's run instead of adding a second one. Without a tracking server configured
(``settings.mlflow_tracking_uri`` empty) nothing is logged: ``scene3d serve`` has no MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scene3d.names import JOBS_EXPERIMENT
from scene3d.settings import Settings

if TYPE_CHECKING:
    from pipeline.layout import RunPaths
    from pipeline.reconstruct import ReconstructionResult
    from scene3d.store import JobRecord


def log_job_run(
    settings: Settings,
    job: JobRecord,
    paths: RunPaths,
    summary: ReconstructionResult,
    drift_folder: Path,
) -> str | None:
    """Log (or update) the job's run, with the drift check's files in ``drift_folder``;
    returns its run id, or None when tracking is off."""
    if not settings.mlflow_tracking_uri:
        return None
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment(JOBS_EXPERIMENT)
    existing = mlflow.search_runs(
        experiment_names=[JOBS_EXPERIMENT],
        filter_string=f"tags.job_id = '{job.id}'",
        output_format="list",
        max_results=1,
    )
    run_id = existing[0].info.run_id if existing else None
    with mlflow.start_run(run_id=run_id, run_name=f"job-{job.id[:8]}") as run:
        mlflow.set_tags({"job_id": job.id, "dataset": job.dataset_name, "scene": job.scene_name})
        if job.model_version:  # the MLflow UI links the run to the model version it used
            mlflow.set_tag("model_uri", f"models:/{job.model_name}/{job.model_version}")
        mlflow.log_params(
            {
                "preset": job.preset or settings.default_preset,
                "model_name": job.model_name or "none",
                "model_version": job.model_version or "none",
                "n_images": summary.n_images,
            }
        )
        metrics = {
            "registration_rate": summary.registration_rate,
            "n_points": float(summary.n_points),
            "n_clusters": float(len(summary.clusters)),
            **{f"seconds_{k}": float(v) for k, v in summary.timings.items()},
        }
        if job.drift_report:  # the drift check's verdict; its report and HTML beside it
            mlflow.set_tag("drift_severity", job.drift_severity)
            metrics["drift_share_drifted"] = float(job.drift_report.get("share_drifted", 0.0))
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(paths.clusters))
        mlflow.log_artifact(str(paths.submission))
        for name in ("report.json", "report.html"):
            if (drift_folder / name).is_file():
                mlflow.log_artifact(str(drift_folder / name), artifact_path="drift")
        return run.info.run_id
