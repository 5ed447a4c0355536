"""Typed errors raised by the reconstruction engine.

Every error a user can cause has its own type and a message that names the offending input
without exposing server paths.
"""

from __future__ import annotations


class Scene3DError(Exception):
    """Base class of every error the engine raises on purpose."""


class IngestError(Scene3DError):
    """The input archive or folder was refused; nothing was extracted."""


class NotAZipError(IngestError):
    """The upload is neither a readable ZIP archive nor a folder."""


class NoImagesError(IngestError):
    """The upload holds no usable image."""


class TooManyEntriesError(IngestError):
    """The archive holds more members than allowed."""


class ArchiveTooLargeError(IngestError):
    """The archive, or one member, expands to more bytes than allowed."""


class CompressionRatioError(IngestError):
    """A member compresses better than any photo does: refused as a zip bomb."""


class UnsafePathError(IngestError):
    """A member's path could escape the destination or clash with another member's."""


class SymlinkError(IngestError):
    """A member is a symbolic link."""


class NestedArchiveError(IngestError):
    """A member is itself an archive."""


class NotAnImageError(IngestError):
    """Members named as images whose content is not one (HTML, SVG, a ZIP...) or is too big."""


class TooFewImagesError(IngestError):
    """Fewer valid photos than a reconstruction needs."""


class ReconstructionError(Scene3DError):
    """A pipeline step failed on valid input (e.g. nothing could be matched)."""


class Cancelled(Scene3DError):
    """Work was stopped through a :class:`~pipeline.progress.CancelToken`."""
