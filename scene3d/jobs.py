"""Running one reconstruction job: engine progress -> job store, results -> job store.

Shared by the local orchestrator and the Airflow tasks (:mod:`scene3d.tasks`). Every write
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
from pipeline.reconstruct import JobPaths
from scene3d.settings import Settings
from scene3d.store import STAGE_PROGRESS, JobStore

log = logging.getLogger(__name__)

# Progress (percent) each API stage spans: it starts at its documented value and
# rises towards the next stage's value as the engine reports fractions.
STAGE_SPAN = {
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
    def engine(self) -> JobPaths:
        """The engine's own layout of the work folder (images, PLY, CSV, ...)."""
        return JobPaths(self.work)

    @property
    def ply_dir(self) -> Path:
        return self.engine.ply

    @property
    def submission(self) -> Path:
        return self.engine.submission


def job_files(settings: Settings, job_id: str) -> JobFiles:
    return JobFiles(settings.job_dir(job_id))


class ProgressWriter:
    """Engine callback that writes to the store, at most once per percent or second."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._last: tuple[str, int] | None = None
        self._last_time = 0.0

    def __call__(self, stage: str, fraction: float, message: str) -> None:
        if stage not in STAGE_SPAN:
            return
        lo, hi = STAGE_SPAN[stage]
        percent = int(lo + (hi - lo) * min(max(fraction, 0.0), 1.0))
        now = time.monotonic()
        if self._last == (stage, percent) and now - self._last_time < 1.0:
            return
        self._last, self._last_time = (stage, percent), now
        text = f"{_STAGE_MESSAGES[stage]}: {message}" if message else _STAGE_MESSAGES[stage]
        self.store.update_progress(self.job_id, stage, percent, text)


def check_drift(store: JobStore, job_id: str, settings: Settings, images: list[Path]) -> None:
    """Compare the job's images with the reference profile; never fails the job."""
    try:
        from drift.service import drift_for_images

        report = drift_for_images(images, settings)
        store.set_drift(job_id, report["drift_detected"], report["severity"], report)
    except Exception:  # drift is advisory: a broken check must not lose a reconstruction
        log.exception("drift check failed for job %s", job_id)


def readable_error(exc: BaseException) -> str:
    """What a user sees in ``error``: the engine's own message, never a stack trace."""
    cause = getattr(exc, "cause", None)  # errors re-raised by Ray wrap the original
    if isinstance(cause, BaseException) and not isinstance(exc, Scene3DError):
        exc = cause
    if isinstance(exc, Cancelled):
        return "cancelled"
    if isinstance(exc, Scene3DError):
        return str(exc)
    return f"internal error ({type(exc).__name__}); see the server log"


def run_reconstruction_job(job_id: str, store: JobStore, settings: Settings) -> None:
    """Run every task of the reconstruction in order (what the Airflow DAG runs, in one
    thread); any failure ends as ``failed`` with a readable error."""
    from scene3d.tasks import TASKS

    if store.get_job(job_id) is None:
        log.warning("job %s vanished before it started", job_id)
        return
    for name, task in TASKS.items():
        try:
            task(job_id, store, settings)
        except Exception as exc:
            if not isinstance(exc, Scene3DError):
                log.exception("job %s failed in %s", job_id, name)
            store.mark_failed(job_id, readable_error(exc))
            return
