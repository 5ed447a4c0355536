"""Ingest: turn an uploaded ZIP (or a local folder) into a clean folder of images.

The output folder holds only validated images, named by their relative POSIX path inside
the upload (``a/img.jpg``), plus ``manifest.json``. That name is the image's identity for
every later step (COLMAP image name, CSV column ``image``).

Safety model for ZIPs (uploads are untrusted):

* everything that can be judged from the central directory (member count, declared
  sizes, compression ratios, paths, symlinks, nested archives, encryption) is checked
  *before* a single byte is decompressed;
* members are then decompressed while counting bytes, so a member that lies about its
  size cannot expand past what was declared and checked;
* all writing happens in a fresh staging folder next to ``dest_dir`` that replaces it
  only once everything succeeded, so a failed or cancelled ingest leaves ``dest_dir``
  exactly as it was.

Error messages name the offending member by its archive name, never a server path.
"""

from __future__ import annotations

import copy
import io
import json
import lzma
import math
import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

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
from pipeline.progress import CancelToken, ProgressCallback, null_progress

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
)
"""Suffixes (lower case) of the files taken as images."""

ARCHIVE_EXTENSIONS: frozenset[str] = frozenset(
    {".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz"}
)
"""Suffixes (lower case) of members refused as nested archives."""

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

RATIO_CHECK_MIN_BYTES = 64 * 1024
"""Members smaller than this (uncompressed) skip the ratio check: small files such as
flat PNGs or text legitimately compress far better than any bomb threshold."""

STAGE = "extracting"
"""Progress stage name reported by :func:`ingest`."""

# Pillow is only allowed to parse these formats: a ``.jpg`` that is really an EPS or
# another exotic format must not reach a less hardened decoder. (Multi-picture JPEGs
# from cameras come back through the JPEG opener with format "MPO".)
_PIL_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP")
_STORED_AS = {"WEBP": "PNG"}
"""Formats re-encoded (losslessly, from the decoded pixels) for the working copy: COLMAP's
image reader in the pycolmap wheels has no WebP decoder. It and Pillow detect the format
from the content, so the file keeps its uploaded name and the outputs name it as sent."""
_SUPPORTED_COMPRESSION = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_ENCRYPTED_FLAG = 0x1
_ORIENTATION_TAG = 0x0112
_MAX_COMPONENT_BYTES = 255  # longest file name most file systems accept
_MAX_NAME_BYTES = 1024
_CHUNK = 1024 * 1024
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_SEARCH = _EOCD.size + 0xFFFF  # the record plus the longest possible comment
# FocalPlaneResolutionUnit -> millimetres per unit (EXIF: 2 inch, 3 cm, 4 mm, 5 um).
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}


@dataclass
class ImageRecord:
    """One accepted image."""

    name: str
    """Relative POSIX name inside the upload, unique; the image's identity downstream."""
    path: Path
    """The file inside ``dest_dir``."""
    width: int
    """Width in pixels after EXIF orientation was applied."""
    height: int
    """Height in pixels after EXIF orientation was applied."""
    focal_px: float | None
    """Focal length prior in pixels from EXIF, ``None`` if unknown."""


@dataclass
class SkippedFile:
    """An image that was left out, and why (shown to the user)."""

    name: str
    reason: str


@dataclass
class IngestResult:
    """What :func:`ingest` produced; :meth:`to_dict` is the manifest."""

    images: list[ImageRecord]
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: int = 0
    """Non-image, hidden and ``__MACOSX`` files that were ignored."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable manifest; image paths are relative to the output folder."""
        return {
            "version": MANIFEST_VERSION,
            "images": [
                {
                    "name": rec.name,
                    # Files are always stored under their name, so it is their relative path.
                    "path": rec.name,
                    "width": rec.width,
                    "height": rec.height,
                    "focal_px": rec.focal_px,
                }
                for rec in self.images
            ],
            "skipped": [{"name": s.name, "reason": s.reason} for s in self.skipped],
            "ignored": self.ignored,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], dest_dir: Path) -> IngestResult:
        """Rebuild a result from :meth:`to_dict` output whose images live in ``dest_dir``."""
        images = [
            ImageRecord(
                name=item["name"],
                path=Path(dest_dir) / item["path"],
                width=int(item["width"]),
                height=int(item["height"]),
                focal_px=None if item["focal_px"] is None else float(item["focal_px"]),
            )
            for item in data["images"]
        ]
        skipped = [SkippedFile(s["name"], s["reason"]) for s in data.get("skipped", [])]
        return cls(images=images, skipped=skipped, ignored=int(data.get("ignored", 0)))


def load_manifest(dest_dir: Path) -> IngestResult:
    """Read the manifest :func:`ingest` wrote into ``dest_dir``."""
    data = json.loads((Path(dest_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))
    return IngestResult.from_dict(data, dest_dir)


# --------------------------------------------------------------------------- planning


class _SkipImage(Exception):
    """An image is unusable; it is reported and left out, the ingest goes on."""


class _Overflow(Exception):
    """A stream produced more bytes than allowed."""


@dataclass
class _Entry:
    """One image to stage: its name and how to write its bytes to a target file."""

    name: str
    fetch: Callable[[Path], None]
    member: zipfile.ZipInfo | None = None
    """The ZIP member it comes from (``None`` for folder input)."""


@dataclass
class _Plan:
    entries: list[_Entry]
    ignored: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)


def _is_ignored(parts: tuple[str, ...]) -> bool:
    """Hidden files/folders and macOS resource forks are not part of the photo set."""
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def _suffix(parts: tuple[str, ...]) -> str:
    return PurePosixPath(parts[-1]).suffix.lower()


def _strip_common_folder(names: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Drop a top folder shared by every image (``photos/a.jpg`` -> ``a.jpg``)."""
    if not names or any(len(parts) < 2 for parts in names):
        return names
    top = names[0][0]
    if any(parts[0] != top for parts in names):
        return names
    return [parts[1:] for parts in names]


def _image_names(names: list[tuple[str, ...]]) -> list[str]:
    """Final image names: common top folder dropped, white space replaced by ``_``.

    COLMAP's pair lists are space-separated, so a name with a space would be split
    in two there; ``IMG 001.jpg`` becomes ``IMG_001.jpg`` everywhere instead.
    """
    return [re.sub(r"\s", "_", "/".join(p)) for p in _strip_common_folder(names)]


def _check_name_conflicts(names: list[str]) -> None:
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


# --------------------------------------------------------------------------- ZIP checks


def _safe_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """Split a member name into path components, refusing anything that could escape.

    zipfile keeps names as written, so ``../``, ``/etc``, ``C:`` and backslashes reach
    us untouched; ``orig_filename`` still holds NUL bytes zipfile cut off ``filename``.
    """
    raw, name = info.orig_filename, info.filename
    if "\x00" in raw or "\\" in raw:
        raise UnsafePathError(f"member {name!r} has an unsafe path")
    if raw.startswith("/") or (len(raw) >= 2 and raw[1] == ":" and raw[0].isalpha()):
        raise UnsafePathError(f"member {name!r} has an absolute path")
    parts = tuple(part for part in raw.split("/") if part not in ("", "."))
    if ".." in parts:
        raise UnsafePathError(f"member {name!r} points outside the archive folder")
    if not parts and not info.is_dir():
        raise UnsafePathError(f"member {name!r} has an empty name")
    encoded = [part.encode("utf-8", "surrogateescape") for part in parts]
    if sum(len(e) + 1 for e in encoded) > _MAX_NAME_BYTES or any(
        len(e) > _MAX_COMPONENT_BYTES for e in encoded
    ):
        raise UnsafePathError(f"member {name[:80]!r}... has a name that is too long")
    return parts


def _check_member_limits(info: zipfile.ZipInfo, cfg: IngestConfig) -> None:
    """Symlink, size and zip-bomb checks on one member's declared metadata."""
    name = info.filename
    # The high 16 bits of external_attr hold the unix st_mode when a unix tool wrote it.
    if stat.S_ISLNK(info.external_attr >> 16):
        raise SymlinkError(f"member {name!r} is a symbolic link")
    if info.file_size > cfg.max_entry_bytes:
        raise ArchiveTooLargeError(
            f"member {name!r} expands to {info.file_size} bytes (limit {cfg.max_entry_bytes})"
        )
    if info.file_size >= RATIO_CHECK_MIN_BYTES:
        ratio = info.file_size / info.compress_size if info.compress_size else math.inf
        if ratio > cfg.max_compression_ratio:
            raise CompressionRatioError(
                f"member {name!r} has a compression ratio of {ratio:.0f} "
                f"(limit {cfg.max_compression_ratio:g}); refused as a zip bomb"
            )


def _check_member_content(info: zipfile.ZipInfo, parts: tuple[str, ...]) -> None:
    """Checks on a visible (non-hidden) file member: nesting, encryption."""
    name = info.filename
    if _suffix(parts) in ARCHIVE_EXTENSIONS:
        raise NestedArchiveError(f"member {name!r} is an archive; upload one flat ZIP")
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise IngestError(
            f"member {name!r} is encrypted; password-protected ZIPs are not supported"
        )


def _check_compression(info: zipfile.ZipInfo) -> None:
    if info.compress_type not in _SUPPORTED_COMPRESSION:
        raise IngestError(
            f"member {info.filename!r} uses an unsupported compression method "
            f"({info.compress_type})"
        )


@dataclass(frozen=True)
class _Directory:
    """What the end records of a ZIP declare about its central directory."""

    entries: int
    size: int


# One central-directory record: 46 fixed bytes, the name, and extra field plus comment
# (at most 64 KiB each; real archives carry a few dozen bytes). A directory larger than
# ``max_entries`` records of this size is refused before zipfile parses it.
_CD_RECORD_BOUND = 46 + _MAX_NAME_BYTES + 1024
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"


def _declared_directory(path: Path) -> _Directory | None:
    """Entry count and central-directory size from the end records, without parsing entries.

    zipfile builds a ZipInfo for every record of the central directory, whatever the end
    record claims, so both numbers are checked first: an archive that lies about its
    count, or holds millions of tiny members, costs neither the memory nor the time.
    ZIP64 archives are read through their own end record. ``None`` when no record is found
    (zipfile then refuses the archive itself).
    """
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            start = max(0, size - _EOCD_SEARCH)
            fh.seek(start)
            tail = fh.read()
            pos = tail.rfind(_EOCD_SIGNATURE)
            if pos < 0 or pos + _EOCD.size > len(tail):
                return None
            fields = _EOCD.unpack_from(tail, pos)
            entries, cd_size = fields[4], fields[5]
            if entries != 0xFFFF and cd_size != 0xFFFFFFFF:
                return _Directory(entries, cd_size)
            loc = pos - _ZIP64_LOCATOR.size
            if loc < 0:
                return _Directory(2**63, 2**63)  # claims ZIP64 without its records: refuse
            sig, _, eocd64_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, loc)
            if sig != _ZIP64_LOCATOR_SIGNATURE:
                return _Directory(2**63, 2**63)
            fh.seek(eocd64_offset)
            record = fh.read(_ZIP64_EOCD.size)
    except (OSError, struct.error, ValueError):
        return None
    if len(record) < _ZIP64_EOCD.size or record[:4] != _ZIP64_EOCD_SIGNATURE:
        return _Directory(2**63, 2**63)
    fields = _ZIP64_EOCD.unpack(record)
    return _Directory(fields[7], fields[8])


def _declared_entry_count(path: Path) -> int | None:
    """Member count the archive declares (``None`` when no end record is found)."""
    directory = _declared_directory(path)
    return directory.entries if directory else None


@contextmanager
def _open_zip(path: Path, cfg: IngestConfig) -> Iterator[zipfile.ZipFile]:
    """Open ``path`` as a ZIP, turning every way it can fail into :class:`NotAZipError`."""
    declared = _declared_directory(path) if path.is_file() else None
    if declared is not None and declared.entries > cfg.max_entries:
        raise TooManyEntriesError(
            f"the archive has {declared.entries} members (limit {cfg.max_entries})"
        )
    if declared is not None and declared.size > cfg.max_entries * _CD_RECORD_BOUND:
        raise TooManyEntriesError(
            f"the archive's member list is {declared.size} bytes, more than "
            f"{cfg.max_entries} members can take (limit {cfg.max_entries} members)"
        )
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error) as exc:
        raise NotAZipError("the upload is not a valid ZIP archive") from exc
    with zf:
        yield zf


def _scan_zip(zf: zipfile.ZipFile, cfg: IngestConfig) -> _Plan:
    """Validate every member from the central directory; plan the image extraction."""
    infos = zf.infolist()
    if len(infos) > cfg.max_entries:
        raise TooManyEntriesError(f"the archive has {len(infos)} members (limit {cfg.max_entries})")
    total = 0
    found: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    ignored = 0
    for info in infos:
        parts = _safe_parts(info)
        _check_member_limits(info, cfg)
        total += info.file_size
        if total > cfg.max_total_bytes:
            raise ArchiveTooLargeError(
                f"the archive expands to more than {cfg.max_total_bytes} bytes"
            )
        if info.is_dir():
            continue
        if _is_ignored(parts):
            ignored += 1
            continue
        _check_member_content(info, parts)
        if _suffix(parts) in IMAGE_EXTENSIONS:
            _check_compression(info)
            found.append((info, parts))
        else:
            ignored += 1
    if not found:
        raise NoImagesError(
            f"the archive holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
            f"{ignored} other files ignored"
        )
    names = _image_names([parts for _, parts in found])
    _check_name_conflicts(names)
    entries = [
        _Entry(name, _member_fetcher(zf, info), info)
        for name, (info, _) in sorted(zip(names, found, strict=True), key=lambda item: item[0])
    ]
    return _Plan(entries=entries, ignored=ignored)


def _member_fetcher(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[Path], None]:
    return lambda target: _extract_member(zf, info, target)


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """Decompress one member to ``target``, never past its declared size.

    zipfile itself stops at the declared size and then fails the CRC, which cannot be
    told apart from corruption. So the member is opened through a copy that declares
    one byte more and no CRC: a lying member shows itself by producing that byte, and
    the CRC is checked here instead.
    """
    probe = copy.copy(info)
    probe.file_size = info.file_size + 1
    probe.CRC = None  # type: ignore[assignment]  # zipfile skips its check for None
    try:
        src = zf.open(probe)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise NotAZipError(f"member {info.filename!r} is corrupt") from exc
    except (NotImplementedError, RuntimeError) as exc:
        raise IngestError(f"member {info.filename!r} cannot be decompressed") from exc
    crc = 0
    with src:
        try:
            for chunk in _copy_limited(_read_member(src, info.filename), target, info.file_size):
                crc = zlib.crc32(chunk, crc)
        except _Overflow:
            raise ArchiveTooLargeError(
                f"member {info.filename!r} expands beyond its declared size"
            ) from None
    if crc != info.CRC:
        raise NotAZipError(f"member {info.filename!r} is corrupt (CRC mismatch)")


def _read_member(src: BinaryIO, name: str) -> Iterator[bytes]:
    """Chunks of a member; decompression failures become :class:`NotAZipError`.

    Only reading is wrapped: an OSError while *writing* (disk full) is the server's
    problem and must not be blamed on the upload.
    """
    while True:
        try:
            chunk = src.read(_CHUNK)
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError) as exc:
            raise NotAZipError(f"member {name!r} is corrupt") from exc
        if not chunk:
            return
        yield chunk


def _copy_limited(chunks: Iterable[bytes], target: Path, limit: int) -> Iterator[bytes]:
    """Write ``chunks`` into a new file ``target``, yielding each one once written.

    Raises :class:`_Overflow` as soon as more than ``limit`` bytes arrive, before the
    excess is written.
    """
    written = 0
    with target.open("xb") as out:
        for chunk in chunks:
            written += len(chunk)
            if written > limit:
                raise _Overflow
            out.write(chunk)
            yield chunk


def inspect_zip(path: Path, cfg: IngestConfig | None = None) -> list[zipfile.ZipInfo]:
    """Validate a ZIP without extracting; return the image members to extract.

    Members come sorted by the image name they will get. Raises the typed
    :class:`~pipeline.errors.IngestError` subclasses described in the module docstring.
    """
    cfg = cfg or IngestConfig()
    with _open_zip(Path(path), cfg) as zf:
        plan = _scan_zip(zf, cfg)
    return [entry.member for entry in plan.entries if entry.member is not None]


# --------------------------------------------------------------------------- folders


def _scan_folder(root: Path, exclude: Path, cfg: IngestConfig) -> _Plan:
    """Walk ``root`` (symlinks never followed) and plan copying its images."""
    found: list[tuple[tuple[str, ...], Path]] = []
    plan = _Plan(entries=[])
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel = here.relative_to(root).parts
        kept = []
        for d in sorted(dirnames):
            if _is_ignored((d,)) or (here / d).resolve() == exclude:
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
    names = _image_names([parts for parts, _ in found])
    _check_name_conflicts(names)
    limit = cfg.max_entry_bytes
    plan.entries = [
        _Entry(name, _file_fetcher(path, limit))
        for name, (_, path) in sorted(zip(names, found, strict=True), key=lambda item: item[0])
    ]
    return plan


def _classify_file(
    path: Path, parts: tuple[str, ...], found: list[tuple[tuple[str, ...], Path]], plan: _Plan
) -> None:
    if _is_ignored(parts) or _suffix(parts) not in IMAGE_EXTENSIONS:
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
        raise _SkipImage("file cannot be read") from None
    with os.fdopen(fd, "rb") as src:
        try:
            for _ in _copy_limited(iter(lambda: src.read(_CHUNK), b""), target, limit):
                pass
        except _Overflow:
            raise _SkipImage(f"file is larger than {limit} bytes") from None


# --------------------------------------------------------------------------- images


def _positive(value: Any) -> float | None:
    """EXIF number (int, IFDRational, tuple) as a positive finite float, else None."""
    if isinstance(value, tuple) and len(value) == 2:
        value = value[0] / value[1] if value[1] else None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def focal_prior(exif: Image.Exif, raw_size: tuple[int, int]) -> float | None:
    """Focal length prior in pixels from EXIF, or ``None``.

    ``raw_size`` is the stored (not yet rotated) ``(width, height)``. The 35 mm
    equivalent is preferred: a 36 mm wide frame maps to the long image side. Otherwise
    the focal length in mm times the focal-plane resolution (pixels per unit) is used,
    rescaled when the image was resized after capture (``ExifImageWidth``).
    """
    tags: dict[int, Any] = dict(exif)
    try:
        tags.update(exif.get_ifd(ExifTags.IFD.Exif))  # the sub-IFD is where cameras write
    except Exception:  # a broken sub-IFD only costs the prior, not the photo
        return None
    base = ExifTags.Base
    f35 = _positive(tags.get(base.FocalLengthIn35mmFilm))
    if f35:
        return f35 / 36.0 * max(raw_size)
    f_mm = _positive(tags.get(base.FocalLength))
    xres = _positive(tags.get(base.FocalPlaneXResolution))
    unit_mm = _UNIT_MM.get(tags.get(base.FocalPlaneResolutionUnit, 2))
    if not (f_mm and xres and unit_mm):
        return None
    f_px = f_mm * xres / unit_mm
    exif_width = _positive(tags.get(base.ExifImageWidth))
    if exif_width:
        f_px *= raw_size[0] / exif_width
    return f_px if math.isfinite(f_px) and f_px > 0 else None


def _save_oriented(img: Image.Image, target: Path, fmt: str) -> None:
    """Re-encode a rotated image in its own format, keeping EXIF (minus orientation)."""
    fmt = "JPEG" if fmt == "MPO" else fmt
    params: dict[str, Any] = {}
    if fmt in ("JPEG", "PNG", "WEBP"):
        params["exif"] = img.getexif().tobytes()
    if icc := img.info.get("icc_profile"):
        params["icc_profile"] = icc
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = 95
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    target.write_bytes(buf.getvalue())


def _open_image(target: Path, cfg: IngestConfig) -> Image.Image:
    """Open an image from its header only, refusing oversized and tiny ones unread."""
    # Image.open with ``formats`` fails on plugins not yet registered (TIFF, WEBP...);
    # init() registers them all and is a no-op after the first call.
    Image.init()
    try:
        img = Image.open(target, formats=_PIL_FORMATS)
    except UnidentifiedImageError:
        raise _SkipImage("not a JPEG, PNG, TIFF, BMP or WebP image") from None
    except Image.DecompressionBombError:
        raise _SkipImage(f"too many pixels (limit {cfg.max_image_pixels})") from None
    except Exception:  # hostile headers trip plugins in many ways; same verdict
        raise _SkipImage("image header is corrupt") from None
    width, height = img.size
    reason = None
    if width * height > cfg.max_image_pixels:
        reason = f"{width}x{height} is more pixels than the limit ({cfg.max_image_pixels})"
    elif min(width, height) < cfg.min_image_side:
        reason = f"{width}x{height} is smaller than {cfg.min_image_side} px a side"
    if reason:
        img.close()
        raise _SkipImage(reason)
    return img


def _process_image(target: Path, name: str, final: Path, cfg: IngestConfig) -> ImageRecord:
    """Decode a staged image fully, apply EXIF orientation in place, read its focal prior."""
    with _open_image(target, cfg) as img:
        raw_size = img.size
        try:
            # EXIF before decoding: Pillow's TIFF loader applies the orientation while
            # decoding and drops the tag, which would hide that the file needs rotating.
            exif = img.getexif()
            orientation = exif.get(_ORIENTATION_TAG, 1)
            img.load()
        # Pillow's decoders raise many exception types on hostile data (OSError,
        # SyntaxError, struct.error, IndexError...); all mean "unreadable image".
        except Exception:
            raise _SkipImage("image data is corrupt or truncated") from None
        focal = focal_prior(exif, raw_size)
        fmt = img.format or "JPEG"
        stored = _STORED_AS.get(fmt, fmt)
        if orientation not in range(2, 9) and stored == fmt:
            # Nothing to rotate: the staged file keeps its exact bytes.
            return ImageRecord(name, final, raw_size[0], raw_size[1], focal)
        # A rotation, a format change (_STORED_AS), or both; for TIFF the pixels are
        # already upright (load() turned them), so only the orientation tag goes.
        with ImageOps.exif_transpose(img) as upright:
            _save_oriented(upright, target, stored)
            return ImageRecord(name, final, upright.width, upright.height, focal)


# --------------------------------------------------------------------------- staging


def _staged_path(staging: Path, name: str) -> Path:
    """Where ``name`` goes inside ``staging``; refuses any path that resolves outside."""
    target = staging.joinpath(*name.split("/"))
    if not target.resolve().is_relative_to(staging.resolve()):
        raise UnsafePathError(f"member {name!r} points outside the destination")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _stage_images(
    plan: _Plan,
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
        progress(STAGE, index / total, f"image {index + 1}/{total}: {entry.name}")
        target = _staged_path(staging, entry.name)
        final = dest_dir.joinpath(*entry.name.split("/"))
        try:
            entry.fetch(target)
            images.append(_process_image(target, entry.name, final, cfg))
        except _SkipImage as skip:
            target.unlink(missing_ok=True)
            skipped.append(SkippedFile(entry.name, str(skip)))
    if not images:
        reasons = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:5])
        raise NoImagesError(f"no usable image: {len(skipped)} skipped ({reasons})")
    progress(STAGE, 1.0, f"{len(images)} images ready, {len(skipped)} skipped")
    return IngestResult(images=images, skipped=skipped, ignored=plan.ignored)


def _write_manifest(result: IngestResult, folder: Path) -> None:
    text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
    (folder / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")


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
    plan: _Plan,
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
        _write_manifest(result, staging)
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
    """
    cfg = cfg or IngestConfig()
    source, dest_dir = Path(source), Path(dest_dir)
    _check_destination(source, dest_dir)
    if source.is_dir():
        plan = _scan_folder(source, dest_dir.resolve(), cfg)
        return _run(plan, dest_dir, cfg, progress, cancel)
    if not source.is_file():
        raise NotAZipError("the upload is neither a ZIP archive nor a folder")
    with _open_zip(source, cfg) as zf:
        plan = _scan_zip(zf, cfg)
        return _run(plan, dest_dir, cfg, progress, cancel)
