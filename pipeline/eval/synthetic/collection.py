"""Rendered scenes, outlier photos and their IMC2025 ground truth (``train_labels.csv``,
``train_thresholds.csv``): what tests and ``scene3d demo`` use as a benchmark.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.eval.synthetic.geometry import Quad, build_geometry, normalise, value_noise
from pipeline.eval.synthetic.render import SyntheticView, arc_cameras, render_view

THRESHOLD_FRACTIONS = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.1)
"""IMC2025 thresholds as fractions of the median camera distance from the scene centre."""
DATASET = "synthetic"
"""Dataset name :func:`make_collection` writes into the ground truth."""
OUTLIER_SCENE = "outliers"
"""Scene label IMC2025 reserves for images that belong to no scene."""


@dataclass
class SyntheticScene:
    """Rendered images of one place plus the exact cameras and geometry behind them."""

    image_dir: Path
    views: list[SyntheticView]
    quads: list[Quad] = field(default_factory=list, repr=False)
    """The geometry that was rendered (for depth checks in tests)."""
    width: int = 640
    height: int = 480

    def centers(self) -> np.ndarray:
        """Camera centres (n, 3), ``-R^T t`` for each view."""
        return np.array([view.center for view in self.views]).reshape(-1, 3)


# --------------------------------------------------------------------------- scenes


def render_scene(
    out_dir: Path,
    n_views: int = 12,
    width: int = 640,
    height: int = 480,
    seed: int = 0,
    layout: int = 0,
    prefix: str = "view",
) -> SyntheticScene:
    """Render one scene; ``layout`` picks a different arrangement/texture family so two
    layouts look like two different places (for clustering tests).

    Images are written as ``<prefix>_000.png``... into ``out_dir``; ``seed`` drives textures,
    box placement and camera jitter, so the same arguments give identical pixels.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    quads = build_geometry(layout, seed)
    views = arc_cameras(n_views, width, height, np.random.default_rng([seed, layout, 2]), prefix)
    for view in views:
        image = Image.fromarray(render_view(quads, view, width, height))
        image.save(out_dir / view.name, compress_level=1)  # fast; size does not matter here
    return SyntheticScene(out_dir, views, quads, width, height)


def make_noise_image(path: Path, width: int = 640, height: int = 480, seed: int = 0) -> None:
    """An unrelated image (pure noise / different texture) to act as an outlier photo.

    Coloured multi-scale noise: plenty of keypoints, none of which can be verified
    geometrically against the scenes.
    """
    rng = np.random.default_rng([seed, 99])
    channels = []
    for _ in range(3):
        layer = sum(
            w * normalise(value_noise((height, width), cell, rng))
            for w, cell in ((1.0, 60.0), (0.6, 15.0), (0.4, 4.0), (0.2, 1.0))
        )
        channels.append(np.clip(0.5 + 0.15 * layer, 0, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    rgb = np.round(np.stack(channels, axis=-1) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, compress_level=1)


# --------------------------------------------------------------------------- ground truth


def _join(values: Iterable[float]) -> str:
    """IMC number list: full precision, ``;``-separated, ``nan`` for unknown values."""
    return ";".join(repr(float(v)) for v in values)


def scene_thresholds(scene: SyntheticScene) -> list[float]:
    """IMC thresholds: median camera distance from the centroid of the cameras, in fractions."""
    centers = scene.centers()
    median = float(np.median(np.linalg.norm(centers - centers.mean(axis=0), axis=1)))
    return [median * fraction for fraction in THRESHOLD_FRACTIONS]


def write_imc_ground_truth(
    scenes: dict[str, SyntheticScene],
    dataset: str,
    labels_csv: Path,
    thresholds_csv: Path,
    outliers: Sequence[str] = (),
) -> None:
    """Write train_labels.csv rows (dataset,scene,image,rotation_matrix,translation_vector; 9 and 3
    numbers ';'-joined, world-to-camera) for each scene key, plus rows labelled scene `outliers`
    (nan poses) for the given outlier image names, and train_thresholds.csv with thresholds =
    median camera distance from the scene centre times 0.25, 0.5, 1, 2, 5, 10 percent.

    The scene centre is the centroid of the scene's camera centres. Files are overwritten.
    """
    labels_csv, thresholds_csv = Path(labels_csv), Path(thresholds_csv)
    for path in (labels_csv, thresholds_csv):
        path.parent.mkdir(parents=True, exist_ok=True)
    with labels_csv.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["dataset", "scene", "image", "rotation_matrix", "translation_vector"])
        for scene_name, scene in scenes.items():
            for view in scene.views:
                writer.writerow(
                    [dataset, scene_name, view.name, _join(view.R.ravel()), _join(view.t)]
                )
        for name in outliers:
            writer.writerow(
                [dataset, OUTLIER_SCENE, name, _join([math.nan] * 9), _join([math.nan] * 3)]
            )
    with thresholds_csv.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["dataset", "scene", "thresholds"])
        for scene_name, scene in scenes.items():
            values = ";".join(f"{value:.5g}" for value in scene_thresholds(scene))
            writer.writerow([dataset, scene_name, values])


def make_collection(
    out_dir: Path,
    n_views: int = 12,
    n_scenes: int = 1,
    n_outliers: int = 0,
    seed: int = 0,
    width: int = 640,
    height: int = 480,
) -> tuple[Path, Path, Path]:
    """A ready-made IMC2025-style benchmark: ``(image_dir, labels_csv, thresholds_csv)``.

    Images of every scene (``scene0_view_000.png``, ``scene1_view_000.png``...) and the
    outlier photos (``outlier_000.png``...) share ONE flat folder
    ``out_dir/train/synthetic``, as in the IMC layout; scene ``i`` uses layout ``i`` so scenes
    look like different places. Ground truth goes to ``out_dir/train_labels.csv`` and
    ``out_dir/train_thresholds.csv`` with dataset ``synthetic``.
    """
    out_dir = Path(out_dir)
    image_dir = out_dir / "train" / DATASET
    scenes = {
        f"scene{i}": render_scene(
            image_dir, n_views, width, height, seed=seed, layout=i, prefix=f"scene{i}_view"
        )
        for i in range(n_scenes)
    }
    outliers = []
    for i in range(n_outliers):
        name = f"outlier_{i:03d}.png"
        make_noise_image(image_dir / name, width, height, seed=seed * 1000 + i)
        outliers.append(name)
    labels_csv, thresholds_csv = out_dir / "train_labels.csv", out_dir / "train_thresholds.csv"
    write_imc_ground_truth(scenes, DATASET, labels_csv, thresholds_csv, outliers)
    return image_dir, labels_csv, thresholds_csv
