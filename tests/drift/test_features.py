"""Per-image features (drift.features)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from drift import features
from drift.features import (
    DESCRIPTOR_DIM,
    FEATURES,
    collect_features,
    image_features,
)
from tests.drift.conftest import MakeImages, make_image


def test_all_features_present_and_finite(tmp_path: Path) -> None:
    values = image_features(make_image(tmp_path / "a.png", 1))
    assert tuple(values) == FEATURES
    assert all(isinstance(v, float) and math.isfinite(v) for v in values.values())
    assert 0 <= values["brightness"] <= 1
    assert 0 <= values["saturation"] <= 1
    assert 0 < values["entropy"] <= 8
    assert values["long_side"] == 64
    assert values["aspect"] == pytest.approx(64 / 48)
    assert values["exif_focal"] == 0.0
    assert values["megapixels"] == pytest.approx(64 * 48 / 1e6)


def test_dark_vs_bright(tmp_path: Path) -> None:
    dark = image_features(make_image(tmp_path / "dark.png", 1, gain=0.2))
    bright = image_features(make_image(tmp_path / "bright.png", 1, gain=1.4))
    assert dark["brightness"] < 0.2 < 0.5 < bright["brightness"]


def test_blur_lowers_sharpness(tmp_path: Path) -> None:
    sharp = image_features(make_image(tmp_path / "sharp.png", 1))
    blurred = image_features(make_image(tmp_path / "blurred.png", 1, blur=3))
    assert blurred["sharpness"] < sharp["sharpness"] / 10


def test_grey_has_no_saturation(tmp_path: Path) -> None:
    grey = image_features(make_image(tmp_path / "grey.png", 1, colour=False))
    colour = image_features(make_image(tmp_path / "colour.png", 1))
    assert grey["saturation"] == pytest.approx(0, abs=1e-6)
    assert colour["saturation"] > 0.1


def test_large_image_is_downscaled_but_size_reported(tmp_path: Path) -> None:
    values = image_features(make_image(tmp_path / "big.png", 1, size=(1200, 300)))
    assert values["long_side"] == 1200
    assert values["aspect"] == pytest.approx(4.0)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (60, 40), (120, 80, 40)).save(path, exif=exif)
    values = image_features(path)
    assert values["long_side"] == 60
    assert values["aspect"] == pytest.approx(40 / 60)


def test_pixel_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_image(tmp_path / "a.png", 1)
    monkeypatch.setattr(features, "MAX_PIXELS", 1000)
    with pytest.raises(features.ImageTooLargeError):
        image_features(path)


def test_folder_features_skips_unreadable(tmp_path: Path, make_images: MakeImages) -> None:
    paths = make_images("ok", range(3))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    missing = tmp_path / "missing.png"
    collected = collect_features([paths[0], broken, paths[1], missing, paths[2]])
    assert collected.n_images == 3
    assert collected.skipped == [broken, missing]
    assert set(collected.values) == set(FEATURES)
    assert all(len(v) == 3 for v in collected.values.values())
    assert len(collected.descriptors) == 3


def test_blur_lowers_noise_and_keypoints(tmp_path: Path) -> None:
    sharp = image_features(make_image(tmp_path / "sharp.png", 1, size=(128, 96)))
    blurred = image_features(make_image(tmp_path / "blurred.png", 1, size=(128, 96), blur=3))
    assert blurred["noise"] < sharp["noise"] / 3
    assert blurred["keypoint_density"] < sharp["keypoint_density"]


def test_grey_has_no_colourfulness(tmp_path: Path) -> None:
    grey = image_features(make_image(tmp_path / "grey.png", 1, colour=False))
    colour = image_features(make_image(tmp_path / "colour.png", 1))
    assert grey["colourfulness"] == pytest.approx(0, abs=1e-6)
    assert colour["colourfulness"] > 0.05


def test_exif_focal_length_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "camera.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x920A] = 4.2  # FocalLength, in the Exif sub-IFD
    Image.new("RGB", (60, 40), (120, 80, 40)).save(path, exif=exif)
    assert image_features(path)["exif_focal"] == 1.0


def test_descriptor_is_compact_and_normalised(tmp_path: Path) -> None:
    [descriptor] = collect_features([make_image(tmp_path / "a.png", 1)]).descriptors
    assert len(descriptor) == DESCRIPTOR_DIM
    assert all(math.isfinite(v) for v in descriptor)
    hue, orientation = descriptor[16:24], descriptor[24:]
    assert sum(hue) == pytest.approx(1) and sum(orientation) == pytest.approx(1)


def test_features_of_real_photos(bench_photos: list[Path]) -> None:
    """Photos of the benchmark: every feature readable, of plausible size, fast enough
    for every upload (the benchmark command times them: docs/benchmarks.md)."""
    collected = collect_features(bench_photos)
    assert collected.n_images == len(bench_photos) and not collected.skipped
    for name in FEATURES:
        assert all(math.isfinite(v) for v in collected.values[name]), name
    assert min(collected.values["long_side"]) >= 256
    assert max(collected.values["keypoint_density"]) > 1.0
    assert 0.05 < max(collected.values["brightness"]) < 0.95
