"""Job rows: creating a job, reading one or a list, and storing its drift verdict.

How a job moves through its stages is :mod:`scene3d.store.progress`; its reconstructed
models are :mod:`scene3d.store.clusters`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from scene3d.store.engine import Database
from scene3d.store.errors import JobExistsError, QuotaExceededError, UnknownUserError
from scene3d.store.models import Job, User
from scene3d.store.records import JobRecord
from scene3d.store.stages import DRIFT_SEVERITIES, START_FAILED, TERMINAL_STAGES
from scene3d.store.values import violation


def job_record(row: Any) -> JobRecord:
    """The frozen copy of a ``jobs`` row selected with every column."""
    return JobRecord(**row._mapping)


def _check_job_id(job_id: str) -> None:
    """Job ids name folders on disk: accept only canonical UUID strings (no path tricks)."""
    try:
        ok = str(uuid.UUID(job_id)) == job_id
    except (ValueError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise ValueError(f"job id must be a lower-case UUID string, got {job_id!r}")


@dataclass(frozen=True)
class JobQuota:
    """What one owner may still create, checked in the transaction that creates the job
    (so parallel uploads cannot all pass a check made earlier). 0: no limit."""

    max_unfinished: int = 0
    """Jobs queued or running at once."""
    max_recent: int = 0
    """Jobs created within the last ``window_seconds``."""
    window_seconds: float = 60.0


class JobRowStore(Database):
    """The ``jobs`` table: one row per upload, owned by a user."""

    def create_job(
        self,
        job_id: str,
        owner_id: int,
        dataset_name: str,
        scene_name: str,
        preset: str | None = None,
        model_name: str | None = None,
        model_version: str | None = None,
        quota: JobQuota | None = None,
    ) -> JobRecord:
        """Record a new job in stage ``queued``; ``job_id`` must be a canonical UUID. With
        ``quota``, :class:`QuotaExceededError` when the owner is at it (nothing written)."""
        _check_job_id(job_id)
        values: dict[str, Any] = {
            "id": job_id,
            "owner_id": owner_id,
            "dataset_name": dataset_name,
            "scene_name": scene_name,
            "stage": "queued",
            "progress": 0,
            "message": "",
            "created_at": self._now(),
            "preset": preset,
            "model_name": model_name,
            "model_version": model_version,
        }
        try:
            with self._write() as conn:
                if quota is not None:
                    self._check_quota(conn, owner_id, quota, values["created_at"])
                conn.execute(insert(Job).values(**values))
                # Read the row back so the record carries the server defaults too.
                row = conn.execute(select(Job.__table__).where(Job.id == job_id)).one()
        except IntegrityError as exc:
            kind = violation(exc)
            if kind == "unique":
                raise JobExistsError(f"job {job_id} already exists") from None
            if kind == "foreign_key":
                raise UnknownUserError(f"no user with id {owner_id}") from None
            raise
        return job_record(row)

    def _check_quota(
        self, conn: Connection, owner_id: int, quota: JobQuota, now: float, lock: bool = True
    ) -> None:
        # SQLite's write transaction already holds the file's write lock; PostgreSQL needs the
        # owner's row locked so two creations for one owner take turns.
        if lock and self.dialect == "postgresql":
            conn.execute(select(User.id).where(User.id == owner_id).with_for_update())
        mine = select(func.count()).select_from(Job).where(Job.owner_id == owner_id)
        if quota.max_unfinished:
            unfinished = conn.execute(mine.where(Job.stage.not_in(TERMINAL_STAGES))).scalar_one()
            if unfinished >= quota.max_unfinished:
                raise QuotaExceededError(f"{quota.max_unfinished} jobs queued or running at once")
        if quota.max_recent:
            since = now - quota.window_seconds
            recent = conn.execute(mine.where(Job.created_at >= since)).scalar_one()
            if recent >= quota.max_recent:
                raise QuotaExceededError(
                    f"{quota.max_recent} uploads per {quota.window_seconds:g} seconds"
                )

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job ``job_id``, or None."""
        with self._read() as conn:
            row = conn.execute(select(Job.__table__).where(Job.id == job_id)).first()
        return job_record(row) if row else None

    def jobs_to_reconcile(self, since: float) -> list[JobRecord]:
        """Jobs created since ``since`` that are still queued or failed only to start: the
        ones :mod:`scene3d.reconcile` compares with Airflow (bounded, not the whole table)."""
        stmt = (
            select(Job.__table__)
            .where(
                Job.created_at >= since,
                (Job.stage == "queued")
                | ((Job.stage == "failed") & Job.error.startswith(START_FAILED)),
            )
            .order_by(Job.created_at)
        )
        with self._read() as conn:
            return [job_record(row) for row in conn.execute(stmt)]

    def check_quota(self, owner_id: int, quota: JobQuota) -> None:
        """:class:`QuotaExceededError` when ``owner_id`` is at ``quota`` now: a first look
        before an upload is read; :meth:`create_job` looks again as it writes."""
        with self._read() as conn:
            self._check_quota(conn, owner_id, quota, self._now(), lock=False)

    def list_jobs(self, owner_id: int | None = None, limit: int | None = None) -> list[JobRecord]:
        """Jobs, newest first; only ``owner_id``'s when given."""
        stmt = select(Job.__table__).order_by(Job.created_at.desc(), Job.id)
        if owner_id is not None:
            stmt = stmt.where(Job.owner_id == owner_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return [job_record(r) for r in conn.execute(stmt)]

    def page_jobs(
        self, owner_id: int | None, stage: str | None, limit: int, offset: int
    ) -> tuple[list[JobRecord], int]:
        """One page of jobs, newest first, and how many match in all; only ``owner_id``'s
        and only in ``stage`` when given."""
        where = []
        if owner_id is not None:
            where.append(Job.owner_id == owner_id)
        if stage is not None:
            where.append(Job.stage == stage)
        page = (
            select(Job.__table__)
            .where(*where)
            .order_by(Job.created_at.desc(), Job.id)
            .limit(limit)
            .offset(offset)
        )
        total = select(func.count()).select_from(Job).where(*where)
        with self._read() as conn:
            return [job_record(r) for r in conn.execute(page)], int(conn.execute(total).scalar())

    def set_drift(
        self, job_id: str, has_drift: bool, severity: str, report: Mapping[str, Any] | None
    ) -> bool:
        """Store the drift verdict of a job; False when the job is unknown."""
        if severity not in DRIFT_SEVERITIES:
            raise ValueError(f"severity must be one of {DRIFT_SEVERITIES}, got {severity!r}")
        stmt = (
            update(Job)
            .where(Job.id == job_id)
            .values(
                has_drift=bool(has_drift),
                drift_severity=severity,
                drift_report=dict(report) if report is not None else None,
            )
        )
        with self._write() as conn:
            return conn.execute(stmt).rowcount == 1
