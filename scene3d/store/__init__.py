"""The durable job store: users, jobs and clusters in SQLite (embedded) or PostgreSQL.

Typical use::

    store = JobStore(settings.database_url)
    store.migrate()
    job = store.create_job(str(uuid.uuid4()), user.id, "dataset", "scene")
"""

from scene3d.store.errors import (
    JobExistsError,
    LastAdminError,
    QuotaExceededError,
    StoreError,
    UnknownJobError,
    UnknownUserError,
    UserExistsError,
)
from scene3d.store.jobs import JobQuota
from scene3d.store.records import ClusterRecord, JobRecord, UserRecord
from scene3d.store.schema import alembic_config
from scene3d.store.stages import (
    ACTIVE_STAGES,
    DRIFT_SEVERITIES,
    PIPELINE_ORDER,
    ROLES,
    STAGE_PROGRESS,
    STAGES,
    START_FAILED,
    TERMINAL_STAGES,
)
from scene3d.store.store import JobStore

__all__ = [
    "ACTIVE_STAGES",
    "DRIFT_SEVERITIES",
    "PIPELINE_ORDER",
    "ROLES",
    "STAGES",
    "STAGE_PROGRESS",
    "START_FAILED",
    "TERMINAL_STAGES",
    "ClusterRecord",
    "JobExistsError",
    "JobQuota",
    "JobRecord",
    "JobStore",
    "LastAdminError",
    "QuotaExceededError",
    "StoreError",
    "UnknownJobError",
    "UnknownUserError",
    "UserExistsError",
    "UserRecord",
    "alembic_config",
]
