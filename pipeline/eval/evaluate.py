"""The ``evaluate`` and ``select`` stages: each candidate's metrics, with the fixed
scene-membership rule and with the learned model, and the best of the current candidates.

The learned variant maps again from the sweep's own features and matches (the run folder
is copied without its mapping results, and the engine resumes at mapping), so the two
rules are compared on exactly the same verified pairs.
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from typing import Any

from pipeline.config import PipelineConfig, merge_config
from pipeline.eval.bench import run_method
from pipeline.eval.candidates import ExperimentParams
from pipeline.eval.sweep import RESULT, method_summary
from pipeline.layout import RunPaths

METRICS = "metrics.json"
"""Per variant (``fixed``, ``learned``): the candidate's metrics (a DVC metrics file)."""
CONFIGS = "configs.json"
"""Per variant: the whole configuration it ran with (what a registered version holds)."""
REMAP = "remap"
"""The learned variant's run folders."""
LEARNED = "+membership"
"""Suffix of a candidate's variant that splits scenes with the learned model."""

_MAPPING_RESULTS = ("models", "ply", "scenes.json", "submission.csv", "clusters.json",
                    "summary.json", ".mapping.done")  # fmt: skip


def metrics_of(result: dict[str, Any]) -> dict[str, Any]:
    """IMC2025 score, mAA, clusterness, registered images, time and peak memory of one
    candidate over every benchmark; ``score`` is the mean of the benchmarks' scores."""
    per_bench: dict[str, Any] = {}
    for name, bench in result["benchmarks"].items():
        runs = bench["runs"]
        per_bench[name] = {
            "score": bench["score"]["final"],
            "datasets": bench["score"]["datasets"],
            "registered": sum(r["registered"] for r in runs),
            "images": sum(r["total"] for r in runs),
            "wall_s": round(sum(r["wall_s"] for r in runs), 1),
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
            "errors": [r["error"] for r in runs if r["error"]],
        }
    return {
        "score": round(statistics.fmean(b["score"] for b in per_bench.values()), 3),
        "wall_s": round(sum(b["wall_s"] for b in per_bench.values()), 1),
        "peak_rss_mb": max(b["peak_rss_mb"] for b in per_bench.values()),
        "benchmarks": per_bench,
    }


def with_membership(config: PipelineConfig, model: dict[str, Any]) -> PipelineConfig:
    """``config`` splitting scenes with the learned ``model`` (the train stage's JSON)."""
    mapping = {"membership_weights": model["weights"], "membership_threshold": model["threshold"]}
    return merge_config(config, {"mapping": mapping})


def _remap(params: ExperimentParams, name: str, sweep_dir: Path, config: PipelineConfig,
           out: Path) -> dict[str, Any]:  # fmt: skip
    label = name + LEARNED
    result: dict[str, Any] = {"candidate": label, "config": config.to_dict(), "benchmarks": {}}
    for bench in params.benchmarks:
        for dataset in bench.datasets:
            source = sweep_dir / bench.name / name / dataset
            target = out / bench.name / label / dataset
            shutil.rmtree(target, ignore_errors=True)
            if RunPaths(source).database.exists():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns(*_MAPPING_RESULTS))
        method = run_method(label, bench.root, out / bench.name, bench.datasets, config=config)
        result["benchmarks"][bench.name] = method_summary(method)
    return result


def evaluate(
    params: ExperimentParams, name: str, sweep_dir: Path, membership_file: Path, out: Path
) -> dict[str, Any]:
    """``metrics.json`` of candidate ``name``: its sweep (``fixed``) and, where the train
    stage produced weights, the learned membership on the same matches (``learned``)."""
    swept = json.loads((sweep_dir / RESULT).read_text())
    metrics: dict[str, Any] = {"fixed": metrics_of(swept)}
    configs = {"fixed": swept["config"]}
    model = json.loads(membership_file.read_text())
    if model["weights"]:
        config = with_membership(PipelineConfig.from_dict(swept["config"]), model)
        metrics["learned"] = metrics_of(_remap(params, name, sweep_dir, config, out / REMAP))
        configs["learned"] = config.to_dict()
    (out / REMAP).mkdir(parents=True, exist_ok=True)  # a stage output, even when empty
    (out / CONFIGS).write_text(json.dumps(configs, indent=2))
    (out / METRICS).write_text(json.dumps(metrics, indent=2))
    return metrics


def select(params: ExperimentParams, evaluate_dir: Path) -> dict[str, Any]:
    """The best variant of the candidates ``params`` lists now (metrics of candidates
    removed since stay on disk and are never read)."""
    table = []
    for name in params.candidates:
        metrics = json.loads((evaluate_dir / name / METRICS).read_text())
        for variant, values in metrics.items():
            table.append(
                {
                    "candidate": name,
                    "membership": variant,
                    "score": values["score"],
                    "wall_s": values["wall_s"],
                    "peak_rss_mb": values["peak_rss_mb"],
                    **{f"score_{b}": v["score"] for b, v in values["benchmarks"].items()},
                }
            )
    # Ties go to the fixed rule and to the earlier candidate: a change must earn its place.
    best = max(table, key=lambda row: (row["score"], row["membership"] == "fixed"))
    return {"best": best, "table": table}
