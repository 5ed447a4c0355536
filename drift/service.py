"""Drift check of an uploaded ZIP: unpacked under the engine's ingest rules, judged, deleted.

The caller chooses the reference (the platform: the serving model's profile, see
:mod:`scene3d.jobs.drift_check`) and the rules.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from drift.features import collect_features
from drift.profile import ReferenceProfile
from drift.report import DriftRules, drift_report
from pipeline.ingest import ingest

# Each check unpacks a whole upload: bound how many run at once in one process.
_CHECKS = threading.BoundedSemaphore(2)


def drift_for_zip(
    archive: Path, reference: ReferenceProfile | None, rules: DriftRules, scratch: Path
) -> dict[str, Any]:
    """Validate and unpack ``archive`` into a temporary folder under ``scratch`` (engine
    ingest rules, typed errors on hostile input), then report its drift. Nothing is kept."""
    scratch.mkdir(parents=True, exist_ok=True)
    with _CHECKS, tempfile.TemporaryDirectory(prefix="drift-", dir=scratch) as tmp:
        result = ingest(archive, Path(tmp) / "images")
        features = collect_features(rec.path for rec in result.images)
        return drift_report(features, reference, rules)
