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
import shutil
import uuid
from contextlib import suppress
from pathlib import Path

from scene3d.jobs.paths import spool_dir
from scene3d.orchestrator import LocalOrchestrator, Orchestrator
from scene3d.security import hash_password
from scene3d.settings import Settings
from scene3d.store import JobStore, UserExistsError

log = logging.getLogger(__name__)


def ensure_admin(store: JobStore, settings: Settings) -> str | None:
    """Create the first admin if there is none; return a generated password, else None.

    The password is ``settings.admin_password``; when that is empty one is generated and
    kept in ``secrets/admin_password`` (mode 0600) to be shown once. The file is written
    before the user exists and moved into place after, so a failure on the way leaves
    either no admin (the next start tries again) or an admin whose password is on file.
    """
    if store.count_admins() > 0:
        return None
    if settings.admin_password:
        with suppress(UserExistsError):  # another process created it first
            store.create_user(
                settings.admin_user, hash_password(settings.admin_password), role="admin"
            )
        return None
    password = secrets.token_urlsafe(18)
    path = settings.secrets_dir / "admin_password"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pending = path.with_name(f".admin_password.{os.getpid()}")
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover file keeps its mode under O_TRUNC
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{settings.admin_user}:{password}\n")
            fh.flush()
            os.fsync(fh.fileno())
        store.create_user(settings.admin_user, hash_password(password), role="admin")
    except UserExistsError:
        pending.unlink(missing_ok=True)
        return None  # another process created it first; its password is the one on file
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    os.replace(pending, path)
    return password


def secure_home(settings: Settings) -> None:
    """Owner-only state on every start: the home folder (photos, results, secrets) 0700,
    the SQLite job store with its WAL and shared memory and every secret file 0600, whatever
    an older version or another tool left there."""
    try:
        _tighten(settings)
    except PermissionError as exc:
        raise RuntimeError(
            f"the state folder {settings.home} must be readable by its owner only and cannot "
            f"be made so ({exc.strerror}: {exc.filename}); fix its owner or set SCENE3D_HOME"
        ) from None


def _tighten(settings: Settings) -> None:
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.home.chmod(0o700)
    database = settings.database_url.removeprefix("sqlite:///")
    if database != settings.database_url:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with suppress(FileNotFoundError):
                Path(database + suffix).chmod(0o600)
    for folder in (settings.secrets_dir, settings.jobs_dir):
        if folder.is_dir():
            folder.chmod(0o700)
    if settings.secrets_dir.is_dir():
        for secret in settings.secrets_dir.iterdir():
            if secret.is_file():
                secret.chmod(0o600)


def _is_job_id(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def remove_leftovers(settings: Settings, store: JobStore) -> list[str]:
    """What a crash can leave behind, removed before anything is served: upload spool
    files (a request that never finished) and job folders with no job row (the server
    stopped between storing an upload and recording its job). Returns what went."""
    removed: list[str] = []
    spool = spool_dir(settings)
    if spool.is_dir():
        for leftover in spool.iterdir():
            leftover.unlink(missing_ok=True)
            removed.append(f"{spool.name}/{leftover.name}")
    if settings.jobs_dir.is_dir():
        for folder in settings.jobs_dir.iterdir():
            if _is_job_id(folder.name) and folder.is_dir() and store.get_job(folder.name) is None:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
    if removed:
        log.info("removed %d leftovers of an interrupted run: %s", len(removed), removed)
    return removed


def prepare(settings: Settings) -> str | None:
    """Tighten the state folder, migrate the job store, remove what a crash left behind
    and make sure an admin exists; returns a generated admin password to show once, or
    None."""
    secure_home(settings)
    store = JobStore(settings.database_url)
    try:
        store.migrate()
        remove_leftovers(settings, store)
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
