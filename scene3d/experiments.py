"""One retraining run of ``experiment_pipeline_dag``, step by step (each a task, each safe
to run again):

- :func:`reproduce`: the benchmark pipeline (``dvc.yaml``) in a DVC workspace of the state
  folder (``home/experiments``), with the current champion as one of the candidates, then
  its outputs and run cache pushed to the DVC remote;
- :func:`log_runs`: one parent run in MLflow experiment ``scene3d-experiments`` per DAG run
  and one child per candidate variant, found again by tags so a retry adds nothing;
- :func:`promote`: the best candidate other than the champion becomes a new version;
  ``champion`` moves to it only when it beats the champion's score on the same benchmark
  hash (measured in the same run) by more than the margin, otherwise the version is tagged
  ``challenger`` with the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import PipelineConfig
from scene3d import registry
from scene3d.airflow import REPO_ROOT
from scene3d.names import EXPERIMENTS_EXPERIMENT, MODEL_NAME, REFERENCE_ARTIFACT
from scene3d.settings import Settings

log = logging.getLogger(__name__)

CHAMPION = "champion"
"""The candidate name under which the current champion takes part in every sweep."""
RUN_TAG = "airflow_run_id"
"""Tag naming the DAG run on the parent run, the child runs and the registered version."""
OUTPUTS = Path("experiments")
"""Where the stages of ``dvc.yaml`` write, inside the workspace."""


def workspace_dir(settings: Settings) -> Path:
    return settings.home / "experiments"


def _overlay(params: dict[str, Any], path: Path) -> dict[str, Any]:
    """``params`` with the top-level keys of YAML file ``path`` replaced; relative
    benchmark folders in it are relative to that file."""
    extra = yaml.safe_load(path.read_text()) or {}
    for name, folder in (extra.get("benchmarks") or {}).items():
        extra["benchmarks"][name] = str((path.parent / folder).resolve())
    return {**params, **extra}


def pipeline_dir(settings: Settings) -> Path:
    """The folder holding ``dvc.yaml`` and ``params.yaml``: ``SCENE3D_PIPELINE_DIR`` (an
    image copies them apart from the installed package), else the source checkout."""
    return Path(settings.pipeline_dir) if settings.pipeline_dir else REPO_ROOT


def base_params(settings: Settings) -> dict[str, Any]:
    """The pipeline's ``params.yaml`` with the settings' overlay, benchmark folders made
    absolute (relative ones are relative to the file that names them)."""
    source = pipeline_dir(settings)
    params = yaml.safe_load((source / "params.yaml").read_text())
    params["benchmarks"] = {
        name: str((source / folder).resolve()) for name, folder in params["benchmarks"].items()
    }
    if settings.experiment_params:
        params = _overlay(params, Path(settings.experiment_params))
    return params


def write_params(settings: Settings, workspace: Path, champion_version: str) -> dict[str, Any]:
    """The workspace's ``params.yaml``: the repository's, the settings' overlay, and the
    champion (its whole configuration in ``champion.json``) as the first candidate."""
    params = base_params(settings)
    champion = registry.load_version(settings, champion_version)
    (workspace / "champion.json").write_text(json.dumps(champion.config.to_dict(), indent=2))
    others = {k: v for k, v in params["candidates"].items() if k != CHAMPION}
    # The version is part of the spec, so a new champion is swept again (DVC sees it change).
    spec = {"config": "champion.json", "version": champion_version}
    params["candidates"] = {CHAMPION: spec, **others}
    membership = params.setdefault("membership", {})
    if membership.get("base") not in params["candidates"]:
        membership["base"] = CHAMPION  # the pairs to learn from must be swept
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def _dvc(workspace: Path, *args: str) -> None:
    bin_dir = Path(sys.executable).parent  # dvc and the stages' `scene3d` live here
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log.info("dvc %s (in %s)", " ".join(args), workspace)
    subprocess.run([str(bin_dir / "dvc"), *args], cwd=workspace, env=env, check=True)


def prepare_workspace(settings: Settings) -> Path:
    """The DVC workspace (created once, without git) with this run's pipeline and params."""
    workspace = workspace_dir(settings)
    workspace.mkdir(parents=True, exist_ok=True)
    if not (workspace / ".dvc").is_dir():
        _dvc(workspace, "init", "--no-scm", "--quiet")
        _dvc(workspace, "config", "core.analytics", "false")
    remote = settings.dvc_remote or str(settings.home / "dvc-remote")
    _dvc(workspace, "remote", "add", "--default", "--force", "state", remote)
    shutil.copyfile(pipeline_dir(settings) / "dvc.yaml", workspace / "dvc.yaml")
    write_params(settings, workspace, registry.champion_version(settings))
    return workspace


def reproduce(settings: Settings, run_id: str) -> None:
    """``dvc repro`` (unchanged stages skipped), then push outputs and run cache."""
    workspace = prepare_workspace(settings)
    _dvc(workspace, "repro")
    _dvc(workspace, "push", "--run-cache", "--quiet")


def benchmark_hash(workspace: Path) -> str:
    """One hash of the benchmark data the run measured on (the validate stage's
    dependencies in ``dvc.lock``): equal hashes, equal photos and labels."""
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    deps = lock["stages"]["validate"]["deps"]
    joined = ";".join(sorted(f"{d['path']}:{d['md5']}" for d in deps))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def _read(workspace: Path, *parts: str) -> Any:
    return json.loads(workspace.joinpath(OUTPUTS, *parts).read_text())


def _label(row: dict[str, Any]) -> str:
    return row["candidate"] + ("+membership" if row["membership"] == "learned" else "")


def _find_run(client: Any, experiment_id: str, tags: dict[str, str]) -> str | None:
    query = " and ".join(f"tags.{key} = '{value}'" for key, value in tags.items())
    runs = client.search_runs([experiment_id], filter_string=query, max_results=1)
    return runs[0].info.run_id if runs else None


def _child_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    values = {"score": metrics["score"], "wall_s": metrics["wall_s"],
              "peak_rss_mb": metrics["peak_rss_mb"]}  # fmt: skip
    for bench, result in metrics["benchmarks"].items():
        values[f"{bench}.score"] = result["score"]
        values[f"{bench}.registered"] = result["registered"]
        for dataset, score in result["datasets"].items():
            for key, value in score.items():
                values[f"{bench}.{dataset}.{key}"] = value
    return values


def log_runs(settings: Settings, run_id: str) -> str:
    """The parent run of DAG run ``run_id`` with a child per candidate variant; its id."""
    from mlflow.entities import Metric, Param

    from mlflow import MlflowClient

    workspace = workspace_dir(settings)
    client = MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENTS_EXPERIMENT)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(EXPERIMENTS_EXPERIMENT)
    )
    bench = benchmark_hash(workspace)
    parent_tags = {RUN_TAG: run_id, "kind": "retraining"}
    parent = (
        _find_run(client, experiment_id, parent_tags)
        or client.create_run(
            experiment_id,
            run_name=f"retrain {run_id}",
            tags={**parent_tags, "benchmark_hash": bench},
        ).info.run_id
    )
    selected = _read(workspace, "selected.json")
    for row in selected["table"]:
        label = _label(row)
        tags = {RUN_TAG: run_id, "candidate": label}
        child = (
            _find_run(client, experiment_id, tags)
            or client.create_run(
                experiment_id,
                run_name=label,
                tags={**tags, "mlflow.parentRunId": parent, "benchmark_hash": bench},
            ).info.run_id
        )
        metrics = _read(workspace, "evaluate", row["candidate"], "metrics.json")[row["membership"]]
        config = _read(workspace, "evaluate", row["candidate"], "configs.json")[row["membership"]]
        flat = registry.flat_params(PipelineConfig.from_dict(config))
        client.log_batch(
            child,
            metrics=[Metric(k, float(v), 0, 0) for k, v in _child_metrics(metrics).items()],
            params=[Param(k, v[:6000]) for k, v in flat.items()],
        )
        folder = workspace / OUTPUTS / "evaluate" / row["candidate"]
        client.log_artifact(child, str(folder / "configs.json"))
        sweep = workspace / OUTPUTS / "sweep" / row["candidate"] / "result.json"
        if row["membership"] == "fixed":
            for name, result in json.loads(sweep.read_text())["benchmarks"].items():
                submission = workspace / result["submission"]  # relative to the workspace
                client.log_artifact(child, str(submission), artifact_path=f"submission/{name}")
        client.set_terminated(child)
    for name in ("dvc.lock", "params.yaml"):
        client.log_artifact(parent, str(workspace / name))
    for name in ("selected.json", "membership.json", "validate.json"):
        client.log_artifact(parent, str(workspace / OUTPUTS / name))
    client.log_batch(parent, metrics=[Metric("best_score", selected["best"]["score"], 0, 0)])
    client.set_terminated(parent)
    return parent


def promote(settings: Settings, run_id: str) -> dict[str, Any]:
    """Register the best candidate and decide whether ``champion`` moves to it."""
    from mlflow import MlflowClient

    workspace = workspace_dir(settings)
    selected = _read(workspace, "selected.json")
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    margin = float((params.get("select") or {}).get("margin", 0.5))
    champion_version = str(params["candidates"][CHAMPION]["version"])
    champion, contenders = None, []
    for row in selected["table"]:
        if (row["candidate"], row["membership"]) == (CHAMPION, "fixed"):
            champion = row
        else:
            contenders.append(row)
    if champion is None:
        raise RuntimeError("the sweep has no result for the champion: nothing to compare with")
    if not contenders:
        return {"outcome": "kept", "champion": champion_version, "reason": "no other candidate"}
    # Ties go to the fixed rule and the earlier candidate, as in the select stage.
    best = max(contenders, key=lambda row: (row["score"], row["membership"] == "fixed"))
    client = MlflowClient(settings.mlflow_tracking_uri)
    bench = benchmark_hash(workspace)
    existing = client.search_model_versions(
        f"name = '{MODEL_NAME}' and tags.{RUN_TAG} = '{run_id}'"
    )
    if existing:  # a retried task: the version of this run is registered already
        version = str(existing[0].version)
    else:
        config = _read(workspace, "evaluate", best["candidate"], "configs.json")[best["membership"]]
        version = registry.register_version(
            settings,
            PipelineConfig.from_dict(config),
            metrics={k: v for k, v in best.items() if k.startswith("score")},
            tags={RUN_TAG: run_id, "candidate": _label(best), "benchmark_hash": bench},
            artifacts={
                REFERENCE_ARTIFACT: workspace / OUTPUTS / "reference_profile.json",
                "membership": workspace / OUTPUTS / "membership.json",
            },
        )
    gain = best["score"] - champion["score"]
    if gain > margin:
        registry.set_champion(settings, version)
        log.info("champion moves from %s to %s (+%.2f points)", champion_version, version, gain)
        return {"outcome": "promoted", "champion": version, "previous": champion_version,
                "gain": gain}  # fmt: skip
    reason = (
        f"scored {best['score']:.2f} against the champion's {champion['score']:.2f} "
        f"(version {champion_version}) on benchmark {bench}: needs more than +{margin:g}"
    )
    client.set_model_version_tag(MODEL_NAME, version, "challenger", reason)
    log.info("version %s stays a challenger: %s", version, reason)
    return {"outcome": "challenger", "version": version, "reason": reason}


STEPS = {"reproduce": reproduce, "log_runs": log_runs, "promote": promote}
"""The tasks of ``experiment_pipeline_dag``, in order."""
