"""Feature extraction: shared cameras, low-texture second pass, command-line overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pycolmap
import pytest
from PIL import Image

from pipeline.config import FeatureConfig, parse_overrides
from pipeline.eval.synthetic import make_noise_image
from pipeline.features import camera_groups, extract_sift
from pipeline.ingest import ImageRecord
from pipeline.presets import load_preset
from pipeline.progress import CancelToken


def _record(name: str, width: int = 640, height: int = 480, focal: float | None = None):
    return ImageRecord(name=name, path=Path(name), width=width, height=height, focal_px=focal)


def test_auto_shares_a_camera_between_images_of_one_size_and_focal() -> None:
    images = [
        _record("a.jpg"),
        _record("b.jpg"),
        _record("c.jpg", 480, 640),
        _record("d.jpg", focal=800.0),
        _record("e.jpg", focal=800.04),  # EXIF rounding noise: same camera
        _record("f.jpg", focal=1200.0),
    ]
    assert camera_groups(images, "auto") == [
        ["a.jpg", "b.jpg"],
        ["c.jpg"],
        ["d.jpg", "e.jpg"],
        ["f.jpg"],
    ]
    assert camera_groups(images, "per_image") == [[rec.name] for rec in images]
    # One camera per size: COLMAP drops images that do not fit a shared camera's size.
    assert camera_groups(images, "single") == [
        ["a.jpg", "b.jpg", "d.jpg", "e.jpg", "f.jpg"],
        ["c.jpg"],
    ]
    with pytest.raises(ValueError, match="unknown camera_mode 'rig'"):
        camera_groups(images, "rig")


def _low_contrast_copy(src: Path, dst: Path, contrast: float) -> None:
    pixels = np.asarray(Image.open(src), dtype=np.float32)
    flat = pixels.mean() + contrast * (pixels - pixels.mean())
    Image.fromarray(np.clip(flat, 0, 255).astype(np.uint8)).save(dst)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("features")
    make_noise_image(folder / "textured.png", seed=1)
    make_noise_image(folder / "faint_src.png", seed=2)
    _low_contrast_copy(folder / "faint_src.png", folder / "faint.png", contrast=0.08)
    (folder / "faint_src.png").unlink()
    return folder


def _extract(image_dir: Path, database: Path, cfg: FeatureConfig) -> dict[str, int]:
    images = [_record("textured.png"), _record("faint.png")]
    messages: list[str] = []
    extract_sift(
        image_dir, database, images, cfg, lambda _s, _f, m: messages.append(m), CancelToken()
    )
    assert messages and messages[-1].startswith(("extracted", "re-extracted"))
    db = pycolmap.Database.open(database)
    try:
        rows = db.read_all_images()
        assert len({img.camera_id for img in rows}) == 1  # same size, no EXIF: one camera
        return {img.name: db.num_keypoints_for_image(img.image_id) for img in rows}
    finally:
        db.close()


def test_low_texture_images_are_extracted_again_at_a_lower_threshold(image_dir, tmp_path) -> None:
    single = _extract(image_dir, tmp_path / "single.db", FeatureConfig(min_num_features=0))
    assert single["faint.png"] < 300 < single["textured.png"]

    counts = _extract(image_dir, tmp_path / "two.db", FeatureConfig(min_num_features=300))
    assert counts["faint.png"] > max(100, 2 * single["faint.png"])
    assert counts["textured.png"] == single["textured.png"]  # enough at first: untouched


def test_command_line_overrides_become_nested_settings() -> None:
    overrides = parse_overrides(
        [
            "features.max_num_features=4096",
            "features.peak_threshold=0.002",
            "matching.device=cuda",
            "mapping.seed=3",
            "mapping.ignore_two_view_tracks=true",
        ]
    )
    config = load_preset("sift", overrides)
    assert config.features.max_num_features == 4096
    assert config.features.peak_threshold == 0.002
    assert config.matching.device == "cuda"
    assert config.mapping.seed == 3 and config.mapping.ignore_two_view_tracks is True
    assert parse_overrides(None) == {}
    with pytest.raises(ValueError, match="not of the form"):
        parse_overrides(["features.max_num_features"])
    with pytest.raises(KeyError, match="unknown setting 'colour'"):
        load_preset("sift", parse_overrides(["features.colour=1"]))


def test_an_image_colmap_cannot_read_is_left_out_not_fatal(image_dir, tmp_path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("textured.png", "faint.png"):
        (folder / name).write_bytes((image_dir / name).read_bytes())
    Image.open(folder / "textured.png").save(folder / "raw.webp", format="WEBP")  # no decoder
    images = [_record("textured.png"), _record("raw.webp"), _record("faint.png")]
    extract_sift(
        folder, tmp_path / "db.db", images, FeatureConfig(), lambda *_: None, CancelToken()
    )
    db = pycolmap.Database.open(tmp_path / "db.db")
    try:
        assert sorted(img.name for img in db.read_all_images()) == ["faint.png", "textured.png"]
        assert all(db.num_keypoints_for_image(img.image_id) > 0 for img in db.read_all_images())
    finally:
        db.close()


def test_a_keypoint_cap_below_the_threshold_does_not_mark_every_image_weak(
    image_dir, tmp_path
) -> None:
    messages: list[str] = []
    cfg = FeatureConfig(max_num_features=200, min_num_features=1000)
    extract_sift(
        image_dir,
        tmp_path / "db.db",
        [_record("textured.png")],
        cfg,
        lambda _s, _f, m: messages.append(m),
        CancelToken(),
    )
    assert not any(m.startswith("re-extracted") for m in messages)
