"""Running job tasks: one where it belongs (model worker or this process), or a whole job.

Airflow's step runner (:mod:`scene3d.dagkit`) calls :func:`dispatch_task` for each task; the
local orchestrator calls :func:`run_job`, which runs them all in order. Both decide where a
task runs the same way: the tasks of :data:`~scene3d.jobs.flow.WORKER_TASKS` go to the
model worker when a Ray cluster is configured, everything else runs here.
"""

from __future__ import annotations

import logging

from pipeline.errors import Scene3DError
from scene3d.jobs.flow import RECONSTRUCTION_TASKS, WORKER_TASKS
from scene3d.jobs.progress import readable_error
from scene3d.jobs.tasks import TASKS
from scene3d.settings import Settings
from scene3d.store import JobStore

log = logging.getLogger(__name__)


def runs_on_worker(name: str, settings: Settings) -> bool:
    return name in WORKER_TASKS and bool(settings.ray_address)


def dispatch_task(name: str, job_id: str, store: JobStore, settings: Settings) -> None:
    """Run task ``name`` of the job; the engine's errors propagate unchanged."""
    if runs_on_worker(name, settings):
        from scene3d.worker import remote_worker

        remote_worker(settings).run_task(name, job_id)
    else:
        TASKS[name](job_id, store, settings)


def run_job(job_id: str, store: JobStore, settings: Settings) -> None:
    """Run every task in order, in this thread; any failure ends as ``failed`` with a
    readable error."""
    if store.get_job(job_id) is None:
        log.warning("job %s vanished before it started", job_id)
        return
    for name in RECONSTRUCTION_TASKS:
        try:
            dispatch_task(name, job_id, store, settings)
        except Exception as exc:
            if not isinstance(exc, Scene3DError):
                log.exception("job %s failed in %s", job_id, name)
            store.mark_failed(job_id, readable_error(exc))
            return
