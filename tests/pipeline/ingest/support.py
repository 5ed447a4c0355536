"""Helpers the ingest tests share: small generated images and ZIPs (patched byte-wise where
zipfile cannot write the hostile case itself), and the check that a refusal changed nothing."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.config import IngestConfig
from pipeline.errors import IngestError
from pipeline.ingest import ingest


def image_bytes(
    fmt: str = "JPEG",
    size: tuple[int, int] = (64, 48),
    seed: int = 0,
    exif: Image.Exif | None = None,
) -> bytes:
    """A small noisy image (noise so that every seed gives different bytes)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    params = {"exif": exif} if exif is not None else {}
    Image.fromarray(pixels).save(buf, format=fmt, **params)
    return buf.getvalue()


JPG = image_bytes()


def make_zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (files and folders), to prove nothing else was written."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def patch_central(path: Path, offset: int, fmt: str, value: int, record: int = 0) -> None:
    """Overwrite a field of the central directory header number ``record`` of a ZIP."""
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")
    for _ in range(record):
        pos = data.find(b"PK\x01\x02", pos + 1)
    struct.pack_into(fmt, data, pos + offset, value)
    path.write_bytes(bytes(data))


def assert_refused(
    exc_type: type[Exception], source: Path, dest: Path, cfg: IngestConfig | None = None
) -> IngestError:
    """Ingest must raise exactly ``exc_type`` and leave the file system untouched."""
    root = dest.parent
    before = tree(root)
    with pytest.raises(IngestError) as info:
        ingest(source, dest, cfg)
    assert type(info.value) is exc_type, info.value
    assert tree(root) == before
    assert str(root) not in str(info.value)  # never leak server paths
    return info.value
