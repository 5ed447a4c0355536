"""How often the drift report is right on real photos: false alarms and detections.

For benchmark folders in IMC2025 layout (``<root>/train/<scene>/<image>``):

* ``same``: the photos are split into random halves, one the reference and the other the
  current batch; no drift should be reported (severity ``low``);
* ``darkened`` (x0.4), ``blurred`` (Gaussian sigma 3), ``downscaled`` (x0.25): a batch of
  ``batch`` photos from the half that is not the reference, changed so; drift should be
  reported;
* ``foreign``: one scene is left out of the reference, and a batch of its photos is the
  current batch: photos of another place.

Every photo's features (and those of its changed copies) are computed once; each trial then
draws its reference and batch from them and runs the Evidently report. The result gives, per
variant, the share of trials that reported drift, the severities, and the time per image of
the features and per report.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from drift.features import FEATURES, FolderFeatures, collect_features
from drift.profile import ReferenceProfile
from drift.report import DEFAULT_RULES, DriftRules, drift_report

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def _darken(im: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(im).enhance(0.4)


def _blur(im: Image.Image) -> Image.Image:
    return im.filter(ImageFilter.GaussianBlur(3))


def _downscale(im: Image.Image) -> Image.Image:
    size = (max(1, round(im.width * 0.25)), max(1, round(im.height * 0.25)))
    return im.resize(size, Image.Resampling.LANCZOS)


CHANGES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "darkened": _darken,
    "blurred": _blur,
    "downscaled": _downscale,
}
"""The changed copies, by variant name (the issue's x0.4, sigma 3 and x0.25)."""

EXPECTED: dict[str, tuple[str, ...]] = {
    "same": ("low",),
    "darkened": ("high",),
    "blurred": ("medium", "high"),
    "downscaled": ("medium", "high"),
    "foreign": ("medium", "high"),
}
"""The severities each variant should get."""


@dataclass
class Photo:
    scene: str
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Variant (``original`` or a change) -> {"values": {feature: v}, "descriptor": [...]}."""


def benchmark_images(root: Path) -> dict[str, list[Path]]:
    """The photos of a benchmark folder, by scene (``train/<scene>/<image>``)."""
    train = Path(root) / "train"
    return {
        scene.name: sorted(p for p in scene.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for scene in sorted(p for p in train.iterdir() if p.is_dir())
    }


def _one(folder: FolderFeatures) -> dict[str, Any]:
    return {
        "values": {n: folder.values[n][0] for n in FEATURES},
        "descriptor": folder.descriptors[0],
    }


def photos_of(roots: Sequence[Path]) -> tuple[list[Photo], float]:
    """Every photo's features, original and changed; and the seconds per original photo
    its features took (JPEG/PNG decoding included)."""
    photos: list[Photo] = []
    seconds = 0.0  # features of the original photos only: what every upload pays
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as tmp:
        for root in roots:
            for scene, paths in benchmark_images(root).items():
                for path in paths:
                    start = time.perf_counter()
                    original = collect_features([path])
                    seconds += time.perf_counter() - start
                    if original.n_images == 0:
                        continue
                    photo = Photo(f"{Path(root).name}/{scene}", {"original": _one(original)})
                    with Image.open(path) as im:
                        rgb = im.convert("RGB")
                    for name, change in CHANGES.items():
                        copy = Path(tmp) / f"{name}.png"
                        change(rgb).save(copy)
                        photo.features[name] = _one(collect_features([copy]))
                    photos.append(photo)
    return photos, seconds / max(len(photos), 1)


def _batch(photos: Sequence[Photo], variant: str) -> FolderFeatures:
    batch = FolderFeatures()
    for photo in photos:
        entry = photo.features[variant]
        for name in FEATURES:
            batch.values[name].append(entry["values"][name])
        batch.descriptors.append(entry["descriptor"])
    return batch


def _reference(photos: Sequence[Photo]) -> ReferenceProfile:
    return ReferenceProfile.from_features(_batch(photos, "original"), "benchmark half")


def _trial(
    variant: str, photos: list[Photo], rng: np.random.Generator, batch: int
) -> tuple[ReferenceProfile, FolderFeatures]:
    if variant == "foreign":
        scenes = sorted({p.scene for p in photos})
        left_out = scenes[int(rng.integers(len(scenes)))]
        others = [p for p in photos if p.scene != left_out]
        ref = [others[i] for i in rng.permutation(len(others))[: len(others) // 2]]
        own = [p for p in photos if p.scene == left_out]
        cur = [own[i] for i in rng.permutation(len(own))[:batch]]
        return _reference(ref), _batch(cur, "original")
    order = rng.permutation(len(photos))
    half = len(photos) // 2
    ref = [photos[i] for i in order[:half]]
    rest = [photos[i] for i in order[half:]]
    if variant == "same":
        return _reference(ref), _batch(rest, "original")
    return _reference(ref), _batch(rest[:batch], variant)


def run(
    roots: Sequence[Path],
    trials: int = 40,
    batch: int = 12,
    seed: int = 0,
    rules: DriftRules = DEFAULT_RULES,
) -> dict[str, Any]:
    """Run every variant ``trials`` times; rates, severities and timings as a dict."""
    photos, feature_seconds = photos_of(roots)
    if len(photos) < 2 * batch:
        raise ValueError(f"{len(photos)} photos in {list(map(str, roots))}: too few to split")
    rng = np.random.default_rng(seed)
    variants: dict[str, Any] = {}
    report_seconds: list[float] = []
    for variant, expected in EXPECTED.items():
        severities: Counter[str] = Counter()
        for _ in range(trials):
            reference, current = _trial(variant, photos, rng, batch)
            start = time.perf_counter()
            severities[drift_report(current, reference, rules)["severity"]] += 1
            report_seconds.append(time.perf_counter() - start)
        detected = severities["medium"] + severities["high"]
        variants[variant] = {
            "trials": trials,
            "drift_rate": detected / trials,
            "expected_rate": sum(severities[s] for s in expected) / trials,
            "expected": list(expected),
            "severities": dict(severities),
        }
    return {
        "photos": len(photos),
        "scenes": sorted({p.scene for p in photos}),
        "batch": batch,
        "seed": seed,
        "rules": rules.__dict__,
        "variants": variants,
        "seconds_per_image_features": round(feature_seconds, 4),
        "seconds_per_report_median": round(float(np.median(report_seconds)), 3),
    }
