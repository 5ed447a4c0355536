"""``scene3d bench-scaling``: how pair selection and matching grow with the collection.

Synthetic collections of N photos (scenes of ``per_scene`` views each) go through
ingest, features, pairs and matching with each preset; the table gives matched pairs and
wall time per N, and the growth exponent fitted on log-log axes (1 = linear, 2 = every
pair). Mapping is left out: it depends on the scenes, not on pair selection. Each run
is a fresh child process, as in :mod:`pipeline.eval.bench`.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_SIZES = (25, 50, 100, 200)


@dataclass
class ScalingRun:
    preset: str
    photos: int
    pairs: int
    verified: int
    features_s: float
    matching_s: float
    peak_rss_mb: float

    @property
    def wall_s(self) -> float:
        return self.features_s + self.matching_s


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Slope of log(values) against log(sizes): the k in values ~ sizes**k."""
    return float(np.polyfit(np.log(sizes), np.log(np.maximum(values, 1e-9)), 1)[0])


def _collection(root: Path, photos: int, per_scene: int) -> Path:
    from pipeline.eval.synthetic import make_collection

    folder = root / f"n{photos}"
    if not (folder / "train_labels.csv").exists():
        scenes = max(1, photos // per_scene)
        make_collection(folder, n_views=photos // scenes, n_scenes=scenes, seed=photos)
    return folder / "train" / "synthetic"


def _run_one(preset: str, image_dir: Path, out_dir: Path) -> dict:
    """Child-process entry: the steps up to matching, timed."""
    from pipeline import scenes
    from pipeline.layout import RunPaths
    from pipeline.presets import load_preset
    from pipeline.progress import CancelToken, null_progress
    from pipeline.reconstruct import (
        peak_rss_mb,
        run_features,
        run_ingest,
        run_matching,
        run_pairs,
        set_colmap_logging,
    )

    set_colmap_logging(verbose=False)
    config = load_preset(preset)
    paths = RunPaths(out_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    cancel = CancelToken()
    images = run_ingest(image_dir, paths, config, null_progress, cancel).images
    start = time.perf_counter()
    run_features(paths, images, config, null_progress, cancel)
    features_s = time.perf_counter() - start
    start = time.perf_counter()
    selected = run_pairs(paths, images, config)
    run_matching(paths, selected, config, null_progress, cancel)
    return {
        "pairs": len(selected),
        "verified": len(
            scenes.verified_edges(str(paths.database), config.matching.min_num_inliers)
        ),
        "features_s": features_s,
        "matching_s": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_scaling(
    presets: Sequence[str],
    work_dir: Path,
    sizes: Sequence[int] = DEFAULT_SIZES,
    per_scene: int = 25,
    on_run: Callable[[str, int], None] | None = None,
) -> list[ScalingRun]:
    """Every preset on every collection size; collections are generated once and reused."""
    ctx = multiprocessing.get_context("spawn")
    runs = []
    for preset in presets:
        for photos in sizes:
            if on_run:
                on_run(preset, photos)
            image_dir = _collection(work_dir / "collections", photos, per_scene)
            out_dir = work_dir / "runs" / preset / f"n{photos}"
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                info = pool.submit(_run_one, preset, image_dir, out_dir).result()
            runs.append(ScalingRun(preset=preset, photos=photos, **info))
    return runs


def scaling_markdown(runs: Sequence[ScalingRun]) -> str:
    """Table per preset and size, then one line per preset with its fitted exponents."""
    lines = [
        "| preset | photos | matched pairs | verified | features s | matching s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.preset} | {r.photos} | {r.pairs} | {r.verified} | {r.features_s:.1f} "
            f"| {r.matching_s:.1f} | {r.peak_rss_mb:.0f} |"
        )
    lines.append("")
    for preset in dict.fromkeys(r.preset for r in runs):
        mine = [r for r in runs if r.preset == preset]
        if len(mine) < 2:
            continue
        sizes = [r.photos for r in mine]
        pairs_k = growth_exponent(sizes, [r.pairs for r in mine])
        time_k = growth_exponent(sizes, [r.matching_s for r in mine])
        lines.append(
            f"- `{preset}`: matched pairs grow as N^{pairs_k:.2f}, matching time as N^{time_k:.2f}"
        )
    return "\n".join(lines) + "\n"
