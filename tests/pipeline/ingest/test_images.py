"""Image decoding: formats, unusable images skipped with a reason, EXIF orientation and focal
length, WebP stored as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from pipeline.config import IngestConfig
from pipeline.ingest import ingest
from tests.pipeline.ingest.support import JPG, image_bytes, make_zip


def test_mixed_case_extensions(upload: Path, dest: Path) -> None:
    members = {
        "A.JPG": JPG,
        "b.Jpeg": image_bytes(seed=1),
        "c.PNG": image_bytes("PNG"),
        "d.Tiff": image_bytes("TIFF"),
        "e.tif": image_bytes("TIFF", seed=2),
        "f.BMP": image_bytes("BMP"),
        "g.WebP": image_bytes("WEBP"),
    }
    make_zip(upload, members)
    result = ingest(upload, dest)
    assert [r.name for r in result.images] == sorted(members)
    assert result.skipped == [] and result.ignored == 0
    for rec in result.images:
        assert rec.path == dest / rec.name and (rec.width, rec.height) == (64, 48)
        if rec.name != "g.WebP":
            assert rec.path.read_bytes() == members[rec.name]


def test_corrupt_images_skipped_with_reason(upload: Path, dest: Path) -> None:
    make_zip(
        upload,
        {
            "good.jpg": JPG,
            "garbage.jpg": b"definitely not an image" * 20,
            "truncated.jpg": image_bytes(size=(256, 256))[:2000],
            "tiny.png": image_bytes("PNG", (16, 16)),
        },
    )
    result = ingest(upload, dest)
    assert [r.name for r in result.images] == ["good.jpg"]
    reasons = {s.name: s.reason for s in result.skipped}
    assert set(reasons) == {"garbage.jpg", "truncated.jpg", "tiny.png"}
    assert all(reasons.values())
    assert not (dest / "garbage.jpg").exists() and not (dest / "truncated.jpg").exists()


def test_oversize_pixel_image_skipped(upload: Path, dest: Path) -> None:
    make_zip(upload, {"small.jpg": JPG, "huge.png": image_bytes("PNG", (200, 200))})
    result = ingest(upload, dest, IngestConfig(max_image_pixels=100 * 100))
    assert [r.name for r in result.images] == ["small.jpg"]
    assert [s.name for s in result.skipped] == ["huge.png"]
    assert "pixels" in result.skipped[0].reason


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "TIFF", "WEBP"])
def test_exif_orientation_applied(upload: Path, dest: Path, fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rotated = image_bytes(fmt, size=(64, 48), exif=exif)
    plain = image_bytes(fmt, size=(64, 48), seed=5)
    ext = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif", "WEBP": "webp"}[fmt]
    make_zip(upload, {f"rotated.{ext}": rotated, f"plain.{ext}": plain})
    result = ingest(upload, dest)
    recs = {r.name: r for r in result.images}
    assert (recs[f"rotated.{ext}"].width, recs[f"rotated.{ext}"].height) == (48, 64)
    with Image.open(dest / f"rotated.{ext}") as img:
        # Pixels themselves are upright (COLMAP ignores EXIF orientation).
        assert img.getexif().get(0x0112, 1) == 1
        assert img.size == (48, 64)
    # Unrotated images keep their exact bytes (WebP is stored as PNG, see below).
    assert (recs[f"plain.{ext}"].width, recs[f"plain.{ext}"].height) == (64, 48)
    if fmt != "WEBP":
        assert (dest / f"plain.{ext}").read_bytes() == plain


def test_webp_is_stored_losslessly_in_a_format_colmap_reads(upload: Path, dest: Path) -> None:
    import pycolmap

    webp = image_bytes("WEBP", size=(64, 48), seed=3)
    make_zip(upload, {"photo.webp": webp})
    (rec,) = ingest(upload, dest).images
    assert rec.name == "photo.webp"  # outputs name the photo as it was sent
    with Image.open(io.BytesIO(webp)) as sent, Image.open(rec.path) as stored:
        assert stored.format == "PNG"
        assert np.array_equal(np.asarray(sent.convert("RGB")), np.asarray(stored.convert("RGB")))
    bitmap = pycolmap.Bitmap.read(str(rec.path), False)
    assert bitmap is not None and (bitmap.width, bitmap.height) == (64, 48)


def test_exif_focal_priors(upload: Path, dest: Path) -> None:
    f35 = Image.Exif()
    f35.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLengthIn35mmFilm] = 36
    plane = Image.Exif()
    sub = plane.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.FocalLength] = 4.0  # mm
    sub[ExifTags.Base.FocalPlaneXResolution] = 25.0  # pixels per mm
    sub[ExifTags.Base.FocalPlaneResolutionUnit] = 4  # mm
    make_zip(
        upload,
        {
            "f35.jpg": image_bytes(size=(80, 60), exif=f35),
            "plane.jpg": image_bytes(size=(80, 60), exif=plane),
            "none.jpg": image_bytes(size=(80, 60)),
        },
    )
    recs = {r.name: r for r in ingest(upload, dest).images}
    assert recs["f35.jpg"].focal_px == pytest.approx(80.0)  # 36/36 * long side
    assert recs["plane.jpg"].focal_px == pytest.approx(100.0)  # 4 mm * 25 px/mm
    assert recs["none.jpg"].focal_px is None
