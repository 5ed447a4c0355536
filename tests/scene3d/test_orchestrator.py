"""scene3d.orchestrator: local threads, once per job, bounded."""

from __future__ import annotations

import threading
import time

import pytest

from scene3d.orchestrator import LocalOrchestrator, OrchestratorUnavailable


def test_a_job_is_started_once_however_often_it_is_triggered() -> None:
    ran: list[str] = []
    local = LocalOrchestrator(ran.append)
    for _ in range(3):
        local.trigger_reconstruction("job-1")
    local.join(10)
    assert ran == ["job-1"]


def test_at_most_max_concurrent_jobs_run_at_once() -> None:
    running, peak, lock = 0, 0, threading.Lock()

    def run(job_id: str) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    local = LocalOrchestrator(run, max_concurrent=2)
    for i in range(6):
        local.trigger_reconstruction(f"job-{i}")
    local.join(10)
    assert peak == 2


def test_a_crashing_job_does_not_stop_the_others() -> None:
    ran: list[str] = []

    def run(job_id: str) -> None:
        if job_id == "bad":
            raise RuntimeError("boom")
        ran.append(job_id)

    local = LocalOrchestrator(run)
    local.trigger_reconstruction("bad")
    local.trigger_reconstruction("good")
    local.join(10)
    assert ran == ["good"]


def test_retraining_needs_airflow() -> None:
    with pytest.raises(OrchestratorUnavailable, match="experiment_pipeline_dag"):
        LocalOrchestrator(lambda _: None).trigger_retrain()
