"""Per-image features (drift.features)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from drift import features
from drift.features import FEATURES, collect_features, folder_features, image_features
from tests.drift.conftest import MakeImages, make_image


def test_all_features_present_and_finite(tmp_path: Path) -> None:
    values = image_features(make_image(tmp_path / "a.png", 1))
    assert tuple(values) == FEATURES
    assert all(isinstance(v, float) and math.isfinite(v) for v in values.values())
    assert 0 <= values["brightness"] <= 1
    assert 0 <= values["saturation"] <= 1
    assert 0 < values["entropy"] <= 8
    assert (values["width"], values["height"]) == (64, 48)
    assert values["aspect"] == pytest.approx(64 / 48)
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
    assert (values["width"], values["height"]) == (1200, 300)
    assert values["aspect"] == pytest.approx(4.0)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (60, 40), (120, 80, 40)).save(path, exif=exif)
    values = image_features(path)
    assert (values["width"], values["height"]) == (40, 60)
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
    values = folder_features(paths)
    assert set(values) == set(FEATURES)
    assert all(len(v) == 3 for v in values.values())
