"""Reference profile: the feature samples of the photos a model was built and checked on.

The raw samples are kept (not only means) because the drift test compares whole
distributions; a few hundred floats per feature is a small JSON file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from drift.features import FEATURES, collect_features

FORMAT_VERSION = 1


@dataclass
class ReferenceProfile:
    """Named set of per-feature samples, saved as JSON."""

    name: str
    created_at: str
    """ISO 8601 UTC timestamp."""
    n_images: int
    samples: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def from_images(cls, paths: Iterable[Path], name: str) -> ReferenceProfile:
        """Build a profile from image files; unreadable files are skipped.

        Raises ``ValueError`` when no image could be read: an empty reference would make
        every later report meaningless.
        """
        collected = collect_features(paths)
        if collected.n_images == 0:
            raise ValueError(f"no readable images for reference profile {name!r}")
        return cls(
            name=name,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            n_images=collected.n_images,
            samples={k: list(v) for k, v in collected.values.items()},
        )

    def to_dict(self) -> dict:
        return {
            "version": FORMAT_VERSION,
            "name": self.name,
            "created_at": self.created_at,
            "n_images": self.n_images,
            "samples": self.samples,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReferenceProfile:
        """Validate and build; raises ``ValueError`` for a file that is not a profile."""
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError("not a reference profile (missing or unknown version)")
        samples = data.get("samples")
        if not isinstance(samples, dict):
            raise ValueError("reference profile has no samples")
        clean: dict[str, list[float]] = {}
        for name, values in samples.items():
            if name not in FEATURES:
                continue  # written by a newer version: ignore what we cannot compare
            if not isinstance(values, list):
                raise ValueError(f"samples of {name!r} are not a list")
            clean[name] = [_finite(name, v) for v in values]
        return cls(
            name=str(data.get("name", "")),
            created_at=str(data.get("created_at", "")),
            n_images=int(data.get("n_images", 0)),
            samples=clean,
        )

    def save(self, path: Path) -> None:
        """Write JSON atomically (temp file + rename), so a reader never sees half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), allow_nan=False, indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ReferenceProfile:
        """Read a profile written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"samples of {name!r} contain a non-number: {value!r}")
    return float(value)
