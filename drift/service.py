"""Drift checks as the platform runs them: the job's images (or an uploaded ZIP)
against a stored reference profile.

The caller names the reference file (the platform keeps it in its state folder;
``scene3d drift reference DIR`` builds it from a folder of photos). Without one, reports
say so (``reason: "no reference profile"``) instead of guessing.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from drift.features import folder_features
from drift.profile import ReferenceProfile
from drift.report import drift_report
from pipeline.ingest import ingest

# Each check unpacks a whole upload: bound how many run at once in one process.
_CHECKS = threading.BoundedSemaphore(2)


def load_reference(path: Path) -> ReferenceProfile | None:
    return ReferenceProfile.load(path) if path.exists() else None


def drift_for_images(images: Sequence[Path], reference: Path) -> dict:
    """Drift report of these images against the reference profile stored at ``reference``."""
    return drift_report(folder_features(images), load_reference(reference))


def drift_for_zip(archive: Path, reference: Path, scratch: Path) -> dict:
    """Validate and unpack ``archive`` into a temporary folder under ``scratch`` (engine
    ingest rules, typed errors on hostile input), then report its drift. Nothing is kept."""
    scratch.mkdir(parents=True, exist_ok=True)
    with _CHECKS, tempfile.TemporaryDirectory(prefix="drift-", dir=scratch) as tmp:
        result = ingest(archive, Path(tmp) / "images")
        return drift_for_images([rec.path for rec in result.images], reference)
