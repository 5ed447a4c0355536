"""Baselines that ``scene3d bench --baseline NAME`` runs beside the presets, by name.

``colmap`` is plain COLMAP through pycolmap, exactly as the benchmark's baseline was made:
SIFT at default settings, exhaustive matching, incremental mapping, every model kept.
A baseline takes ``(image_dir, out_dir, dataset)``, writes ``submission.csv`` in
``out_dir`` and returns its wall time per step in seconds.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

Baseline = Callable[[Path, Path, str], dict[str, float]]


def run_colmap_baseline(image_dir: Path, out_dir: Path, dataset: str) -> dict[str, float]:
    """Reconstruct ``image_dir`` with stock pycolmap; writes ``submission.csv`` in ``out_dir``.

    Returns wall time per step in seconds.
    """
    # Imported here, not at the top: the CLI reads BASELINES for its choices on every
    # command, and open3d (behind the exporter) takes seconds to load.
    import pycolmap

    from pipeline.export import assign_poses, write_submission
    from pipeline.ingest import IMAGE_EXTENSIONS
    from pipeline.sfm import Model

    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    database = out_dir / "database.db"
    database.unlink(missing_ok=True)
    timings: dict[str, float] = {}
    pycolmap.set_random_seed(0)

    start = time.perf_counter()
    pycolmap.extract_features(database, image_dir, image_names=names)
    timings["features"] = time.perf_counter() - start

    start = time.perf_counter()
    pycolmap.match_exhaustive(database)
    timings["matching"] = time.perf_counter() - start

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scene3d-colmap-") as work:
        recs = pycolmap.incremental_mapping(database, image_dir, work)
        ordered = sorted(recs.values(), key=lambda r: -r.num_reg_images())
    timings["mapping"] = time.perf_counter() - start

    models = [Model(0, i, Path()) for i in range(len(ordered))]
    poses = assign_poses(models, ordered)
    write_submission(out_dir / "submission.csv", dataset, names, models, poses)
    return timings


BASELINES: dict[str, Baseline] = {"colmap": run_colmap_baseline}
"""Every baseline by the name ``--baseline`` takes."""
