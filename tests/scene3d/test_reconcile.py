"""scene3d.reconcile against a real SQLite store: stuck and wrongly failed jobs settle."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from scene3d.names import reconstruction_run_id
from scene3d.reconcile import GRACE_SECONDS, reconcile
from scene3d.store import JobStore


@dataclass
class Runs:
    """Airflow's runs as the reconciler sees them: run id -> state."""

    states: dict[str, str] = field(default_factory=dict)
    triggered: list[str] = field(default_factory=list)

    def dag_run_state(self, dag_id: str, run_id: str) -> str | None:
        return self.states.get(run_id)

    def trigger_reconstruction(self, job_id: str) -> None:
        self.triggered.append(job_id)
        self.states[reconstruction_run_id(job_id)] = "queued"


def _job(store: JobStore, owner: int, stage: str = "queued", error: str = "") -> str:
    job_id = str(uuid.uuid4())
    store.create_job(job_id, owner, "d", "s")
    if stage == "failed":
        store.mark_failed(job_id, error)
    return job_id


def test_stuck_and_wrongly_failed_jobs_are_settled(tmp_path) -> None:
    later = time.time() + GRACE_SECONDS + 1
    runs = Runs()
    with JobStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.migrate()
        owner = store.create_user("alice", "h").id
        lost = _job(store, owner)  # trigger and mark_failed both failed
        gone_wrong = _job(store, owner)  # its run failed, the failure callback could not write
        runs.states[reconstruction_run_id(gone_wrong)] = "failed"
        timed_out = _job(store, owner, "failed", "could not start: the orchestrator is unreachable")
        runs.states[reconstruction_run_id(timed_out)] = "running"
        really_failed = _job(store, owner, "failed", "no scene could be reconstructed")
        runs.states[reconstruction_run_id(really_failed)] = "running"
        running = _job(store, owner)
        runs.states[reconstruction_run_id(running)] = "running"

        first = reconcile(runs, store)
        assert first.triggered == [] and first.failed == []  # young jobs may be on their way
        assert first.reopened == [timed_out]  # its run exists: no need to wait
        settled = reconcile(runs, store, now=later)
        assert settled.triggered == [lost] and runs.triggered == [lost]
        assert settled.failed == [gone_wrong]
        assert store.get_job(timed_out).stage == "queued" and store.get_job(timed_out).error is None
        assert store.get_job(really_failed).stage == "failed"
        assert store.get_job(running).stage == "queued"
        # A second pass finds nothing left to do.
        again = reconcile(runs, store, now=later)
        assert (again.triggered, again.failed, again.reopened) == ([], [], [])
