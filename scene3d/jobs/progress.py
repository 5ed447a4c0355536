"""What a user sees of a running job: engine steps -> API stages and percent, readable errors.

The only place where the engine's steps (``pipeline.reconstruct.STEPS``) meet the API's
stages (``api_reference.rst``). Every write goes through the store's monotonic
``update_progress``, so a retried or late update never moves a job backwards.
"""

from __future__ import annotations

import time

from pipeline.errors import Cancelled, Scene3DError
from scene3d.store import STAGE_PROGRESS, JobStore


def _stage_span(stage: str, following: str) -> tuple[int, int]:
    """Percent a stage covers: from its documented value to just below the next one's."""
    return STAGE_PROGRESS[stage], STAGE_PROGRESS[following] - 1


STAGE_SPAN: dict[str, tuple[int, int]] = {
    "extracting": _stage_span("extracting", "matching"),
    "matching": _stage_span("matching", "triangulating"),
    "triangulating": _stage_span("triangulating", "decimating"),
    "decimating": _stage_span("decimating", "success"),
}
"""Percent range of each running stage; progress rises through it as the engine reports."""

STEP_STAGES: dict[str, tuple[str, float, float]] = {
    "ingest": ("extracting", 0.0, 1.0),
    "features": ("matching", 0.0, 0.35),
    "pairs": ("matching", 0.35, 0.4),
    "matching": ("matching", 0.4, 1.0),
    "mapping": ("triangulating", 0.0, 1.0),
    "export": ("decimating", 0.0, 1.0),
}
"""Engine step -> (API stage, start, end) within that stage: feature extraction and pair
selection count as the first part of ``matching``."""

STAGE_MESSAGES = {
    "extracting": "Unpacking the ZIP archive",
    "matching": "Extracting and matching features",
    "triangulating": "Structure from motion in progress",
    "decimating": "Voxel downsampling of point clouds",
}


def step_percent(step: str, fraction: float) -> tuple[str, int]:
    """The API stage and percent of ``fraction`` (0..1) of engine step ``step``."""
    stage, start, end = STEP_STAGES[step]
    within = start + (end - start) * min(max(fraction, 0.0), 1.0)
    lo, hi = STAGE_SPAN[stage]
    return stage, int(lo + (hi - lo) * within)


class ProgressWriter:
    """Engine progress callback that writes to the store, at most once per percent or second."""

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store, self.job_id = store, job_id
        self._last: tuple[str, int] | None = None
        self._last_time = 0.0

    def __call__(self, step: str, fraction: float, message: str) -> None:
        if step not in STEP_STAGES:
            return
        stage, percent = step_percent(step, fraction)
        now = time.monotonic()
        if self._last == (stage, percent) and now - self._last_time < 1.0:
            return
        self._last, self._last_time = (stage, percent), now
        text = f"{STAGE_MESSAGES[stage]}: {message}" if message else STAGE_MESSAGES[stage]
        self.store.update_progress(self.job_id, stage, percent, text)

    def start(self, step: str, message: str) -> None:
        """Engine step ``step`` begins: the job enters its stage at the step's start."""
        self.store.update_progress(self.job_id, *step_percent(step, 0.0), message)

    def done(self, step: str, message: str, **fields: object) -> None:
        """Engine step ``step`` finished; ``fields`` are counts it produced."""
        self.store.update_progress(self.job_id, *step_percent(step, 1.0), message, **fields)

    def succeed(self, message: str, **fields: object) -> bool:
        """The job ends ``success`` with its results; False if it had already ended."""
        return self.store.update_progress(
            self.job_id, "success", STAGE_PROGRESS["success"], message, **fields
        )


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
