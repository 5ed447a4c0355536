"""What an ingest will stage, whatever the input: the images found (each with a way to
fetch its bytes), the files ignored or skipped, and the rules shared by ZIP and folder
input (which files are images, how they are named, copies that stop at a size limit).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TypeVar

from pipeline.errors import UnsafePathError
from pipeline.ingest.manifest import SkippedFile

T = TypeVar("T")

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
)
"""Suffixes (lower case) of the files taken as images."""

CHUNK = 1024 * 1024
"""Bytes read at a time when copying or decompressing an image."""


class SkipImage(Exception):
    """An image is unusable; it is reported and left out, the ingest goes on."""


class Overflow(Exception):
    """A stream produced more bytes than allowed."""


@dataclass
class Entry:
    """One image to stage: its name and how to write its bytes to a target file."""

    name: str
    fetch: Callable[[Path], None]
    member: zipfile.ZipInfo | None = None
    """The ZIP member it comes from (``None`` for folder input)."""


@dataclass
class Plan:
    """The images to stage, in name order, and what was left out while planning."""

    entries: list[Entry]
    ignored: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)


def is_ignored(parts: tuple[str, ...]) -> bool:
    """Hidden files/folders and macOS resource forks are not part of the photo set."""
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def suffix(parts: tuple[str, ...]) -> str:
    return PurePosixPath(parts[-1]).suffix.lower()


def _strip_common_folder(names: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Drop a top folder shared by every image (``photos/a.jpg`` -> ``a.jpg``)."""
    if not names or any(len(parts) < 2 for parts in names):
        return names
    top = names[0][0]
    if any(parts[0] != top for parts in names):
        return names
    return [parts[1:] for parts in names]


def image_names(names: list[tuple[str, ...]]) -> list[str]:
    """Final image names: common top folder dropped, white space replaced by ``_``.

    COLMAP's pair lists are space-separated, so a name with a space would be split
    in two there; ``IMG 001.jpg`` becomes ``IMG_001.jpg`` everywhere instead.
    """
    return [re.sub(r"\s", "_", "/".join(p)) for p in _strip_common_folder(names)]


def by_final_name(found: Sequence[tuple[tuple[str, ...], T]]) -> list[tuple[str, T]]:
    """Each found image (its path parts and where it comes from) under its final name,
    conflicts refused, in name order: the order every input is staged in."""
    names = image_names([parts for parts, _ in found])
    check_name_conflicts(names)
    return sorted(zip(names, (source for _, source in found), strict=True), key=lambda x: x[0])


def check_name_conflicts(names: list[str]) -> None:
    """Refuse names that would overwrite each other or be both a file and a folder."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UnsafePathError(f"member {name!r} appears more than once in the archive")
        seen.add(name)
    for name in names:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in seen:
                raise UnsafePathError(f"member {name!r} is inside another image's name")


def copy_limited(chunks: Iterable[bytes], target: Path, limit: int) -> Iterator[bytes]:
    """Write ``chunks`` into a new file ``target``, yielding each one once written.

    Raises :class:`Overflow` as soon as more than ``limit`` bytes arrive, before the
    excess is written.
    """
    written = 0
    with target.open("xb") as out:
        for chunk in chunks:
            written += len(chunk)
            if written > limit:
                raise Overflow
            out.write(chunk)
            yield chunk
