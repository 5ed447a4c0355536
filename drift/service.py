"""Drift checks as the platform runs them: the job's images (or an uploaded ZIP)
against the reference profile stored in the state folder.

The reference lives at ``$SCENE3D_HOME/drift/reference.json``; ``scene3d drift
reference DIR`` builds it from a folder of photos. Without one, reports say so
(``reason: "no reference profile"``) instead of guessing.
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
from scene3d.settings import Settings

# Each check unpacks a whole upload: bound how many run at once in one process.
_CHECKS = threading.BoundedSemaphore(2)


def reference_path(settings: Settings) -> Path:
    return settings.home / "drift" / "reference.json"


def load_reference(settings: Settings) -> ReferenceProfile | None:
    path = reference_path(settings)
    return ReferenceProfile.load(path) if path.exists() else None


def drift_for_images(images: Sequence[Path], settings: Settings) -> dict:
    """Drift report of these images against the stored reference."""
    return drift_report(folder_features(images), load_reference(settings))


def drift_for_zip(archive: Path, settings: Settings) -> dict:
    """Validate and unpack ``archive`` into a temporary folder (engine ingest rules,
    typed errors on hostile input), then report its drift. Nothing is kept."""
    scratch = settings.home / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with _CHECKS, tempfile.TemporaryDirectory(prefix="drift-", dir=scratch) as tmp:
        result = ingest(archive, Path(tmp) / "images")
        return drift_for_images([rec.path for rec in result.images], settings)
