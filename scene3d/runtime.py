"""Start-up of a platform, done once by whoever starts it (``scene3d up``, ``scene3d serve``).

- :func:`prepare`: migrate the job store and create the first admin (no default password);
- :func:`orchestrator_for`: Airflow when the settings name it, else local threads;
- :func:`resume_unfinished`: jobs a stopped platform left unfinished start again.

API processes and replicas only assemble what they are given (``api.main.create_app``):
none of them migrates, creates users or restarts jobs.
"""

from __future__ import annotations

import logging
import os
import secrets

from scene3d.orchestrator import LocalOrchestrator, Orchestrator
from scene3d.security import hash_password
from scene3d.settings import Settings
from scene3d.store import JobStore, UserExistsError

log = logging.getLogger(__name__)


def ensure_admin(store: JobStore, settings: Settings) -> str | None:
    """Create the first admin if there is none; return a generated password, else None.

    The password is ``settings.admin_password``; when that is empty one is generated,
    written to ``secrets/admin_password`` with mode 0600 and returned to be shown once.
    """
    if store.count_admins() > 0:
        return None
    password = settings.admin_password
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(18)
    try:
        store.create_user(settings.admin_user, hash_password(password), role="admin")
    except UserExistsError:
        return None  # another process created it first; its password is the one on file
    if generated:
        path = settings.secrets_dir / "admin_password"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{settings.admin_user}:{password}\n")
    return generated


def prepare(settings: Settings) -> str | None:
    """Migrate the job store and make sure an admin exists; returns a generated admin
    password to show once, or None."""
    store = JobStore(settings.database_url)
    try:
        store.migrate()
        return ensure_admin(store, settings)
    finally:
        store.close()


def orchestrator_for(settings: Settings, store: JobStore) -> Orchestrator:
    """Airflow when the platform runs it (``settings.airflow_url``), else local threads."""
    if settings.airflow_url:
        from scene3d.airflow import airflow_password
        from scene3d.airflow_client import AirflowOrchestrator

        return AirflowOrchestrator(
            settings.airflow_url, settings.airflow_user, airflow_password(settings)
        )
    from scene3d.jobs.runner import run_job

    return LocalOrchestrator(
        lambda job_id: run_job(job_id, store, settings), settings.max_concurrent_jobs
    )


def resume_unfinished(orchestrator: Orchestrator, store: JobStore) -> list[str]:
    """Start again what a stopped platform left unfinished; logs and returns the job ids."""
    jobs = orchestrator.resume(store)
    if jobs:
        log.info("resumed %d unfinished jobs: %s", len(jobs), ", ".join(jobs))
    return jobs
