"""Staging: :func:`ingest` turns an upload (a ZIP or a folder) into a clean folder of images
plus ``manifest.json``.

All writing happens in a fresh staging folder next to ``dest_dir`` that replaces it only
once everything succeeded, so a failed or cancelled ingest leaves ``dest_dir`` exactly as
it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pipeline.config import IngestConfig
from pipeline.errors import IngestError, NoImagesError, NotAZipError, UnsafePathError
from pipeline.ingest.archive import open_zip, scan_zip
from pipeline.ingest.folder import scan_folder
from pipeline.ingest.images import process_image
from pipeline.ingest.manifest import ImageRecord, IngestResult, SkippedFile, write_manifest
from pipeline.ingest.plan import Plan, SkipImage
from pipeline.progress import CancelToken, ProgressCallback, null_progress


def _staged_path(staging: Path, name: str) -> Path:
    """Where ``name`` goes inside ``staging``; refuses any path that resolves outside."""
    target = staging.joinpath(*name.split("/"))
    if not target.resolve().is_relative_to(staging.resolve()):
        raise UnsafePathError(f"member {name!r} points outside the destination")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _stage_images(
    plan: Plan,
    staging: Path,
    dest_dir: Path,
    cfg: IngestConfig,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> IngestResult:
    """Fetch and validate each planned image into ``staging``, in name order."""
    images: list[ImageRecord] = []
    skipped = list(plan.skipped)
    total = len(plan.entries)
    for index, entry in enumerate(plan.entries):
        if cancel is not None:
            cancel.check()
        progress("ingest", index / total, f"image {index + 1}/{total}: {entry.name}")
        target = _staged_path(staging, entry.name)
        final = dest_dir.joinpath(*entry.name.split("/"))
        try:
            entry.fetch(target)
            images.append(process_image(target, entry.name, final, cfg))
        except SkipImage as skip:
            target.unlink(missing_ok=True)
            skipped.append(SkippedFile(entry.name, str(skip)))
    if not images:
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:5])
        raise NoImagesError(f"no usable image: {len(skipped)} skipped ({reasons})")
    progress("ingest", 1.0, f"{len(images)} images ready, {len(skipped)} skipped")
    return IngestResult(images=images, skipped=skipped, ignored=plan.ignored)


def _publish(staging: Path, dest_dir: Path) -> None:
    """Put the finished staging folder in place of ``dest_dir``.

    Both folders share a parent, so each step is a rename; the old content is moved
    aside first (a directory rename cannot replace a non-empty one) and only deleted
    once the new one is in place.
    """
    if not dest_dir.exists():
        os.replace(staging, dest_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.old-", dir=dest_dir.parent))
    os.replace(dest_dir, old / "content")
    try:
        os.replace(staging, dest_dir)
    except BaseException:
        os.replace(old / "content", dest_dir)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return the ones created, deepest first."""
    created = []
    probe = folder
    while not probe.exists():
        created.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # someone else put something there; leave it


def _check_destination(source: Path, dest_dir: Path) -> None:
    """Refuse destinations whose replacement would delete the source or clobber a file."""
    src, dst = source.resolve(), dest_dir.resolve()
    if src == dst or src.is_relative_to(dst):
        raise IngestError("the destination folder must not contain the upload")
    if dest_dir.exists() and not dest_dir.is_dir():
        raise NotADirectoryError("the destination exists and is not a folder")


def _run(
    plan: Plan,
    dest_dir: Path,
    cfg: IngestConfig,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> IngestResult:
    """Stage every image next to ``dest_dir``, then swap it in; undo everything on error."""
    created = _make_parents(dest_dir.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.ingest-", dir=dest_dir.parent))
    try:
        result = _stage_images(plan, staging, dest_dir, cfg, progress, cancel)
        write_manifest(result, staging)
        _publish(staging, dest_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise
    return result


def ingest(
    source: Path,
    dest_dir: Path,
    cfg: IngestConfig | None = None,
    progress: ProgressCallback = null_progress,
    cancel: CancelToken | None = None,
) -> IngestResult:
    """ZIP or folder -> validated images in dest_dir (created) plus manifest.json written there.

    Every run rebuilds ``dest_dir`` from scratch in a staging folder and swaps it in, so
    re-running is safe and a failure (refusal, cancellation, crash) leaves ``dest_dir``
    as it was. Archive-level problems raise :class:`~pipeline.errors.IngestError`
    subclasses; unusable images are only reported in :attr:`IngestResult.skipped`.
    Folder inputs get the image rules but not the archive limits (they are local).
    ``progress`` hears step ``"ingest"`` once per image (see :mod:`pipeline.progress`).
    """
    cfg = cfg or IngestConfig()
    source, dest_dir = Path(source), Path(dest_dir)
    _check_destination(source, dest_dir)
    if source.is_dir():
        plan = scan_folder(source, dest_dir.resolve(), cfg)
        return _run(plan, dest_dir, cfg, progress, cancel)
    if not source.is_file():
        raise NotAZipError("the upload is neither a ZIP archive nor a folder")
    with open_zip(source, cfg) as zf:
        plan = scan_zip(zf, cfg)
        return _run(plan, dest_dir, cfg, progress, cancel)
