"""Which files are images and what they are called, whatever the input."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from PIL import Image

from pipeline.ingest import IMAGE_EXTENSIONS, MANIFEST_NAME, ingest, inspect_zip
from tests.pipeline.ingest.support import JPG, image_bytes, make_zip


def test_image_extensions() -> None:
    expected = [".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"]
    assert sorted(IMAGE_EXTENSIONS) == expected


def test_macosx_hidden_and_other_files_ignored(upload: Path, dest: Path) -> None:
    make_zip(
        upload,
        {
            "photos/": b"",
            "photos/a.jpg": JPG,
            "photos/b.jpg": image_bytes(seed=1),
            "photos/.DS_Store": b"x",
            "photos/.hidden.jpg": JPG,
            "photos/.cache/c.jpg": JPG,
            "photos/readme.txt": b"notes",
            "__MACOSX/photos/._a.jpg": b"resource fork",
            "__MACOSX/._.zip": b"not an archive: ignored before the nesting check",
        },
    )
    result = ingest(upload, dest)
    assert [r.name for r in result.images] == ["a.jpg", "b.jpg"]
    assert result.ignored == 6
    assert sorted(p.name for p in dest.iterdir()) == ["a.jpg", "b.jpg", MANIFEST_NAME]


def test_same_name_in_two_folders_gives_two_images(upload: Path, dest: Path) -> None:
    a, b = image_bytes(seed=1), image_bytes(seed=2)
    make_zip(upload, {"b/img.jpg": b, "a/img.jpg": a})
    result = ingest(upload, dest)
    assert [r.name for r in result.images] == ["a/img.jpg", "b/img.jpg"]
    assert (dest / "a" / "img.jpg").read_bytes() == a
    assert (dest / "b" / "img.jpg").read_bytes() == b
    assert [i.filename for i in inspect_zip(upload)] == ["a/img.jpg", "b/img.jpg"]


def test_common_top_folder_stripped(upload: Path, dest: Path) -> None:
    make_zip(upload, {"photos/a.jpg": JPG, "photos/set/b.jpg": image_bytes(seed=1)})
    result = ingest(upload, dest)
    assert [r.name for r in result.images] == ["a.jpg", "set/b.jpg"]
    assert (dest / "set" / "b.jpg").is_file()


def test_white_space_in_names_becomes_underscore(tmp_path: Path) -> None:
    """COLMAP pair lists are space-separated: names must not contain white space."""
    archive = tmp_path / "spaces.zip"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 30, 30)).save(buf, "JPEG")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("my photos/IMG 001.jpg", buf.getvalue())
        zf.writestr("other/IMG 002.jpg", buf.getvalue())
    result = ingest(archive, tmp_path / "dest")
    assert [rec.name for rec in result.images] == ["my_photos/IMG_001.jpg", "other/IMG_002.jpg"]
    assert all(rec.path.is_file() for rec in result.images)
