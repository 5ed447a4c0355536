"""ZIP safety: uploads are untrusted, so archives are judged before anything is extracted.

* Everything that can be judged from the central directory (member count, declared
  sizes, compression ratios, paths, symlinks, nested archives, encryption) is checked
  *before* a single byte is decompressed; the end records are read first, so an archive
  that lies about its member count costs neither memory nor time.
* Declared sizes are not trusted either: a member's compressed size must fit in the
  bytes the archive really holds for it (up to the next member), and all members
  together, small ones included, may expand to at most ``max_compression_ratio`` times
  the archive's real size on disk.
* Members are then decompressed while counting bytes, so a member that lies about its
  size cannot expand past what was declared and checked: the real total stays within
  the checked declared total.

Error messages name the offending member by its archive name, never a server path.
"""

from __future__ import annotations

import copy
import itertools
import lzma
import math
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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
from pipeline.ingest.plan import (
    CHUNK,
    IMAGE_EXTENSIONS,
    Entry,
    Overflow,
    Plan,
    by_final_name,
    copy_limited,
    is_ignored,
    suffix,
)

ARCHIVE_EXTENSIONS: frozenset[str] = frozenset(
    {".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz"}
)
"""Suffixes (lower case) of members refused as nested archives."""

RATIO_CHECK_MIN_BYTES = 64 * 1024
"""Members smaller than this (uncompressed) skip the ratio check: small files such as
flat PNGs or text legitimately compress far better than any bomb threshold."""

_SUPPORTED_COMPRESSION = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
_ENCRYPTED_FLAG = 0x1
_MAX_COMPONENT_BYTES = 255  # longest file name most file systems accept
_MAX_NAME_BYTES = 1024
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_EOCD_SEARCH = _EOCD.size + 0xFFFF  # the record plus the longest possible comment


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
    if suffix(parts) in ARCHIVE_EXTENSIONS:
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


@contextmanager
def open_zip(path: Path, cfg: IngestConfig) -> Iterator[zipfile.ZipFile]:
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


def _check_compressed_sizes(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Each member's declared compressed size must fit between its local header and the
    next member (or the central directory): the ratio check is only as honest as that."""
    ends = sorted({info.header_offset for info in infos} | {zf.start_dir})
    following = dict(itertools.pairwise(ends))
    for info in infos:
        room = following.get(info.header_offset, zf.start_dir) - info.header_offset
        if info.compress_size > room:
            raise CompressionRatioError(
                f"member {info.filename!r} declares {info.compress_size} compressed bytes but "
                f"the archive holds at most {room} for it; refused as a zip bomb"
            )


def _check_total_ratio(zf: zipfile.ZipFile, declared_total: int, cfg: IngestConfig) -> None:
    """All members together against the archive's real size: small members skip the
    per-member ratio check, so thousands of them must not add up to a bomb."""
    archive_bytes = zf.fp.seek(0, os.SEEK_END) if zf.fp is not None else 0
    limit = cfg.max_compression_ratio * max(archive_bytes, RATIO_CHECK_MIN_BYTES)
    if declared_total > limit:
        raise CompressionRatioError(
            f"the archive ({archive_bytes} bytes) expands to {declared_total} bytes, more "
            f"than {cfg.max_compression_ratio:g} times its size; refused as a zip bomb"
        )


def scan_zip(zf: zipfile.ZipFile, cfg: IngestConfig) -> Plan:
    """Validate every member from the central directory; plan the image extraction."""
    infos = zf.infolist()
    if len(infos) > cfg.max_entries:
        raise TooManyEntriesError(f"the archive has {len(infos)} members (limit {cfg.max_entries})")
    _check_compressed_sizes(zf, infos)
    total = 0
    found: list[tuple[tuple[str, ...], zipfile.ZipInfo]] = []
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
        if is_ignored(parts):
            ignored += 1
            continue
        _check_member_content(info, parts)
        if suffix(parts) in IMAGE_EXTENSIONS:
            _check_compression(info)
            found.append((parts, info))
        else:
            ignored += 1
    _check_total_ratio(zf, total, cfg)
    if not found:
        raise NoImagesError(
            f"the archive holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
            f"{ignored} other files ignored"
        )
    entries = [Entry(name, _member_fetcher(zf, info), info) for name, info in by_final_name(found)]
    return Plan(entries=entries, ignored=ignored)


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
            for chunk in copy_limited(_read_member(src, info.filename), target, info.file_size):
                crc = zlib.crc32(chunk, crc)
        except Overflow:
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
            chunk = src.read(CHUNK)
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError) as exc:
            raise NotAZipError(f"member {name!r} is corrupt") from exc
        if not chunk:
            return
        yield chunk


def inspect_zip(path: Path, cfg: IngestConfig | None = None) -> list[zipfile.ZipInfo]:
    """Validate a ZIP without extracting; return the image members to extract.

    Members come sorted by the image name they will get. Raises the typed
    :class:`~pipeline.errors.IngestError` subclasses described in the module docstring.
    """
    cfg = cfg or IngestConfig()
    with open_zip(Path(path), cfg) as zf:
        plan = scan_zip(zf, cfg)
    return [entry.member for entry in plan.entries if entry.member is not None]
