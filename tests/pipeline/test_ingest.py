"""Tests of pipeline.ingest: refused uploads, accepted quirks, EXIF handling, folders.

Everything is generated in ``tmp_path``: small images with Pillow/numpy and ZIPs with
zipfile (patched byte-wise where zipfile cannot write the hostile case itself).
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from pipeline.config import IngestConfig
from pipeline.errors import (
    ArchiveTooLargeError,
    Cancelled,
    CompressionRatioError,
    IngestError,
    NestedArchiveError,
    NoImagesError,
    NotAZipError,
    SymlinkError,
    TooManyEntriesError,
    UnsafePathError,
)
from pipeline.ingest import (
    IMAGE_EXTENSIONS,
    MANIFEST_NAME,
    IngestResult,
    ingest,
    inspect_zip,
    load_manifest,
)
from pipeline.progress import CancelToken

# --------------------------------------------------------------------------- helpers


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


def patch_central(path: Path, offset: int, fmt: str, value: int) -> None:
    """Overwrite a field of the (first) central directory header of a ZIP."""
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")
    struct.pack_into(fmt, data, pos + offset, value)
    path.write_bytes(bytes(data))


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    return tmp_path / "upload.zip"


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "images"


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


# --------------------------------------------------------------------------- refused


def test_not_a_zip(upload: Path, dest: Path) -> None:
    upload.write_bytes(b"this is not a zip file at all" * 10)
    assert_refused(NotAZipError, upload, dest)


def test_missing_source_is_not_a_zip(tmp_path: Path, dest: Path) -> None:
    assert_refused(NotAZipError, tmp_path / "missing.zip", dest)


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


# --------------------------------------------------------------------------- accepted


def test_image_extensions() -> None:
    expected = [".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"]
    assert sorted(IMAGE_EXTENSIONS) == expected


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


def test_no_valid_image_left(upload: Path, dest: Path) -> None:
    make_zip(upload, {"a.jpg": b"junk", "b.jpg": b"more junk"})
    err = assert_refused(NoImagesError, upload, dest)
    assert "2 skipped" in str(err)


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


def test_manifest_written_and_round_trips(upload: Path, dest: Path) -> None:
    make_zip(upload, {"a/x.jpg": JPG, "b/y.jpg": image_bytes(seed=1), "bad.jpg": b"junk"})
    result = ingest(upload, dest)
    data = json.loads((dest / MANIFEST_NAME).read_text())
    assert data == result.to_dict()
    assert [img["path"] for img in data["images"]] == ["a/x.jpg", "b/y.jpg"]
    assert str(dest) not in json.dumps(data)
    assert IngestResult.from_dict(data, dest) == result == load_manifest(dest)


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
    assert {stage for stage, _, _ in calls} == {"extracting"}
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


# --------------------------------------------------------------------------- folders


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


def test_declared_entry_count_reads_the_end_record(tmp_path: Path) -> None:
    """The fast pre-check must report the real member count, not another field."""
    from pipeline.ingest import _declared_entry_count

    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(37):
            zf.writestr(f"f{i}.txt", b"")
    assert _declared_entry_count(archive) == 37


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
