"""Reference profile: the feature samples of the photos a model was built and checked on.

The raw samples are kept (not only means) because the drift tests compare whole
distributions; a few hundred floats per feature, and the 32-number descriptor per image,
make a JSON file of some hundred kilobytes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from drift.features import DESCRIPTOR_DIM, FEATURES, FolderFeatures, collect_features

FORMAT_VERSION = 2
"""2 added the global descriptors; version 1 files are refused (rebuild them)."""


@dataclass
class ReferenceProfile:
    """Named set of per-feature samples, saved as JSON."""

    name: str
    created_at: str
    """ISO 8601 UTC timestamp."""
    n_images: int
    samples: dict[str, list[float]] = field(default_factory=dict)
    descriptors: list[list[float]] = field(default_factory=list)
    """One global descriptor per image (:data:`drift.features.DESCRIPTOR_DIM` numbers)."""

    @property
    def label(self) -> str:
        """What reports name as their reference: the name and the number of photos."""
        return f"{self.name} ({self.n_images} images)"

    @classmethod
    def from_features(cls, collected: FolderFeatures, name: str) -> ReferenceProfile:
        """A profile of already computed features; ``ValueError`` when there are none:
        an empty reference would make every later report meaningless."""
        if collected.n_images == 0:
            raise ValueError(f"no readable images for reference profile {name!r}")
        return cls(
            name=name,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            n_images=collected.n_images,
            samples={k: list(v) for k, v in collected.values.items()},
            descriptors=[list(d) for d in collected.descriptors],
        )

    @classmethod
    def from_images(cls, paths: Iterable[Path], name: str) -> ReferenceProfile:
        """Build a profile from image files; unreadable files are skipped."""
        return cls.from_features(collect_features(paths), name)

    def to_dict(self) -> dict:
        return {
            "version": FORMAT_VERSION,
            "name": self.name,
            "created_at": self.created_at,
            "n_images": self.n_images,
            "samples": self.samples,
            "descriptors": self.descriptors,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReferenceProfile:
        """Validate and build; raises ``ValueError`` for a file that is not a profile."""
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError(
                "not a reference profile of this version (rebuild it: scene3d drift reference)"
            )
        samples = data.get("samples")
        if not isinstance(samples, dict):
            raise ValueError("reference profile has no samples")
        clean: dict[str, list[float]] = {}
        for name in FEATURES:
            values = samples.get(name)
            if not isinstance(values, list) or not values:
                raise ValueError(f"reference profile has no samples of {name!r}")
            clean[name] = [_finite(name, v) for v in values]
        descriptors = data.get("descriptors")
        if not isinstance(descriptors, list) or not all(
            isinstance(d, list) and len(d) == DESCRIPTOR_DIM for d in descriptors
        ):
            raise ValueError(f"reference descriptors must be lists of {DESCRIPTOR_DIM} numbers")
        lengths = {len(values) for values in clean.values()} | {len(descriptors)}
        if len(lengths) != 1:
            raise ValueError("reference profile has samples of unequal lengths")
        return cls(
            name=str(data.get("name", "")),
            created_at=str(data.get("created_at", "")),
            n_images=len(clean[FEATURES[0]]),
            samples=clean,
            descriptors=[[_finite("descriptors", v) for v in d] for d in descriptors],
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
