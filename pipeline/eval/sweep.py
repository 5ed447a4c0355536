"""The ``sweep`` and ``validate`` stages: a candidate reconstructs every dataset of every
benchmark; the benchmarks are checked before anything runs.

A sweep folder holds ``<benchmark>/<candidate>/<dataset>/`` (the engine's run folders:
database, matches, models, CSV), ``<benchmark>/<candidate>/submission.csv`` and
``result.json`` (per benchmark: each dataset's counts, times, peak memory and the score).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from PIL import Image

from pipeline.config import PipelineConfig
from pipeline.eval.bench import MethodResult, run_method
from pipeline.eval.candidates import ExperimentParams

RESULT = "result.json"


def method_summary(result: MethodResult) -> dict[str, Any]:
    return {
        "score": result.score.to_dict(),
        "runs": [vars(run) for run in result.runs],
        "submission": str(result.submission),
    }


def sweep(params: ExperimentParams, name: str, config: PipelineConfig, out: Path) -> dict:
    """Reconstruct every benchmark with ``config``; writes and returns ``result.json``."""
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"candidate": name, "config": config.to_dict(), "benchmarks": {}}
    for bench in params.benchmarks:
        method = run_method(name, bench.root, out / bench.name, bench.datasets, config=config)
        result["benchmarks"][bench.name] = method_summary(method)
    (out / RESULT).write_text(json.dumps(result, indent=2))
    return result


def validate(params: ExperimentParams) -> dict[str, Any]:
    """Every labelled image of the chosen datasets present and readable, and thresholds for
    every scene; a problem is a ``ValueError`` listing them all."""
    problems: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for bench in params.benchmarks:
        with (bench.root / "train_labels.csv").open(newline="") as fh:
            labels = [r for r in csv.DictReader(fh) if r["dataset"] in bench.datasets]
        with (bench.root / "train_thresholds.csv").open(newline="") as fh:
            thresholds = {(r["dataset"], r["scene"]) for r in csv.DictReader(fh)}
        for dataset in bench.datasets:
            if not any(r["dataset"] == dataset for r in labels):
                problems.append(f"{bench.name}/{dataset}: no labelled image")
        for row in labels:
            image = bench.root / "train" / row["dataset"] / row["image"]
            try:
                with Image.open(image) as img:
                    img.verify()
            except (OSError, SyntaxError) as exc:
                problems.append(f"{bench.name}: {row['dataset']}/{row['image']}: {exc}")
            scene = (row["dataset"], row["scene"])
            if row["scene"] != "outliers" and scene not in thresholds:
                problems.append(f"{bench.name}: no thresholds for {scene[0]}/{scene[1]}")
        counts[bench.name] = {d: sum(r["dataset"] == d for r in labels) for d in bench.datasets}
    if problems:
        raise ValueError("the benchmark is not usable:\n  " + "\n  ".join(sorted(set(problems))))
    return {"images": counts}
