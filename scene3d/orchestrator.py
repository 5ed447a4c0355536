"""How the API hands work off: an orchestrator starts reconstructions and retraining.

The API depends only on the :class:`Orchestrator` protocol. :class:`LocalOrchestrator`
runs jobs in background threads of the API process, bounded by a semaphore (a job
waiting for it stays ``queued``): enough for a laptop and for tests. The Airflow
client implements the same protocol for the full platform.

Unfinished jobs are resumed once per platform, by whoever starts it (``scene3d up``,
``scene3d serve``) through :meth:`Orchestrator.resume`, never by each API process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from scene3d.store import JobStore

log = logging.getLogger(__name__)


class OrchestratorUnavailable(Exception):
    """The orchestrator could not be reached or refused the request (API answers 502)."""


class Orchestrator(Protocol):
    def trigger_reconstruction(self, job_id: str) -> None:
        """Start the reconstruction of a stored job; raise OrchestratorUnavailable."""

    def trigger_retrain(self) -> str:
        """Start the experiment pipeline; return its run id; raise OrchestratorUnavailable."""

    def resume(self, store: JobStore) -> list[str]:
        """Start again every job the store holds as unfinished; return their ids."""


def unfinished_jobs(store: JobStore) -> list[str]:
    """Jobs a stopped platform left running or queued (the tasks resume from their files,
    so starting them again finishes them)."""
    from scene3d.store import TERMINAL_STAGES

    return [job.id for job in store.list_jobs() if job.stage not in TERMINAL_STAGES]


JobRunner = Callable[[str], None]


class LocalOrchestrator:
    """Runs each job in a daemon thread; at most ``max_concurrent`` run at once.

    A job id is started at most once per process, so a repeated trigger (a client
    retry) never starts a second run of the same job.
    """

    def __init__(self, run_job: JobRunner, max_concurrent: int = 1) -> None:
        self._run_job = run_job
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._started: set[str] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def trigger_reconstruction(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._started:
                return
            self._started.add(job_id)
            thread = threading.Thread(
                target=self._run, args=(job_id,), name=f"job-{job_id[:8]}", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def trigger_retrain(self) -> str:
        raise OrchestratorUnavailable(
            "retraining needs Airflow's experiment_pipeline_dag; the local orchestrator has none"
        )

    def resume(self, store: JobStore) -> list[str]:
        jobs = unfinished_jobs(store)
        for job_id in jobs:
            log.info("resuming unfinished job %s", job_id)
            self.trigger_reconstruction(job_id)
        return jobs

    def _run(self, job_id: str) -> None:
        with self._slots:
            try:
                self._run_job(job_id)
            except Exception:  # the runner records failures itself; never kill the thread pool
                log.exception("job %s crashed", job_id)

    def join(self, timeout: float | None = None) -> None:
        """Wait for every started job (tests and clean shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)
