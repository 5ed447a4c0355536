"""Folder input: a local folder of photos is planned like an archive, with the image rules
but not the archive limits (it is local), and without ever following a symbolic link.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from pipeline.config import IngestConfig
from pipeline.errors import NoImagesError
from pipeline.ingest.manifest import SkippedFile
from pipeline.ingest.plan import (
    CHUNK,
    IMAGE_EXTENSIONS,
    Entry,
    Overflow,
    Plan,
    SkipImage,
    by_final_name,
    copy_limited,
    is_ignored,
    suffix,
)


def scan_folder(root: Path, exclude: Path, cfg: IngestConfig) -> Plan:
    """Walk ``root`` (symlinks never followed) and plan copying its images."""
    found: list[tuple[tuple[str, ...], Path]] = []
    plan = Plan(entries=[])
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel = here.relative_to(root).parts
        kept = []
        for d in sorted(dirnames):
            if is_ignored((d,)) or (here / d).resolve() == exclude:
                plan.ignored += 1  # a hidden folder counts once; it is not walked
            else:
                kept.append(d)
        dirnames[:] = kept
        for fname in filenames:
            parts = (*rel, fname)
            _classify_file(here / fname, parts, found, plan)
    if not found:
        raise NoImagesError(
            f"the folder holds no images; {plan.ignored} other files ignored, "
            f"{len(plan.skipped)} skipped"
        )
    limit = cfg.max_entry_bytes
    plan.entries = [Entry(name, _file_fetcher(path, limit)) for name, path in by_final_name(found)]
    return plan


def _classify_file(
    path: Path, parts: tuple[str, ...], found: list[tuple[tuple[str, ...], Path]], plan: Plan
) -> None:
    if is_ignored(parts) or suffix(parts) not in IMAGE_EXTENSIONS:
        plan.ignored += 1
        return
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        # A link may point anywhere on the server; never follow it.
        plan.skipped.append(SkippedFile("/".join(parts), "symbolic links are not followed"))
    elif not stat.S_ISREG(mode):
        plan.skipped.append(SkippedFile("/".join(parts), "not a regular file"))
    else:
        found.append((parts, path))


def _file_fetcher(path: Path, limit: int) -> Callable[[Path], None]:
    return lambda target: _copy_file(path, target, limit)


def _copy_file(path: Path, target: Path, limit: int) -> None:
    # O_NOFOLLOW: the file was checked not to be a link, keep it that way when opening.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        raise SkipImage("file cannot be read") from None
    with os.fdopen(fd, "rb") as src:
        try:
            for _ in copy_limited(iter(lambda: src.read(CHUNK), b""), target, limit):
                pass
        except Overflow:
            raise SkipImage(f"file is larger than {limit} bytes") from None
