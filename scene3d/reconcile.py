"""Settling jobs whose start went wrong, by comparing the job store with Airflow's runs.

Two states no request can repair by itself:

- a job still ``queued`` long after its upload with no Airflow run: the trigger failed and
  so did marking the job failed (a database or a process went away in between). It is
  triggered again; the run id is derived from the job id, so if the run appeared meanwhile
  nothing is doubled. A ``queued`` job whose run already ended is failed with the reason
  (its callbacks could not write).
- a job marked failed because its trigger timed out, while Airflow did create the run: the
  job is reopened (back to ``queued``), and the run's tasks move it on as usual.

Every step is idempotent, so several API processes may reconcile at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from scene3d.names import RECONSTRUCTION_DAG, reconstruction_run_id
from scene3d.store import JobStore

log = logging.getLogger(__name__)

GRACE_SECONDS = 120.0
"""A queued job younger than this may still be on its way to Airflow."""
HORIZON_SECONDS = 24 * 3600.0
"""Jobs older than this are left as they are (each pass reads a bounded set)."""
UNRECORDED = "the reconstruction run ended but its results were not recorded; upload again"


class RunLookup(Protocol):
    def dag_run_state(self, dag_id: str, run_id: str) -> str | None: ...

    def trigger_reconstruction(self, job_id: str) -> None: ...


@dataclass
class Settled:
    triggered: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def reconcile(
    orchestrator: RunLookup, store: JobStore, now: float | None = None, grace: float = GRACE_SECONDS
) -> Settled:
    """One pass over the queued jobs and the jobs that failed to start."""
    now = time.time() if now is None else now
    settled = Settled()
    for job in store.jobs_to_reconcile(since=now - HORIZON_SECONDS):
        stuck = job.stage == "queued" and job.created_at < now - grace
        unstarted = job.stage == "failed"  # jobs_to_reconcile: failed only to start
        if not (stuck or unstarted):
            continue
        state = orchestrator.dag_run_state(RECONSTRUCTION_DAG, reconstruction_run_id(job.id))
        if stuck and state is None:
            orchestrator.trigger_reconstruction(job.id)
            settled.triggered.append(job.id)
        elif stuck and state in ("failed", "success"):
            # The run ended without the job hearing of it (its callbacks could not write).
            reason = "the reconstruction run failed; see its Airflow log"
            if store.mark_failed(job.id, reason if state == "failed" else UNRECORDED):
                settled.failed.append(job.id)
        elif unstarted and state in ("queued", "running") and store.reopen(job.id):
            settled.reopened.append(job.id)
    if settled.triggered or settled.reopened or settled.failed:
        log.info("reconciled jobs with Airflow: %s", settled)
    return settled
