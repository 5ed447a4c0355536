"""Probing an upload before it is accepted: the ZIP checks of :mod:`~pipeline.ingest.archive`
plus the content of every image member (its format from the bytes, not the name, and its
header decoded under the pixel cap), so a ``.jpg`` that is HTML, SVG or a ZIP, or an upload
with too few photos, is refused at once instead of failing later in a job."""

from __future__ import annotations

import lzma
import zipfile
import zlib
from pathlib import Path

from pipeline.config import IngestConfig
from pipeline.errors import NotAnImageError, NotAZipError, TooFewImagesError
from pipeline.ingest.archive import open_zip, scan_zip
from pipeline.ingest.images import open_image
from pipeline.ingest.plan import SkipImage

MAX_NAMED = 10
"""Refused members named in one error message; the rest are counted."""


def probe_zip(path: Path, cfg: IngestConfig | None = None) -> list[zipfile.ZipInfo]:
    """Validate a ZIP and the header of every image in it without extracting; return the
    image members (sorted by the name they will get). Raises the typed
    :class:`~pipeline.errors.IngestError` subclasses, :class:`NotAnImageError` naming the
    members that are not images, :class:`TooFewImagesError` below ``cfg.min_images``."""
    cfg = cfg or IngestConfig()
    with open_zip(Path(path), cfg) as zf:
        plan = scan_zip(zf, cfg)
        refused: list[str] = []
        for entry in plan.entries:
            member = entry.member
            assert member is not None  # a ZIP plan's entries are members
            try:
                with zf.open(member) as fh, open_image(fh, cfg):
                    pass
            except SkipImage as exc:
                refused.append(f"{entry.name} ({exc})")
            except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError) as exc:
                raise NotAZipError(f"member {member.filename!r} is corrupt") from exc
    if refused:
        named = "; ".join(refused[:MAX_NAMED])
        more = f"; and {len(refused) - MAX_NAMED} more" if len(refused) > MAX_NAMED else ""
        raise NotAnImageError(f"{len(refused)} files are not usable images: {named}{more}")
    if len(plan.entries) < cfg.min_images:
        raise TooFewImagesError(
            f"the archive holds {len(plan.entries)} image(s); a reconstruction needs at "
            f"least {cfg.min_images}"
        )
    return [entry.member for entry in plan.entries if entry.member is not None]
