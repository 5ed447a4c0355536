"""probe_zip: an upload's images are checked by content before it is accepted."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from pipeline.config import IngestConfig
from pipeline.errors import NotAnImageError, TooFewImagesError
from pipeline.ingest import probe_zip
from tests.pipeline.ingest.support import JPG, image_bytes, make_zip

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480"></svg>'
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner.jpg", JPG)
    return buf.getvalue()


def test_real_photos_pass(upload: Path) -> None:
    make_zip(upload, {"a.jpg": JPG, "b.png": image_bytes("PNG", seed=2), "notes.txt": b"x"})
    assert [m.filename for m in probe_zip(upload)] == ["a.jpg", "b.png"]


@pytest.mark.parametrize(
    "fake, why", [(HTML, "not a JPEG"), (SVG, "not a JPEG"), (None, "not a JPEG")]
)
def test_members_that_are_not_images_are_named(upload: Path, fake: bytes | None, why) -> None:
    make_zip(upload, {"a.jpg": JPG, "b.jpg": image_bytes(seed=1), "trap.jpg": fake or _zip_bytes()})
    with pytest.raises(NotAnImageError) as info:
        probe_zip(upload)
    assert "1 files" in str(info.value) and "trap.jpg" in str(info.value)
    assert why in str(info.value) and "a.jpg" not in str(info.value)


def test_a_header_over_the_pixel_cap_is_refused_unread(upload: Path) -> None:
    big = io.BytesIO()
    Image.new("L", (4000, 4000)).save(big, "PNG")  # 16 MP, deflates to a few KB
    make_zip(upload, {"a.jpg": JPG, "b.jpg": image_bytes(seed=1), "huge.png": big.getvalue()})
    with pytest.raises(NotAnImageError, match=r"huge\.png"):
        probe_zip(upload, IngestConfig(max_image_pixels=1_000_000))


def test_one_photo_is_too_few(upload: Path) -> None:
    make_zip(upload, {"only.jpg": JPG, "readme.txt": b"hello"})
    with pytest.raises(TooFewImagesError, match="needs at least 2"):
        probe_zip(upload)


def test_many_refused_members_are_counted_not_all_named(upload: Path) -> None:
    make_zip(upload, {"a.jpg": JPG, **{f"fake{i:02d}.jpg": HTML for i in range(15)}})
    with pytest.raises(NotAnImageError) as info:
        probe_zip(upload)
    assert "15 files" in str(info.value) and "and 5 more" in str(info.value)
