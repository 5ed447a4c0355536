"""Synthetic photos for the drift tests: textured noise, optionally dark, blurred, grey."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from tests.conftest import find_bench_dirs

MakeImages = Callable[..., list[Path]]


def make_image(
    path: Path,
    seed: int,
    size: tuple[int, int] = (64, 48),
    gain: float = 1.0,
    blur: float = 0.0,
    colour: bool = True,
) -> Path:
    """Write a textured RGB image; ``gain`` scales brightness, ``blur`` is a Gaussian radius."""
    rng = np.random.default_rng(seed)
    width, height = size
    base = rng.uniform(0.35, 0.65)
    noise = rng.normal(0.0, 0.2, (height, width, 1 if not colour else 3))
    tint = rng.uniform(-0.15, 0.15, 3) if colour else np.zeros(3)
    pixels = np.clip((base + noise + tint) * gain, 0, 1)
    pixels = np.broadcast_to(pixels, (height, width, 3))
    image = Image.fromarray((pixels * 255).astype(np.uint8), "RGB")
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    image.save(path)
    return path


@pytest.fixture
def make_images(tmp_path: Path) -> MakeImages:
    """``make_images(prefix, seeds, **kwargs)`` -> paths of generated PNGs in tmp_path."""

    def _make(prefix: str, seeds: range, **kwargs: object) -> list[Path]:
        return [make_image(tmp_path / f"{prefix}_{s}.png", s, **kwargs) for s in seeds]

    return _make


@pytest.fixture
def bench_photos() -> list[Path]:
    """A few photos of each scene of the shared benchmarks; skips where they are absent."""
    from drift.benchmark import benchmark_images

    roots = find_bench_dirs()
    if not roots:
        pytest.skip("no shared benchmark: set SCENE3D_BENCH_DIR or place it in ../shared/data")
    return [p for root in roots for paths in benchmark_images(root).values() for p in paths[:4]]
