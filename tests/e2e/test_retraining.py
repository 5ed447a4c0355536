"""Retraining end to end on the shared platform: `POST /drift/trigger-retrain` (admins only,
one run at a time) runs experiment_pipeline_dag in Airflow (DVC in its workspace, MLflow
parent and child runs, a new registered version); `champion` moves only on a win, a worse
candidate stays `challenger`; the next job runs with the new champion and records it."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
import yaml

from mlflow import MlflowClient
from pipeline.presets import load_preset
from scene3d import registry
from scene3d.names import EXPERIMENT_DAG, EXPERIMENTS_EXPERIMENT, MODEL_NAME
from scene3d.settings import Settings
from tests.e2e.platform import (
    ADMIN_PASSWORD,
    SCENE3D,
    follow,
    served_version,
    token,
    upload_temple,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

USER_PASSWORD = "e2e-user-password-1"
# Nothing verifies with this many inliers: every dataset fails and scores 0.
NOTHING_MATCHES = {"matching": {"min_num_inliers": 100000}}


def _measure_on(platform, bench_dir, candidates: dict) -> None:
    """What the next retraining run measures: one small dataset, these candidates."""
    params = {
        "benchmarks": {"bench": str(bench_dir), "bench_imc": str(bench_dir)},
        "datasets": {"bench": ["sacre_coeur"], "bench_imc": []},
        "candidates": candidates,
    }
    (platform["home"] / "experiment-params.yaml").write_text(yaml.safe_dump(params))


def _finished_run(platform, run_id: str, timeout: float = 900) -> dict:
    from scene3d.airflow import airflow_password

    settings = Settings(home=platform["home"])
    headers = token(platform["airflow"], settings.airflow_user, airflow_password(settings))
    url = f"{platform['airflow']}/api/v2/dags/{EXPERIMENT_DAG}/dagRuns/{run_id}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(url, headers=headers, timeout=10).json()
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(2)
    raise AssertionError(f"retraining run {run_id} did not finish in {timeout} s")


def _mlflow_runs(platform, run_id: str) -> list[dict]:
    mlflow = platform["mlflow"]
    experiment = httpx.get(
        f"{mlflow}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": EXPERIMENTS_EXPERIMENT},
    ).json()["experiment"]
    body = {
        "experiment_ids": [experiment["experiment_id"]],
        "filter": f"tags.airflow_run_id = '{run_id}'",
    }
    return httpx.post(f"{mlflow}/api/2.0/mlflow/runs/search", json=body).json()["runs"]


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_retraining_moves_champion_only_on_a_win(platform, bench_dir) -> None:
    base = platform["api"]
    trigger = f"{base}/drift/trigger-retrain"
    subprocess.run(
        [SCENE3D, "users", "add", "bob", "--password", USER_PASSWORD],
        env=platform["env"], check=True, capture_output=True,
    )  # fmt: skip
    assert httpx.post(trigger, headers=token(base, "bob", USER_PASSWORD)).status_code == 403

    settings = Settings(home=platform["home"], mlflow_tracking_uri=platform["mlflow"])
    client = MlflowClient(platform["mlflow"])
    weak = registry.register_version(
        settings, load_preset("sift", NOTHING_MATCHES), tags={"origin": "e2e: matches nothing"}
    )
    registry.set_champion(settings, weak)
    admin = token(base, "admin", ADMIN_PASSWORD)
    try:
        # 1. A better candidate: it becomes a version, and champion.
        _measure_on(platform, bench_dir, {"good": {"preset": "sift"}})
        first = httpx.post(trigger, headers=admin, timeout=30)
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "triggered"
        run_id = first.json()["run_id"]
        again = httpx.post(trigger, headers=admin, timeout=30).json()
        assert again["run_id"] == run_id  # one run at a time: the running one answers
        assert _finished_run(platform, run_id)["state"] == "success"
        runs = _mlflow_runs(platform, run_id)
        parent = [r for r in runs if _tags(r).get("kind") == "retraining"]
        children = {_tags(r)["candidate"] for r in runs if "candidate" in _tags(r)}
        assert len(parent) == 1 and {"champion", "good"} <= children
        new = registry.champion_version(settings)
        assert new != weak
        assert client.get_model_version(MODEL_NAME, new).tags["airflow_run_id"] == run_id

        # 2. A worse candidate: a version tagged challenger; champion stays.
        _measure_on(platform, bench_dir, {"worse": {"preset": "sift", "set": NOTHING_MATCHES}})
        second = httpx.post(trigger, headers=admin, timeout=30).json()["run_id"]
        assert second != run_id
        assert _finished_run(platform, second)["state"] == "success"
        assert registry.champion_version(settings) == new
        query = f"name = '{MODEL_NAME}' and tags.airflow_run_id = '{second}'"
        (challenger,) = client.search_model_versions(query)
        assert "needs more than" in challenger.tags["challenger"]

        # 3. The next job runs with the new champion and records it.
        served_version(base, new)
        job_id = upload_temple(base, admin, bench_dir)
        status, _ = follow(base, admin, job_id)
        assert status["stage"] == "success", status
        assert (status["model_name"], status["model_version"]) == (MODEL_NAME, new)
    finally:
        registry.set_champion(settings, "1")
    served_version(base, "1")
