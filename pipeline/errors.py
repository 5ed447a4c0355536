"""Typed errors raised by the reconstruction engine.

Every error a user can cause carries a stable ``code`` (for APIs and logs) and a
message that names the offending input without exposing server paths.
"""

from __future__ import annotations


class Scene3DError(Exception):
    """Base class of every error the engine raises on purpose."""

    code = "error"


class IngestError(Scene3DError):
    """The input archive or folder was refused; nothing was extracted."""

    code = "invalid_input"


class NotAZipError(IngestError):
    code = "not_a_zip"


class NoImagesError(IngestError):
    code = "no_images"


class TooManyEntriesError(IngestError):
    code = "too_many_entries"


class ArchiveTooLargeError(IngestError):
    code = "archive_too_large"


class CompressionRatioError(IngestError):
    code = "compression_ratio"


class UnsafePathError(IngestError):
    code = "unsafe_path"


class SymlinkError(IngestError):
    code = "symlink"


class NestedArchiveError(IngestError):
    code = "nested_archive"


class ReconstructionError(Scene3DError):
    """A pipeline step failed on valid input (e.g. nothing could be matched)."""

    code = "reconstruction_failed"


class Cancelled(Scene3DError):
    """Work was stopped through a :class:`~pipeline.progress.CancelToken`."""

    code = "cancelled"
