"""scene3d.tracking: one MLflow run per job, found again by its tag (a real local store)."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.layout import RunPaths
from pipeline.reconstruct import ReconstructionResult
from scene3d.names import JOBS_EXPERIMENT, MODEL_NAME
from scene3d.settings import Settings
from scene3d.tracking import log_job_run


def _summary(job_id: str) -> ReconstructionResult:
    return ReconstructionResult(
        job_id=job_id,
        dataset="d",
        preset="sift",
        n_images=4,
        n_registered=3,
        n_points=120,
        clusters=[{"id": 0, "num_points3D": 120}],
        outliers=["x.png"],
        skipped=[],
        timings={"features": 1.5},
    )


def test_nothing_is_logged_without_a_tracking_server(tmp_path) -> None:
    job = SimpleNamespace(id="j", dataset_name="d", scene_name="s", preset="sift")
    settings = Settings(home=tmp_path)
    assert log_job_run(settings, job, RunPaths(tmp_path), _summary("j"), tmp_path) is None


@pytest.mark.slow
def test_a_retried_export_updates_the_jobs_one_run(tmp_path, monkeypatch) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)  # a sqlite:/// store keeps artifacts under ./mlruns
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    settings = Settings(home=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    paths = RunPaths(tmp_path / "work")
    paths.root.mkdir()
    paths.clusters.write_text('{"clusters": []}')
    paths.submission.write_text("dataset,scene,image,rotation_matrix,translation_vector\n")
    job_id = str(uuid.uuid4())
    job = SimpleNamespace(
        id=job_id,
        dataset_name="d",
        scene_name="s",
        preset="sift",
        model_name=MODEL_NAME,
        model_version="3",
        drift_severity="medium",
        drift_report={"severity": "medium", "share_drifted": 0.25},
    )
    drift = tmp_path / "drift"
    drift.mkdir()
    (drift / "report.json").write_text('{"severity": "medium"}')
    (drift / "report.html").write_text("<html></html>")
    first = log_job_run(settings, job, paths, _summary(job_id), drift)
    second = log_job_run(settings, job, paths, _summary(job_id), drift)
    assert first and first == second
    runs = mlflow.search_runs(experiment_names=[JOBS_EXPERIMENT], output_format="list")
    assert [r.info.run_id for r in runs] == [first]
    assert runs[0].data.metrics["registration_rate"] == 0.75
    assert runs[0].data.tags["job_id"] == job_id
    assert runs[0].data.params["model_version"] == "3"
    assert runs[0].data.tags["model_uri"] == f"models:/{MODEL_NAME}/3"
    assert runs[0].data.tags["drift_severity"] == "medium"
    assert runs[0].data.metrics["drift_share_drifted"] == 0.25
    listed = mlflow.MlflowClient().list_artifacts(first, "drift")
    assert sorted(Path(a.path).name for a in listed) == ["report.html", "report.json"]
