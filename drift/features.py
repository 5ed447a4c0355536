"""Cheap per-image statistics used to notice when new photos differ from the reference data.

Each feature is computed on a copy downscaled so its longest side is 256 px: the statistics
then describe the look of a photo (exposure, focus, colour) rather than its resolution, and
a folder of 24-Mpx photos is summarised in well under a second per image. Resolution is
reported separately (``width``, ``height``, ``aspect``, ``megapixels``, of the original,
after EXIF orientation).

Note: ``sharpness``, ``noise`` and ``keypoint_density`` are measured at the analysis size,
so images already smaller than 256 px (never upscaled) are compared at their own size.

Besides the scalar features, each image gets a compact global descriptor
(:data:`DESCRIPTOR_DIM` numbers: a 4x4 luma thumbnail, a hue histogram and a gradient
orientation histogram) that Evidently's embeddings drift compares as one whole; it needs no
learned weights.
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
    "colourfulness",
    "entropy",
    "noise",
    "keypoint_density",
    "exif_focal",
    "long_side",
    "aspect",
    "megapixels",
)
"""Names of the scalar features, in report order."""

DESCRIPTOR_DIM = 32
"""Length of the global descriptor: 16 thumbnail cells, 8 hue bins, 8 orientation bins."""

HARRIS_THRESHOLD = 1e-4
"""Harris response (luma in 0..1) above which a 3x3 local maximum counts as a keypoint."""

_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma


class ImageTooLargeError(ValueError):
    """The image has more than :data:`MAX_PIXELS` pixels."""


@dataclass
class FolderFeatures:
    """Features of a set of images plus the files that could not be read."""

    values: dict[str, list[float]] = field(default_factory=lambda: {n: [] for n in FEATURES})
    descriptors: list[list[float]] = field(default_factory=list)
    """One :data:`DESCRIPTOR_DIM`-long global descriptor per readable image."""
    skipped: list[Path] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        return len(self.values[FEATURES[0]])


@dataclass
class _Loaded:
    small: Image.Image
    """Upright RGB copy, longest side at most :data:`ANALYSIS_SIZE`."""
    width: int
    height: int
    """Size of the original, upright."""
    has_focal: bool
    """The EXIF data names a focal length (what lets the engine guess intrinsics)."""


_EXIF_IFD = 0x8769
_FOCAL_TAGS = (0x920A, 0xA405)  # FocalLength, FocalLengthIn35mmFilm


def _load_small_rgb(path: Path) -> _Loaded:
    """Open ``path`` upright and small, with its original size and EXIF focal flag."""
    with Image.open(path) as im:
        width, height = im.size
        if width * height > MAX_PIXELS:
            raise ImageTooLargeError(f"{width}x{height} exceeds {MAX_PIXELS} pixels")
        exif = im.getexif()
        if exif.get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees: swap the size
            width, height = height, width
        sub = exif.get_ifd(_EXIF_IFD)
        has_focal = any(float(sub.get(tag) or 0) > 0 for tag in _FOCAL_TAGS)
        im.draft("RGB", (ANALYSIS_SIZE, ANALYSIS_SIZE))  # JPEG: decode at reduced scale
        upright = ImageOps.exif_transpose(im)
        small = upright.convert("RGB")
    small.thumbnail((ANALYSIS_SIZE, ANALYSIS_SIZE), Image.Resampling.LANCZOS)
    return _Loaded(small, width, height, has_focal)


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


def _colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness (0 for grey; about 0.4 for vivid photos)."""
    r, g, b = (rgb[..., i].astype(np.float64) / 255.0 for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _noise_sigma(luma: np.ndarray) -> float:
    """Immerkaer's fast noise estimate: the mean absolute response of a Laplacian
    difference that cancels smooth image structure, scaled to a Gaussian sigma."""
    h, w = luma.shape
    if h < 3 or w < 3:
        return 0.0
    kernel = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
    response = sum(
        kernel[i, j] * luma[i : h - 2 + i, j : w - 2 + j] for i in range(3) for j in range(3)
    )
    return float(np.sqrt(np.pi / 2.0) * np.abs(response).mean() / 6.0)


def _box3(a: np.ndarray) -> np.ndarray:
    """3x3 box sum (valid part)."""
    h, w = a.shape
    return sum(a[i : h - 2 + i, j : w - 2 + j] for i in range(3) for j in range(3))


def _gradients(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central differences on the interior: (dx, dy), each two pixels smaller."""
    return (luma[1:-1, 2:] - luma[1:-1, :-2]) / 2.0, (luma[2:, 1:-1] - luma[:-2, 1:-1]) / 2.0


def _keypoint_density(luma: np.ndarray) -> float:
    """Harris corners (3x3 local maxima above :data:`HARRIS_THRESHOLD`) per 1000 pixels:
    how much there is for a feature detector to find."""
    if luma.shape[0] < 9 or luma.shape[1] < 9:
        return 0.0
    dx, dy = _gradients(luma)
    sxx, syy, sxy = _box3(dx * dx), _box3(dy * dy), _box3(dx * dy)
    response = sxx * syy - sxy * sxy - 0.04 * (sxx + syy) ** 2
    centre = response[1:-1, 1:-1]
    h, w = response.shape
    neighbours = np.max(
        [response[i : h - 2 + i, j : w - 2 + j] for i in range(3) for j in range(3)], axis=0
    )
    corners = (centre > HARRIS_THRESHOLD) & (centre >= neighbours)
    return float(corners.sum() * 1000.0 / luma.size)


def _descriptor(small: Image.Image, luma: np.ndarray) -> list[float]:
    """:data:`DESCRIPTOR_DIM` numbers: what the photo shows, coarsely (layout, colours,
    edge directions), each part normalised so no part outweighs the others."""
    thumb = np.asarray(Image.fromarray((luma * 255).astype(np.uint8)).resize((4, 4)), float)
    thumb = thumb.ravel() / 255.0
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64)
    weights = hsv[..., 1] / 255.0  # grey pixels have no meaningful hue
    hue, _ = np.histogram(hsv[..., 0], bins=8, range=(0, 256), weights=weights)
    dx, dy = _gradients(luma)
    angle = np.mod(np.arctan2(dy, dx), np.pi)  # edge direction, not its sign
    orient, _ = np.histogram(angle, bins=8, range=(0, np.pi), weights=np.hypot(dx, dy))
    parts = [thumb, hue / max(hue.sum(), 1e-9), orient / max(orient.sum(), 1e-9)]
    return [float(v) for v in np.concatenate(parts)]


def _measure(path: Path) -> tuple[dict[str, float], list[float]]:
    loaded = _load_small_rgb(Path(path))
    rgb = np.asarray(loaded.small)
    luma = _luma(rgb)
    saturation = np.asarray(loaded.small.convert("HSV"))[..., 1]
    width, height = loaded.width, loaded.height
    features = {
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        "sharpness": _laplacian_variance(luma),
        "saturation": float(saturation.mean() / 255.0),
        "colourfulness": _colourfulness(rgb),
        "entropy": _entropy_bits(luma),
        "noise": _noise_sigma(luma),
        "keypoint_density": _keypoint_density(luma),
        "exif_focal": 1.0 if loaded.has_focal else 0.0,
        "long_side": float(max(width, height)),
        "aspect": width / height,
        "megapixels": width * height / 1e6,
    }
    return features, _descriptor(loaded.small, luma)


def image_features(path: Path) -> dict[str, float]:
    """Compute every feature in :data:`FEATURES` for one image.

    Raises ``OSError`` (unreadable or not an image) or :class:`ImageTooLargeError`.
    """
    return _measure(path)[0]


def collect_features(paths: Iterable[Path]) -> FolderFeatures:
    """Features of every readable image in ``paths``; unreadable ones are listed, not fatal.

    One broken upload must not stop a drift check on the other hundreds of photos.
    """
    result = FolderFeatures()
    for path in paths:
        try:
            features, descriptor = _measure(Path(path))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            log.warning("drift: skipping %s: %s", Path(path).name, exc)
            result.skipped.append(Path(path))
            continue
        for name in FEATURES:
            result.values[name].append(features[name])
        result.descriptors.append(descriptor)
    return result
