"""How a job moves through its stages: the monotonic ``update_progress`` and ``mark_failed``.

Progress updates are a single conditional ``UPDATE``, so two workers reporting at the same
time (a retried task, a late callback) can never move a job backwards.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, update

from scene3d.store.engine import Database
from scene3d.store.models import Job
from scene3d.store.stages import PIPELINE_ORDER, START_FAILED, TERMINAL_STAGES
from scene3d.store.values import finite

_JOB_FIELDS = frozenset(
    {
        "n_images",
        "n_valid_images",
        "n_points",
        "registration_rate",
        "model_version",
        "preset",
        "timings",
    }
)
"""Columns ``update_progress(**fields)`` may set alongside the stage."""


def _check_progress(progress: float) -> int:
    """``progress`` as the stored whole percent; refuses booleans and values outside 0..100."""
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        raise ValueError(f"progress must be a number, got {progress!r}")
    value = round(progress)
    if not 0 <= value <= 100:
        raise ValueError(f"progress must be within 0..100, got {progress!r}")
    return value


class ProgressStore(Database):
    """Stage, progress and outcome columns of ``jobs``."""

    def update_progress(
        self, job_id: str, stage: str, progress: float, message: str, **fields: Any
    ) -> bool:
        """Move a job forward; returns False (and changes nothing) when that would go back.

        Applied only when ``stage`` is later than the current stage, or the same
        non-terminal stage with no lower progress. The check and the write are one
        conditional UPDATE, so concurrent reporters cannot undo each other's progress.
        Leaving ``queued`` stamps ``started_at`` (once); reaching ``success`` stamps
        ``finished_at``. ``fields`` may set n_images, n_valid_images, n_points,
        registration_rate, model_version, preset and timings. Failures go through
        :meth:`mark_failed`.
        """
        if stage not in PIPELINE_ORDER:
            hint = "; use mark_failed()" if stage == "failed" else ""
            raise ValueError(f"unknown stage {stage!r}{hint}")
        unknown = set(fields) - _JOB_FIELDS
        if unknown:
            raise TypeError(f"update_progress() cannot set {sorted(unknown)}")
        values: dict[str, Any] = dict(fields)
        if "registration_rate" in values:
            values["registration_rate"] = finite(values["registration_rate"])
        progress = _check_progress(progress)
        now = self._now()
        earlier = PIPELINE_ORDER[: PIPELINE_ORDER.index(stage)]
        allowed: ColumnElement[bool] = Job.stage.in_(earlier) if earlier else false()
        if stage not in TERMINAL_STAGES:
            allowed = or_(allowed, and_(Job.stage == stage, Job.progress <= progress))
        values.update(stage=stage, progress=progress, message=message)
        if stage != "queued":
            values["started_at"] = func.coalesce(Job.started_at, now)
        if stage == "success":
            values["finished_at"] = now
        stmt = update(Job).where(Job.id == job_id, allowed).values(**values)
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def mark_failed(self, job_id: str, error: str) -> bool:
        """End a job as failed with ``error``; False if it already ended (or is unknown)."""
        # The message is what lists show: the first line only, bounded; error keeps it all.
        first_line = (error.strip().splitlines() or ["failed"])[0][:500]
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.stage.not_in(TERMINAL_STAGES))
            .values(
                stage="failed",
                progress=0,
                error=error,
                message=first_line,
                finished_at=self._now(),
            )
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1

    def reopen(self, job_id: str) -> bool:
        """Put a job that failed only to start (its error begins with
        :data:`~scene3d.store.stages.START_FAILED`) back to ``queued``: its run exists after
        all. False for any other job."""
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.stage == "failed", Job.error.startswith(START_FAILED))
            .values(stage="queued", progress=0, error=None, message="", finished_at=None)
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1
