"""Aggregates over all jobs for the Prometheus collector, computed in SQL at scrape time.

Computing them from the database (rather than counting in memory) gives every API process
and replica the same numbers, and they survive restarts.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func, select

from scene3d.store.engine import Database
from scene3d.store.jobs import job_record
from scene3d.store.models import Job
from scene3d.store.records import JobRecord
from scene3d.store.stages import ACTIVE_STAGES


class MetricsStore(Database):
    """Read-only counts and durations over ``jobs``."""

    def count_active_jobs(self) -> int:
        """Jobs currently running (extracting to decimating)."""
        stmt = select(func.count()).select_from(Job).where(Job.stage.in_(ACTIVE_STAGES))
        with self._read() as conn:
            return int(conn.execute(stmt).scalar_one())

    def duration_histogram(self, bounds: Sequence[float]) -> tuple[list[int], int, float]:
        """Cumulative counts of successful jobs with run time <= each bound, the count and the
        sum, over all jobs (computed in SQL, so the histogram only ever grows).

        The run time is measured from ``started_at``, or ``created_at`` for a job never seen
        running.
        """
        duration = Job.finished_at - func.coalesce(Job.started_at, Job.created_at)
        columns = [func.sum(case((duration <= b, 1), else_=0)) for b in bounds]
        stmt = select(func.count(), func.coalesce(func.sum(duration), 0.0), *columns).where(
            Job.stage == "success", Job.finished_at.is_not(None)
        )
        with self._read() as conn:
            row = conn.execute(stmt).one()
        return [int(v or 0) for v in row[2:]], int(row[0]), float(row[1])

    def latest_success(self) -> JobRecord | None:
        """The most recently finished successful job (registration ratio, valid images)."""
        stmt = (
            select(Job.__table__)
            .where(Job.stage == "success", Job.finished_at.is_not(None))
            .order_by(Job.finished_at.desc(), Job.id)
            .limit(1)
        )
        with self._read() as conn:
            row = conn.execute(stmt).first()
        return job_record(row) if row else None
