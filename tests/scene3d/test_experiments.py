"""scene3d.experiments: two retraining runs with the real DVC pipeline (generated
benchmarks) and a real MLflow registry (local SQLite store), as experiment_pipeline_dag
runs them: champion moves on a win, a worse candidate stays a challenger, DVC reruns only
what changed, retried steps add nothing."""

from __future__ import annotations

import json

import pytest
import yaml

from pipeline.eval.synthetic import make_collection
from pipeline.presets import load_preset
from scene3d import experiments, registry
from scene3d.names import CHAMPION_ALIAS, EXPERIMENTS_EXPERIMENT, MODEL_NAME
from scene3d.settings import Settings

pytestmark = pytest.mark.slow

ONE = {"num_threads": 1}
GOOD = {"preset": "sift", "set": {"features": ONE, "matching": ONE, "mapping": ONE}}
# Nothing verifies with this many inliers: every dataset fails, the score is 0.
NOTHING_MATCHES = {"features": ONE, "matching": {**ONE, "min_num_inliers": 100000}, "mapping": ONE}
BAD = {"preset": "sift", "set": NOTHING_MATCHES}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrain")
    for name, seed in (("one", 3), ("two", 4)):
        make_collection(root / name, n_views=6, n_scenes=1, n_outliers=1, seed=seed)
    overlay = root / "overlay.yaml"
    settings = Settings(
        home=root / "home",
        mlflow_tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        experiment_params=str(overlay),
        dvc_remote=str(root / "remote"),
    )
    return root, overlay, settings


def _candidates(overlay, **candidates) -> None:
    data = {"benchmarks": {"bench": "one", "bench_imc": "two"}, "candidates": candidates}
    overlay.write_text(yaml.safe_dump(data))


def _runs(settings, run_id: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENTS_EXPERIMENT)
    return client.search_runs([experiment.experiment_id], f"tags.airflow_run_id = '{run_id}'")


def test_two_retraining_runs(setup, monkeypatch) -> None:
    from mlflow import MlflowClient

    root, overlay, settings = setup
    monkeypatch.chdir(root)  # a sqlite:/// store keeps artifacts under ./mlruns
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    client = MlflowClient(settings.mlflow_tracking_uri)
    bad = registry.register_version(settings, load_preset("sift", BAD["set"]))
    registry.set_champion(settings, bad)

    # Run 1: a good candidate against a champion that reconstructs nothing.
    _candidates(overlay, good=GOOD)
    experiments.reproduce(settings, "run1")
    parent = experiments.log_runs(settings, "run1")
    assert experiments.log_runs(settings, "run1") == parent  # a retry finds its runs again
    runs = _runs(settings, "run1")
    children = {r.data.tags["candidate"] for r in runs if r.info.run_id != parent}
    assert {"champion", "good"} <= children and len(runs) == len(children) + 1
    child = next(r for r in runs if r.data.tags.get("candidate") == "good")
    assert child.data.tags["mlflow.parentRunId"] == parent
    assert child.data.metrics["score"] > 50 and "bench.synthetic.mAA" in child.data.metrics
    outcome = experiments.promote(settings, "run1")
    assert outcome["outcome"] == "promoted" and outcome["previous"] == bad
    new = outcome["champion"]
    assert registry.champion_version(settings) == new
    assert experiments.promote(settings, "run1")["champion"] == new  # no second version
    version = client.get_model_version(MODEL_NAME, new)
    assert version.tags["airflow_run_id"] == "run1" and version.tags["benchmark_hash"]
    assert registry.load_version(settings, new).config == load_preset("sift", GOOD["set"])

    # Run 2: the champion is now good; a worse candidate joins; "good" is unchanged.
    sweep = settings.home / "experiments" / "experiments" / "sweep"
    good_result = (sweep / "good" / "result.json").stat().st_mtime_ns
    _candidates(overlay, good=GOOD, worse=BAD)
    experiments.reproduce(settings, "run2")
    assert (sweep / "good" / "result.json").stat().st_mtime_ns == good_result  # skipped
    experiments.log_runs(settings, "run2")
    outcome = experiments.promote(settings, "run2")
    assert outcome["outcome"] == "challenger", outcome
    assert registry.champion_version(settings) == new
    tags = client.get_model_version(MODEL_NAME, outcome["version"]).tags
    assert "needs more than +0.5" in tags["challenger"]
    assert client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version == int(new)
    lock = yaml.safe_load((settings.home / "experiments" / "dvc.lock").read_text())
    assert {"sweep@champion", "sweep@good", "sweep@worse", "select"} <= set(lock["stages"])
    pushed = list((root / "remote").rglob("*"))
    assert pushed  # outputs and run cache went to the DVC remote
    selected = json.loads((sweep.parent / "selected.json").read_text())
    assert {row["candidate"] for row in selected["table"]} == {"champion", "good", "worse"}
