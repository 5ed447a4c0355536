"""Per-user quotas, checked before an upload or a drift check is read: jobs queued or running
at once, and uploads (drift checks likewise) per minute. Plain users and administrators have
their own settings; 0 means no limit. Over a quota: 429 with ``Retry-After``.

Jobs are counted in the job store, in the transaction that creates the job, so the quota
holds across API replicas, restarts and parallel uploads;
drift checks leave no row, so they are counted in this process.
"""

from __future__ import annotations

import math

from fastapi import HTTPException, status

from scene3d.security import LoginRateLimiter
from scene3d.settings import Settings
from scene3d.store import JobQuota, JobStore, QuotaExceededError, UserRecord

WINDOW_SECONDS = 60.0


def _limits(user: UserRecord, settings: Settings) -> tuple[int, int]:
    if user.is_admin:
        return settings.admin_max_unfinished_jobs, settings.admin_uploads_per_minute
    return settings.user_max_unfinished_jobs, settings.user_uploads_per_minute


def _too_many(what: str, retry_after: float) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        f"quota reached: {what}; try again later",
        headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
    )


def job_quota(user: UserRecord, settings: Settings) -> JobQuota:
    """The quota the store checks again as it creates the job (parallel uploads)."""
    max_jobs, per_minute = _limits(user, settings)
    return JobQuota(max_unfinished=max_jobs, max_recent=per_minute, window_seconds=WINDOW_SECONDS)


def quota_refused(reason: str) -> HTTPException:
    """429 for a job the store refused at creation (:class:`QuotaExceededError`)."""
    return _too_many(reason, WINDOW_SECONDS)


def check_upload_quota(user: UserRecord, store: JobStore, settings: Settings) -> None:
    """429 when ``user`` has too many unfinished jobs or uploaded too much this minute: a
    cheap first look before the body is read (the store looks again as it creates the job)."""
    try:
        store.check_quota(user.id, job_quota(user, settings))
    except QuotaExceededError as exc:
        raise quota_refused(str(exc)) from None


class DriftCheckQuota:
    """Drift checks per user per minute, in this process (a sliding window)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._windows = {
            role: LoginRateLimiter(limit, WINDOW_SECONDS)
            for role, limit in (
                ("admin", settings.admin_uploads_per_minute),
                ("user", settings.user_uploads_per_minute),
            )
            if limit
        }

    def take(self, user: UserRecord) -> None:
        """Count one check for ``user``, or 429 when their minute is used up."""
        window = self._windows.get(user.role)
        if window is None:
            return
        key = str(user.id)
        wait = window.retry_after(key)
        if wait:
            raise _too_many(f"{window.max_failures} drift checks per minute", wait)
        window.record_failure(key)  # the limiter counts events; here an event is a check
