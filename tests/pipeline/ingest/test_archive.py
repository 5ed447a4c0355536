"""ZIP safety: hostile or broken archives are refused before anything is written."""

from __future__ import annotations

import stat
import struct
import zipfile
from pathlib import Path

import pytest

from pipeline.config import IngestConfig
from pipeline.errors import (
    ArchiveTooLargeError,
    CompressionRatioError,
    IngestError,
    NestedArchiveError,
    NoImagesError,
    NotAZipError,
    SymlinkError,
    TooManyEntriesError,
    UnsafePathError,
)
from pipeline.ingest import ingest, inspect_zip
from tests.pipeline.ingest.support import JPG, assert_refused, image_bytes, make_zip, patch_central


def test_not_a_zip(upload: Path, dest: Path) -> None:
    upload.write_bytes(b"this is not a zip file at all" * 10)
    assert_refused(NotAZipError, upload, dest)


@pytest.mark.parametrize("damage", ["truncate", "central_signature"])
def test_corrupt_zip(upload: Path, dest: Path, damage: str) -> None:
    make_zip(upload, {"a.jpg": JPG, "b.jpg": image_bytes(seed=1)})
    data = bytearray(upload.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        pos = data.find(b"PK\x01\x02")
        data[pos : pos + 4] = b"XXXX"
    upload.write_bytes(bytes(data))
    assert_refused(NotAZipError, upload, dest)


def test_corrupt_member_data_is_refused_and_cleaned(upload: Path, dest: Path) -> None:
    second = image_bytes(seed=1)
    make_zip(upload, {"a.jpg": JPG, "b.jpg": second}, method=zipfile.ZIP_STORED)
    data = bytearray(upload.read_bytes())
    pos = data.find(second[-300:])  # zero bytes inside b.jpg (stored): its CRC fails
    assert pos > 0
    data[pos : pos + 8] = b"\x00" * 8
    upload.write_bytes(bytes(data))
    err = assert_refused(NotAZipError, upload, dest)
    assert "b.jpg" in str(err)


@pytest.mark.parametrize(
    "members", [{}, {"readme.txt": b"hello", "notes/data.csv": b"1,2"}, {"dir/": b""}]
)
def test_no_images(upload: Path, dest: Path, members: dict[str, bytes]) -> None:
    make_zip(upload, members)
    assert_refused(NoImagesError, upload, dest)


def test_too_many_entries(upload: Path, dest: Path) -> None:
    make_zip(upload, {f"{i}.jpg": JPG for i in range(4)})
    assert_refused(TooManyEntriesError, upload, dest, IngestConfig(max_entries=3))


def test_total_size_over_limit(upload: Path, dest: Path) -> None:
    make_zip(upload, {f"{i}.jpg": image_bytes(seed=i) for i in range(3)})
    cfg = IngestConfig(max_total_bytes=2 * len(JPG))
    assert_refused(ArchiveTooLargeError, upload, dest, cfg)


def test_entry_size_over_limit(upload: Path, dest: Path) -> None:
    make_zip(upload, {"small.jpg": JPG, "big.png": image_bytes("PNG", (200, 200))})
    err = assert_refused(ArchiveTooLargeError, upload, dest, IngestConfig(max_entry_bytes=50_000))
    assert "big.png" in str(err)


def test_zip_bomb_by_ratio(upload: Path, dest: Path) -> None:
    make_zip(upload, {"good.jpg": JPG, "bomb.jpg": bytes(50_000_000)})
    err = assert_refused(CompressionRatioError, upload, dest)
    assert "bomb.jpg" in str(err)


def test_small_compressible_member_passes_ratio_check(upload: Path, dest: Path) -> None:
    # 60 KiB of zeros compresses ~1000x but is below the ratio-check floor.
    make_zip(upload, {"a.jpg": JPG, "notes.txt": bytes(60 * 1024)})
    result = ingest(upload, dest)
    assert [r.name for r in result.images] == ["a.jpg"]
    assert result.ignored == 1


def test_lying_header_is_caught_during_extraction(upload: Path, dest: Path) -> None:
    payload = image_bytes(size=(128, 128))
    make_zip(upload, {"liar.jpg": payload})
    # Central directory: uncompressed size sits 24 bytes into the header.
    patch_central(upload, 24, "<I", 100)
    assert [i.filename for i in inspect_zip(upload)] == ["liar.jpg"]  # passes metadata
    err = assert_refused(ArchiveTooLargeError, upload, dest)
    assert "liar.jpg" in str(err)


def test_a_lying_compressed_size_cannot_hide_a_bomb(upload: Path, dest: Path) -> None:
    # 3 MiB of one colour deflates to about 3 KB; declared as 35 KB its ratio would read 90.
    make_zip(upload, {"a.jpg": JPG, "flat.png": bytes(3 * 1024**2)})
    # Central directory: the compressed size sits 20 bytes into the second record.
    patch_central(upload, 20, "<I", 35_000, record=1)
    err = assert_refused(CompressionRatioError, upload, dest)
    assert "flat.png" in str(err) and "holds at most" in str(err)


def test_many_small_members_add_up_to_a_bomb(upload: Path, dest: Path) -> None:
    # Each member is under the per-member ratio floor; together they expand 300-fold.
    members = {f"pad/{i:03d}.txt": bytes(63 * 1024) for i in range(300)}
    make_zip(upload, {"a.jpg": JPG, **members})
    err = assert_refused(CompressionRatioError, upload, dest)
    assert "times its size" in str(err)


@pytest.mark.parametrize(
    "name",
    ["../x.jpg", "a/../../x.jpg", "/etc/x.jpg", "C:/x.jpg", "c:x.jpg", "..\\x.jpg", "a\\b.jpg"],
)
def test_zip_slip(tmp_path: Path, upload: Path, dest: Path, name: str) -> None:
    make_zip(upload, {"ok.jpg": JPG, name: JPG})
    err = assert_refused(UnsafePathError, upload, dest)
    assert name in str(err) or repr(name)[1:-1] in str(err)
    assert not (tmp_path.parent / "x.jpg").exists()


def test_duplicate_member_names_refused(upload: Path, dest: Path) -> None:
    make_zip(upload, {"a.jpg": JPG, "./a.jpg": image_bytes(seed=3)})
    assert_refused(UnsafePathError, upload, dest)


def test_symlink_member(upload: Path, dest: Path) -> None:
    link = zipfile.ZipInfo("link.jpg")
    link.create_system = 3  # unix, so external_attr carries st_mode
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(upload, "w") as zf:
        zf.writestr("a.jpg", JPG)
        zf.writestr(link, "/etc/passwd")
    err = assert_refused(SymlinkError, upload, dest)
    assert "link.jpg" in str(err)


@pytest.mark.parametrize("name", ["inner.zip", "sub/data.tar.gz", "x.7z", "y.RAR", "z.tgz"])
def test_nested_archive(upload: Path, dest: Path, name: str) -> None:
    make_zip(upload, {"a.jpg": JPG, name: b"PK\x03\x04 whatever"})
    err = assert_refused(NestedArchiveError, upload, dest)
    assert name in str(err)


def test_encrypted_member(upload: Path, dest: Path) -> None:
    make_zip(upload, {"secret.jpg": JPG})
    patch_central(upload, 8, "<H", 0x1)  # general purpose flag bit 0: encrypted
    err = assert_refused(IngestError, upload, dest)
    assert "encrypted" in str(err) and "secret.jpg" in str(err)


def test_declared_entry_count_reads_the_end_record(tmp_path: Path) -> None:
    """The fast pre-check must report the real member count, not another field."""
    from pipeline.ingest.archive import _declared_directory

    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(37):
            zf.writestr(f"f{i}.txt", b"")
    directory = _declared_directory(archive)
    assert directory is not None and directory.entries == 37


def test_lying_entry_count_is_caught_by_the_directory_size(tmp_path: Path) -> None:
    """An end record claiming 1 member over a directory of 20,000 must not reach zipfile
    (which would build 20,000 ZipInfo objects before any limit applies)."""
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(20_000):
            zf.writestr(f"f{i}.txt", b"")
    data = bytearray(archive.read_bytes())
    pos = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, pos + 8, 1, 1)  # entries on this disk, entries in total
    archive.write_bytes(bytes(data))
    with pytest.raises(TooManyEntriesError, match="member list"):
        inspect_zip(archive, IngestConfig(max_entries=10))
