"""FastAPI dependencies as ``Annotated`` aliases (FastAPI full-stack template style)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.limits import WorkPool
from api.metrics import ApiMetrics
from api.quotas import DriftCheckQuota
from scene3d.orchestrator import Orchestrator
from scene3d.security import InvalidTokenError, LoginThrottle, decode_access_token
from scene3d.settings import Settings
from scene3d.store import JobRecord, JobStore, UserRecord
from scene3d.worker import ModelWorker


@dataclass
class AppContext:
    """Everything the routes need; built once by the app factory."""

    settings: Settings
    store: JobStore
    orchestrator: Orchestrator
    worker: ModelWorker
    metrics: ApiMetrics
    login_limiter: LoginThrottle
    heavy: WorkPool
    """Upload probes and drift checks: bounded, 503 when full."""
    orchestrator_calls: WorkPool
    """Triggers sent to Airflow: bounded, waiting without a thread when full."""
    drift_quota: DriftCheckQuota


def get_context(request: Request) -> AppContext:
    return request.app.state.ctx


ContextDep = Annotated[AppContext, Depends(get_context)]

_bearer = HTTPBearer(auto_error=False)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def get_current_user(
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> UserRecord:
    """The token's user, still present in the store; 401 for every kind of bad token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("Not authenticated")
    try:
        claims = decode_access_token(credentials.credentials, ctx.settings)
    except InvalidTokenError as exc:
        raise _unauthorized(f"Invalid token: {exc}") from None
    user = ctx.store.get_user_by_id(int(claims.subject)) if claims.subject.isdigit() else None
    if user is None:
        raise _unauthorized("Invalid token: unknown user")
    # A new password or role (or a new user in a removed one's place) has a new stamp.
    if not user.token_stamp or not hmac.compare_digest(user.token_stamp, claims.stamp):
        raise _unauthorized("Invalid token: revoked")
    return user


CurrentUser = Annotated[UserRecord, Depends(get_current_user)]


def get_admin_user(user: CurrentUser) -> UserRecord:
    """The caller, if an admin; 403 for everyone else (they are authenticated, not allowed)."""
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Admin role required")
    return user


AdminUser = Annotated[UserRecord, Depends(get_admin_user)]

UNREACHABLE = "the orchestrator is unreachable; try again later"
"""What a client reads when Airflow cannot take work: its address, user and own error text
are internal, so they go to the server log only."""
STORE_BUSY = "the job store is busy or unreachable; try again shortly"
"""503 when the database is locked or gone (the details go to the log)."""
OUT_OF_SPACE = "the server is out of disk space; try again later"
"""507 when an upload cannot be stored."""
RETRY_LATER = {"Retry-After": "5"}
"""Header of answers that a retry a few seconds later may turn into a success."""


def get_owned_job(job_id: str, ctx: ContextDep, user: CurrentUser) -> JobRecord:
    """The job if it exists and the caller may see it; another user's job is 404, as if absent."""
    job = ctx.store.get_job(job_id)
    if job is None or (user.role != "admin" and job.owner_id != user.id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Job not found")
    return job


OwnedJob = Annotated[JobRecord, Depends(get_owned_job)]
