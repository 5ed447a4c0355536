"""What an ingest produced: the accepted images, the skipped ones and why, and the
``manifest.json`` that records them in the image folder.

An image's name is its relative POSIX path inside the upload (``a/img.jpg``); it is its
identity for every later step (COLMAP image name, CSV column ``image``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


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


def write_manifest(result: IngestResult, folder: Path) -> None:
    text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
    (folder / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")
