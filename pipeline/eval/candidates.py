"""The benchmark pipeline's parameters (``params.yaml``): benchmarks, candidates, selection.

A candidate is a preset with optional overrides (``{"preset": "fast", "set": {...}}``) or a
whole configuration file (``{"config": "champion.json"}``, how the current champion enters
a sweep). Every candidate is judged on every benchmark together: one tuned on one-camera
photos alone would lose on internet photos.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.config import PipelineConfig
from pipeline.eval.bench import bench_datasets
from pipeline.presets import load_preset


@dataclass(frozen=True)
class Benchmark:
    name: str
    """Its key in ``params.yaml`` (``bench``, ``bench_imc``)."""
    root: Path
    """An IMC2025-layout folder: ``train/<dataset>/``, labels and thresholds."""
    datasets: tuple[str, ...]
    """The datasets to run; every labelled one unless ``params.yaml`` names a subset."""


@dataclass(frozen=True)
class ExperimentParams:
    benchmarks: tuple[Benchmark, ...]
    candidates: dict[str, dict[str, Any]]
    """Candidate name -> its spec (see the module docstring)."""
    margin: float = 0.5
    """Score points a challenger must win by before ``champion`` moves to it."""
    membership_base: str = ""
    """The candidate whose verified pairs train the scene-membership model."""
    membership_threshold: float = 0.5
    """Probability from which the learned model keeps a pair."""
    raw: dict[str, Any] = field(default_factory=dict)


def load_params(path: Path) -> ExperimentParams:
    """``params.yaml``; relative paths in it are relative to its folder."""
    return params_from_dict(yaml.safe_load(path.read_text()) or {}, path.parent)


def params_from_dict(data: dict[str, Any], base_dir: Path) -> ExperimentParams:
    """Parameters as ``params.yaml`` holds them; relative paths are relative to ``base_dir``."""
    path = base_dir / "params.yaml"  # what the messages name
    subsets = data.get("datasets") or {}
    benchmarks = []
    for name, folder in (data.get("benchmarks") or {}).items():
        root = (base_dir / folder).resolve()
        chosen = subsets.get(name)
        if chosen is not None and not chosen:
            continue  # an empty list leaves that benchmark out (quick runs)
        if not (root / "train_labels.csv").is_file():
            raise FileNotFoundError(f"benchmark {name!r}: no train_labels.csv under {root}")
        datasets = tuple(chosen) if chosen else tuple(bench_datasets(root))
        benchmarks.append(Benchmark(name, root, datasets))
    if not benchmarks:
        raise ValueError(f"{path}: no benchmark to run (benchmarks: / datasets:)")
    candidates = data.get("candidates") or {}
    if not candidates:
        raise ValueError(f"{path}: no candidates")
    membership = data.get("membership") or {}
    return ExperimentParams(
        benchmarks=tuple(benchmarks),
        candidates=dict(candidates),
        margin=float((data.get("select") or {}).get("margin", 0.5)),
        membership_base=str(membership.get("base") or next(iter(candidates))),
        membership_threshold=float(membership.get("threshold", 0.5)),
        raw=data,
    )


def benchmark_photos(params: ExperimentParams) -> list[Path]:
    """Every photo of the chosen datasets of every benchmark: what the drift reference
    profile describes."""
    return sorted(
        path
        for bench in params.benchmarks
        for dataset in bench.datasets
        for path in (bench.root / "train" / dataset).iterdir()
        if path.is_file()
    )


def candidate_config(name: str, spec: dict[str, Any], base_dir: Path) -> PipelineConfig:
    """The configuration candidate ``name`` stands for; a bad spec is a clear error."""
    if "config" in spec:
        data = json.loads((base_dir / spec["config"]).read_text())
        return PipelineConfig.from_dict({**data, "name": data.get("name", name)})
    if "preset" not in spec:
        raise ValueError(f"candidate {name!r} needs a preset (with optional set:) or a config")
    return load_preset(spec["preset"], spec.get("set") or {})
