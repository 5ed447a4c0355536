"""Folder input: the image rules without the archive limits, symbolic links never followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from pipeline.errors import NoImagesError
from pipeline.ingest import ingest
from tests.pipeline.ingest.support import JPG, image_bytes


def test_folder_input(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    (src / ".git").mkdir()
    (src / "a" / "img.JPG").write_bytes(image_bytes(seed=1))
    (src / "b" / "img.jpg").write_bytes(image_bytes(seed=2))
    (src / "b" / "broken.png").write_bytes(b"junk")
    (src / ".git" / "x.jpg").write_bytes(JPG)
    (src / "notes.txt").write_text("hi")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(JPG)
    os.symlink(outside, src / "link.jpg")
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}

    dest = tmp_path / "out" / "images"
    result = ingest(src, dest)
    assert [r.name for r in result.images] == ["a/img.JPG", "b/img.jpg"]
    assert {s.name for s in result.skipped} == {"b/broken.png", "link.jpg"}
    assert result.ignored == 2  # notes.txt and the .git folder
    assert (dest / "a" / "img.JPG").read_bytes() == before[src / "a" / "img.JPG"]
    assert not (dest / "link.jpg").exists()
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before


def test_folder_single_top_folder_stripped_and_rotation(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    src = tmp_path / "src" / "photos"
    src.mkdir(parents=True)
    (src / "r.jpg").write_bytes(image_bytes(size=(64, 40), exif=exif))
    result = ingest(tmp_path / "src", tmp_path / "dest")
    assert [(r.name, r.width, r.height) for r in result.images] == [("r.jpg", 40, 64)]


def test_folder_without_images(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "readme.md").write_text("no photos")
    with pytest.raises(NoImagesError):
        ingest(src, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
