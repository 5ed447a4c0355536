"""The drift benchmark (drift.benchmark) on a generated collection in IMC2025 layout:
every variant is tried, and the changes it makes are seen as drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from drift import benchmark
from tests.drift.conftest import make_image


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    root = tmp_path / "bench"
    for scene, gain in (("a", 1.0), ("b", 0.5)):
        folder = root / "train" / scene
        folder.mkdir(parents=True)
        for i in range(16):
            make_image(folder / f"{scene}{i}.png", i + (100 if scene == "b" else 0), (96, 72), gain)
    (root / "train" / "a" / "notes.txt").write_text("not a photo")
    return root


def test_every_variant_is_measured(collection: Path) -> None:
    assert {k: len(v) for k, v in benchmark.benchmark_images(collection).items()} == {
        "a": 16,
        "b": 16,
    }
    result = benchmark.run([collection], trials=3, batch=10, seed=1)
    assert result["photos"] == 32 and result["scenes"] == ["bench/a", "bench/b"]
    variants = result["variants"]
    assert set(variants) == set(benchmark.EXPECTED)
    assert all(sum(v["severities"].values()) == 3 for v in variants.values())
    assert variants["darkened"]["drift_rate"] == 1.0
    assert variants["downscaled"]["drift_rate"] == 1.0
    assert result["seconds_per_image_features"] > 0


def test_too_few_photos_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "tiny" / "train" / "s"
    folder.mkdir(parents=True)
    make_image(folder / "one.png", 1)
    with pytest.raises(ValueError, match="too few"):
        benchmark.run([tmp_path / "tiny"], trials=1)
