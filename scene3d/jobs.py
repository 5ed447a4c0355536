"""Running one reconstruction job: engine progress -> job store, results -> job store.

Used by the local orchestrator today and by the Airflow tasks later. Every write
goes through the store's monotonic ``update_progress``, so a retried or late
update can never move a job backwards, and every failure ends as ``failed`` with
a readable error instead of a stack trace.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import Cancelled, Scene3DError
from pipeline.ingest import IngestResult
from pipeline.presets import load_preset
from pipeline.reconstruct import reconstruct
from scene3d.settings import Settings
from scene3d.store import STAGE_PROGRESS, JobStore

log = logging.getLogger(__name__)

# Progress (percent) each API stage spans: it starts at its documented value and
# rises towards the next stage's value as the engine reports fractions.
_STAGE_SPAN = {
    stage: (STAGE_PROGRESS[stage], STAGE_PROGRESS[following] - 1)
    for stage, following in (
        ("extracting", "matching"),
        ("matching", "triangulating"),
        ("triangulating", "decimating"),
        ("decimating", "success"),
    )
}
_STAGE_MESSAGES = {
    "extracting": "Unpacking the ZIP archive",
    "matching": "Extracting and matching features",
    "triangulating": "Structure from motion in progress",
    "decimating": "Voxel downsampling of point clouds",
}


@dataclass(frozen=True)
class JobFiles:
    """Where a job's files live: only the job's own work writes here."""

    root: Path

    @property
    def upload(self) -> Path:
        return self.root / "upload.zip"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def ply_dir(self) -> Path:
        return self.work / "ply"

    @property
    def submission(self) -> Path:
        return self.work / "submission.csv"

    @property
    def images(self) -> Path:
        return self.work / "images"


def job_files(settings: Settings, job_id: str) -> JobFiles:
    return JobFiles(settings.job_dir(job_id))


class _ProgressWriter:
    """Engine callback that writes to the store, at most once per percent or second."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._last: tuple[str, int] | None = None
        self._last_time = 0.0

    def __call__(self, stage: str, fraction: float, message: str) -> None:
        if stage not in _STAGE_SPAN:
            return
        lo, hi = _STAGE_SPAN[stage]
        percent = int(lo + (hi - lo) * min(max(fraction, 0.0), 1.0))
        now = time.monotonic()
        if self._last == (stage, percent) and now - self._last_time < 1.0:
            return
        self._last, self._last_time = (stage, percent), now
        text = f"{_STAGE_MESSAGES[stage]}: {message}" if message else _STAGE_MESSAGES[stage]
        self.store.update_progress(self.job_id, stage, percent, text)


def _record_ingest(store: JobStore, job_id: str, settings: Settings, result: IngestResult) -> None:
    total = len(result.images) + len(result.skipped)
    store.update_progress(
        job_id,
        "extracting",
        _STAGE_SPAN["extracting"][1],
        f"{len(result.images)} valid images, {len(result.skipped)} skipped",
        n_images=total,
        n_valid_images=len(result.images),
    )
    check_drift(store, job_id, settings, [rec.path for rec in result.images])


def check_drift(store: JobStore, job_id: str, settings: Settings, images: list[Path]) -> None:
    """Compare the job's images with the reference profile; never fails the job."""
    try:
        from drift.service import drift_for_images

        report = drift_for_images(images, settings)
        store.set_drift(job_id, report["drift_detected"], report["severity"], report)
    except Exception:  # drift is advisory: a broken check must not lose a reconstruction
        log.exception("drift check failed for job %s", job_id)


def run_reconstruction_job(job_id: str, store: JobStore, settings: Settings) -> None:
    """Reconstruct a stored job end to end; the outcome is written to the store."""
    job = store.get_job(job_id)
    if job is None:
        log.warning("job %s vanished before it started", job_id)
        return
    files = job_files(settings, job_id)
    preset = job.preset or settings.default_preset
    try:
        result = reconstruct(
            files.upload,
            files.work,
            load_preset(preset),
            dataset=job.dataset_name,
            job_id=job_id,
            progress=_ProgressWriter(store, job_id),
            on_ingested=lambda manifest: _record_ingest(store, job_id, settings, manifest),
        )
    except Cancelled:
        store.mark_failed(job_id, "cancelled")
        return
    except Scene3DError as exc:
        store.mark_failed(job_id, str(exc))
        return
    except Exception as exc:
        log.exception("job %s failed", job_id)
        store.mark_failed(job_id, f"internal error ({type(exc).__name__}); see the server log")
        return
    store.replace_clusters(job_id, result.clusters)
    store.update_progress(
        job_id,
        "success",
        STAGE_PROGRESS["success"],
        f"Reconstruction complete: {result.n_registered}/{result.n_images} images registered "
        f"in {len(result.clusters)} clusters",
        n_points=result.n_points,
        registration_rate=round(result.registration_rate, 4),
        timings=result.timings,
        preset=preset,
    )
