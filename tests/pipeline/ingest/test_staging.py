"""Staging: the destination is replaced only when everything succeeded; refusals, cancels and
re-runs leave no trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import (
    ArchiveTooLargeError,
    Cancelled,
    IngestError,
    NoImagesError,
    NotAZipError,
    UnsafePathError,
)
from pipeline.ingest import MANIFEST_NAME, ingest, load_manifest
from pipeline.progress import CancelToken
from tests.pipeline.ingest.support import (
    JPG,
    assert_refused,
    image_bytes,
    make_zip,
    patch_central,
    tree,
)


def test_missing_source_is_not_a_zip(tmp_path: Path, dest: Path) -> None:
    assert_refused(NotAZipError, tmp_path / "missing.zip", dest)


def test_refusal_keeps_existing_dest(upload: Path, dest: Path) -> None:
    make_zip(upload, {"a.jpg": JPG})
    first = ingest(upload, dest)
    before = {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    make_zip(upload, {"a.jpg": JPG, "../evil.jpg": JPG})
    with pytest.raises(UnsafePathError):
        ingest(upload, dest)
    assert {p: p.read_bytes() for p in dest.rglob("*") if p.is_file()} == before
    assert load_manifest(dest) == first


def test_refusal_after_parents_created_removes_them(tmp_path: Path, upload: Path) -> None:
    make_zip(upload, {"liar.jpg": image_bytes(size=(128, 128))})
    patch_central(upload, 24, "<I", 100)
    with pytest.raises(ArchiveTooLargeError):
        ingest(upload, tmp_path / "run" / "deep" / "images")
    assert tree(tmp_path) == {"upload.zip"}


def test_dest_containing_source_refused(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(JPG)
    with pytest.raises(IngestError):
        ingest(folder, folder)
    with pytest.raises(IngestError):
        ingest(folder, tmp_path)


def test_no_valid_image_left(upload: Path, dest: Path) -> None:
    make_zip(upload, {"a.jpg": b"junk", "b.jpg": b"more junk"})
    err = assert_refused(NoImagesError, upload, dest)
    assert "2 skipped" in str(err)


def test_rerun_replaces_dest(upload: Path, dest: Path, tmp_path: Path) -> None:
    make_zip(upload, {"a.jpg": JPG, "b.jpg": image_bytes(seed=1)})
    first = ingest(upload, dest)
    (dest / "stale.jpg").write_bytes(JPG)
    assert ingest(upload, dest) == first
    assert not (dest / "stale.jpg").exists()
    assert tree(tmp_path) == {
        "upload.zip",
        "images",
        "images/a.jpg",
        "images/b.jpg",
        f"images/{MANIFEST_NAME}",
    }


def test_progress_and_cancel(upload: Path, dest: Path, tmp_path: Path) -> None:
    make_zip(upload, {f"{i}.jpg": image_bytes(seed=i) for i in range(3)})
    calls: list[tuple[str, float, str]] = []
    ingest(upload, dest, progress=lambda *args: calls.append(args))
    assert {stage for stage, _, _ in calls} == {"ingest"}
    fractions = [f for _, f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(calls) == 4

    token = CancelToken()

    def cancel_after_first(stage: str, fraction: float, message: str) -> None:
        if fraction > 0:
            token.cancel()

    other = tmp_path / "other"
    with pytest.raises(Cancelled):
        ingest(upload, other, progress=cancel_after_first, cancel=token)
    assert not other.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
