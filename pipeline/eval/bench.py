"""``scene3d bench``: reconstruct every dataset of an IMC2025-layout benchmark with
each preset (and optionally a baseline, :data:`pipeline.eval.baseline.BASELINES`), then
score with the official metric.

Each (method, dataset) run happens in a fresh child process so that its peak
memory is its own and one crash does not end the benchmark.
"""

from __future__ import annotations

import csv
import multiprocessing
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import PipelineConfig
from pipeline.eval.scoring import ScoreReport, score_submission
from pipeline.export import CSV_COLUMNS

BASELINE_PREFIX = "baseline:"


@dataclass
class DatasetRun:
    """One method on one dataset."""

    dataset: str
    registered: int
    total: int
    timings: dict[str, float]
    wall_s: float
    peak_rss_mb: float
    error: str | None = None


@dataclass
class MethodResult:
    """One method (a preset or the baseline) over the whole benchmark."""

    method: str
    runs: list[DatasetRun]
    score: ScoreReport
    submission: Path

    @property
    def wall_s(self) -> float:
        return sum(r.wall_s for r in self.runs)


@dataclass
class BenchReport:
    bench_dir: Path
    methods: list[MethodResult] = field(default_factory=list)


def bench_datasets(bench_dir: Path) -> list[str]:
    """Datasets that have both images and labels, in label-file order."""
    with (bench_dir / "train_labels.csv").open(newline="") as fh:
        labelled = list(dict.fromkeys(row["dataset"] for row in csv.DictReader(fh)))
    return [d for d in labelled if (bench_dir / "train" / d).is_dir()]


def _run_one(
    method: str, image_dir: Path, out_dir: Path, dataset: str, config: dict | None = None
) -> dict:
    """Child-process entry: reconstruct one dataset, return counts, timings and peak RSS.

    ``config`` (a :meth:`PipelineConfig.to_dict`) replaces the preset ``method`` names."""
    from pipeline.errors import ReconstructionError
    from pipeline.eval.baseline import BASELINES
    from pipeline.presets import load_preset
    from pipeline.reconstruct import peak_rss_mb, reconstruct, set_colmap_logging
    from pipeline.registry import lookup

    set_colmap_logging(verbose=False)
    start = time.perf_counter()
    error = None
    timings: dict[str, float] = {}
    try:
        if method.startswith(BASELINE_PREFIX):
            baseline = lookup(BASELINES, method.removeprefix(BASELINE_PREFIX), "baseline")
            timings = baseline(image_dir, out_dir, dataset)
        else:
            chosen = PipelineConfig.from_dict(config) if config else load_preset(method)
            result = reconstruct(image_dir, out_dir, chosen, dataset=dataset)
            timings = result.timings
    except ReconstructionError as exc:
        error = str(exc)
    except Exception:  # a crash of one run is reported in the table, not fatal
        error = traceback.format_exc(limit=3)
    return {
        "timings": timings,
        "wall_s": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
        "error": error,
    }


def _count_registered(submission: Path) -> tuple[int, int]:
    registered = total = 0
    if submission.exists():
        with submission.open(newline="") as fh:
            for row in csv.DictReader(fh):
                total += 1
                registered += "nan" not in row["rotation_matrix"]
    return registered, total


def _merge_submissions(parts: Sequence[Path], target: Path) -> None:
    with target.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for part in parts:
            if part.exists():
                with part.open(newline="") as fh:
                    for row in csv.DictReader(fh):
                        writer.writerow([row[c] for c in CSV_COLUMNS])


def run_method(
    method: str,
    bench_dir: Path,
    work_dir: Path,
    datasets: Sequence[str],
    on_run: Callable[[str, str], None] | None = None,
    config: PipelineConfig | None = None,
) -> MethodResult:
    """Reconstruct each dataset with ``method`` (or ``config``, then ``method`` is only its
    label) and score the merged submission."""
    label = method.replace(":", "-")
    runs: list[DatasetRun] = []
    parts: list[Path] = []
    ctx = multiprocessing.get_context("spawn")
    for dataset in datasets:
        if on_run:
            on_run(method, dataset)
        out_dir = work_dir / label / dataset
        image_dir = bench_dir / "train" / dataset
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            as_dict = config.to_dict() if config else None
            info = pool.submit(_run_one, method, image_dir, out_dir, dataset, as_dict).result()
        part = out_dir / "submission.csv"
        parts.append(part)
        registered, total = _count_registered(part)
        runs.append(DatasetRun(dataset, registered, total, **info))
    submission = work_dir / label / "submission.csv"
    _merge_submissions(parts, submission)
    score = score_submission(
        submission,
        bench_dir / "train_labels.csv",
        bench_dir / "train_thresholds.csv",
        datasets=datasets,
    )
    return MethodResult(method, runs, score, submission)


def run_bench(
    bench_dir: Path,
    work_dir: Path,
    presets: Sequence[str],
    baseline: str | None = None,
    datasets: Sequence[str] | None = None,
    on_run: Callable[[str, str], None] | None = None,
) -> BenchReport:
    """Run the baseline (if asked) and each preset over the benchmark, in one process tree."""
    datasets = list(datasets or bench_datasets(bench_dir))
    if not datasets:
        raise ValueError(f"no datasets with images and labels under {bench_dir}")
    methods = [f"{BASELINE_PREFIX}{baseline}"] if baseline else []
    methods += list(presets)
    report = BenchReport(bench_dir)
    for method in methods:
        report.methods.append(run_method(method, bench_dir, work_dir, datasets, on_run))
    return report
