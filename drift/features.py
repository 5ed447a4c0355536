"""Cheap per-image statistics used to notice when new photos differ from the reference data.

Each feature is computed on a copy downscaled so its longest side is 256 px: the statistics
then describe the look of a photo (exposure, focus, colour) rather than its resolution, and
a folder of 24-Mpx photos is summarised in well under a second per image. Resolution is
reported separately (``width``, ``height``, ``aspect``, ``megapixels``, of the original,
after EXIF orientation).

Note: ``sharpness`` is measured at the analysis size, so images already smaller than
256 px (never upscaled) are compared at their own size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

ANALYSIS_SIZE = 256
"""Longest side, in pixels, of the copy the statistics are computed on."""

MAX_PIXELS = 64_000_000
"""Images with more pixels than this (64 Mpx) are refused before decoding (bomb guard)."""

FEATURES: tuple[str, ...] = (
    "brightness",
    "contrast",
    "sharpness",
    "saturation",
    "entropy",
    "width",
    "height",
    "aspect",
    "megapixels",
)
"""Names of the features, in report order."""

_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma


class ImageTooLargeError(ValueError):
    """The image has more than :data:`MAX_PIXELS` pixels."""


@dataclass
class FolderFeatures:
    """Features of a set of images plus the files that could not be read."""

    values: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in FEATURES})
    skipped: list[Path] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return len(self.values[FEATURES[0]])


def _load_small_rgb(path: Path) -> tuple[Image.Image, tuple[int, int]]:
    """Open ``path`` upright and small; return the RGB copy and the original (w, h) upright."""
    with Image.open(path) as im:
        width, height = im.size
        if width * height > MAX_PIXELS:
            raise ImageTooLargeError(f"{width}x{height} exceeds {MAX_PIXELS} pixels")
        orientation = im.getexif().get(0x0112, 1)
        if orientation in (5, 6, 7, 8):  # rotated by 90 degrees: swap the reported size
            width, height = height, width
        im.draft("RGB", (ANALYSIS_SIZE, ANALYSIS_SIZE))  # JPEG: decode at reduced scale
        upright = ImageOps.exif_transpose(im)
        small = upright.convert("RGB")
    small.thumbnail((ANALYSIS_SIZE, ANALYSIS_SIZE), Image.Resampling.LANCZOS)
    return small, (width, height)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Luma in 0..1 from an (h, w, 3) uint8 array."""
    return rgb.astype(np.float64) @ np.array(_LUMA_WEIGHTS) / 255.0


def _laplacian_variance(luma: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian: high for crisp edges, low for blur."""
    if luma.shape[0] < 3 or luma.shape[1] < 3:
        return 0.0
    lap = (
        luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * luma[1:-1, 1:-1]
    )
    return float(lap.var())


def _entropy_bits(luma: np.ndarray) -> float:
    """Shannon entropy of the 256-bin luma histogram, in bits (0..8)."""
    counts = np.bincount(np.clip(np.round(luma * 255), 0, 255).astype(np.int64).ravel(), None, 256)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def image_features(path: Path) -> dict[str, float]:
    """Compute every feature in :data:`FEATURES` for one image.

    Raises ``OSError`` (unreadable or not an image) or :class:`ImageTooLargeError`.
    """
    small, (width, height) = _load_small_rgb(Path(path))
    rgb = np.asarray(small)
    luma = _luma(rgb)
    saturation = np.asarray(small.convert("HSV"))[..., 1]
    return {
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        "sharpness": _laplacian_variance(luma),
        "saturation": float(saturation.mean() / 255.0),
        "entropy": _entropy_bits(luma),
        "width": float(width),
        "height": float(height),
        "aspect": width / height,
        "megapixels": width * height / 1e6,
    }


def collect_features(paths: Iterable[Path]) -> FolderFeatures:
    """Features of every readable image in ``paths``; unreadable ones are listed, not fatal.

    One broken upload must not stop a drift check on the other hundreds of photos.
    """
    result = FolderFeatures()
    for path in paths:
        try:
            features = image_features(Path(path))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            log.warning("drift: skipping %s: %s", Path(path).name, exc)
            result.skipped.append(Path(path))
            continue
        for name in FEATURES:
            result.values[name].append(features[name])
    return result


def folder_features(paths: Iterable[Path]) -> dict[str, list[float]]:
    """Feature name -> one value per readable image (see :func:`collect_features`)."""
    return collect_features(paths).values
