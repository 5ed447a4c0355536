"""The scheduled drift check that ``drift_detection_dag`` runs, step by step.

- :func:`check_window`: the photos of the jobs whose drift check ran in the run's interval
  (a job queued across the boundary counts in the interval its photos were looked at),
  pooled, against the champion's reference profile; the report (JSON and Evidently's HTML) kept in
  ``home/drift/runs/<run>``, logged to MLflow experiment ``scene3d-drift`` (one run per DAG
  run, found again by its tag: a retry never adds a second), and the verdict written to
  ``home/drift/latest.json``, which the API's Prometheus gauges read.
- :func:`retrain_request`: on ``high`` severity, the conf of an ``experiment_pipeline_dag``
  run (reason and drift run), unless one is queued or running, or the last run drift
  started is younger than the cool-down.
- :func:`record_trigger`: notes the start that happened, for the next cool-down.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from drift.report import SEVERITY_LEVELS, drift_report
from scene3d.jobs.drift_check import checked_between, pooled, reference_for, write_json
from scene3d.names import DRIFT_EXPERIMENT
from scene3d.settings import Settings
from scene3d.store import JobStore

log = logging.getLogger(__name__)

LATEST_FILE = "latest.json"
"""The latest scheduled verdict, in ``home/drift`` (read by ``GET /metrics``)."""
TRIGGERED_FILE = "retrain_triggered.json"
"""When drift last started retraining, in ``home/drift``."""
RUN_TAG = "drift_run"
"""Tag of a ``scene3d-drift`` MLflow run: the Airflow run it belongs to."""


def read_state(settings: Settings, name: str) -> dict[str, Any] | None:
    """A state file of ``home/drift`` (:data:`LATEST_FILE`, :data:`TRIGGERED_FILE`)."""
    try:
        return json.loads((settings.drift_dir / name).read_text())
    except (OSError, ValueError):
        return None


def _champion(settings: Settings) -> str | None:
    if not settings.mlflow_tracking_uri:
        return None
    from scene3d import registry

    try:
        return registry.champion_version(settings)
    except registry.RegistryError as exc:  # judged against the platform's own reference
        log.warning("no champion to take the drift reference from: %s", exc)
        return None


def check_window(settings: Settings, start: float, end: float, run_id: str) -> dict[str, Any]:
    """Drift of the uploads checked in ``[start, end)`` (epoch seconds); see the module."""
    with JobStore(settings.database_url) as store:
        jobs = checked_between(settings, store.list_jobs(), start, end)
    batch, job_ids = pooled(settings, jobs)
    version = _champion(settings)
    reference = reference_for(settings, version)
    folder = settings.drift_dir / "runs" / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    html = folder / "report.html" if reference is not None and batch.n_images else None
    report = drift_report(batch, reference, settings.drift_rules(), html=html)
    if reference is not None and not batch.n_images:
        report["reason"] = "no upload in this interval"
    result = {
        **report,
        "run_id": run_id,
        "window": [start, end],
        "jobs": job_ids,
        "model_version": version,
        "checked_at": time.time(),
    }
    write_json(folder / "report.json", result)
    result["mlflow_run_id"] = None
    if batch.n_images:  # an empty interval is no experiment worth a run
        try:
            result["mlflow_run_id"] = _log(settings, result, folder)
        except Exception:  # MLflow is a record: its outage must not stop the check
            log.exception("could not log drift run %s to MLflow", run_id)
    write_json(settings.drift_dir / LATEST_FILE, {k: v for k, v in result.items() if k != "checks"})
    log.info(
        "drift of %d images from %d jobs: %s (share %.2f)",
        result["n_images"],
        len(job_ids),
        result["severity"],
        result["share_drifted"],
    )
    return result


def _log(settings: Settings, result: dict[str, Any], folder: Path) -> str | None:
    if not settings.mlflow_tracking_uri:
        return None
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(DRIFT_EXPERIMENT)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(DRIFT_EXPERIMENT)
    )
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.{RUN_TAG} = '{result['run_id']}'", max_results=1
    )
    run_id = (
        found[0].info.run_id
        if found
        else client.create_run(
            experiment_id, run_name=f"drift-{result['run_id']}", tags={RUN_TAG: result["run_id"]}
        ).info.run_id
    )
    client.set_tag(run_id, "severity", result["severity"])
    client.set_tag(run_id, "reference", str(result.get("reference")))
    for key, value in (
        ("share_drifted", result["share_drifted"]),
        ("n_images", result["n_images"]),
        ("n_jobs", len(result["jobs"])),
        ("severity_level", SEVERITY_LEVELS[result["severity"]]),
    ):
        client.log_metric(run_id, key, float(value))
    for path in sorted(folder.glob("report.*")):
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id)
    return run_id


def retrain_request(
    settings: Settings, result: dict[str, Any], active_runs: int, now: float | None = None
) -> dict[str, Any] | None:
    """The conf of the retraining run drift asks for, or None (and why, in the log)."""
    now = time.time() if now is None else now
    if result.get("severity") != "high":
        log.info("severity %s: no retraining", result.get("severity"))
        return None
    if active_runs:
        log.info("retraining already queued or running: not starting another")
        return None
    last = read_state(settings, TRIGGERED_FILE)
    cooldown = settings.drift_retrain_cooldown_hours * 3600
    if last and now - float(last.get("at", 0)) < cooldown:
        log.info("retraining started by drift run %s is within the cool-down", last["drift_run"])
        return None
    return {
        "reason": (
            f"high drift: {result['share_drifted']:.0%} of the checks drifted over "
            f"{result['n_images']} images of {len(result['jobs'])} jobs"
        ),
        "drift_run": result["run_id"],
        "drift_mlflow_run": result.get("mlflow_run_id"),
    }


def record_trigger(settings: Settings, conf: dict[str, Any], retrain_run_id: str) -> None:
    """Note that drift started ``retrain_run_id`` now (the cool-down counts from here)."""
    write_json(
        settings.drift_dir / TRIGGERED_FILE,
        {"at": time.time(), "drift_run": conf["drift_run"], "retrain_run": retrain_run_id},
    )
