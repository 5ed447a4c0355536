"""Aggregates for Prometheus: active jobs, the run-time histogram, the latest success."""

from __future__ import annotations

from sqlalchemy import text

from scene3d.store import ACTIVE_STAGES, STAGES, JobStore
from tests.scene3d.store.support import new_id


def test_aggregates(store: JobStore, owner: int) -> None:
    assert store.count_active_jobs() == 0
    assert store.duration_histogram([0.0, 1.0]) == ([0, 0], 0, 0.0)
    assert store.latest_success() is None

    jobs = {stage: store.create_job(new_id(), owner, "ds", stage) for stage in STAGES}
    for stage in ACTIVE_STAGES:
        store.update_progress(jobs[stage].id, stage, 50, stage)
    store.mark_failed(jobs["failed"].id, "boom")
    first = jobs["success"]
    store.update_progress(first.id, "extracting", 10, "go")
    store.update_progress(first.id, "success", 100, "done", registration_rate=0.9)
    second = store.create_job(new_id(), owner, "ds", "second")
    store.update_progress(second.id, "success", 100, "straight from the queue")

    assert {s: store.get_job(j.id).stage for s, j in jobs.items()} == {s: s for s in STAGES}
    assert store.count_active_jobs() == len(ACTIVE_STAGES)

    # the fake clock ticks once per reading: first ran from one update to the next (1 s),
    # second started and finished in the same update (0 s)
    first_done, second_done = store.get_job(first.id), store.get_job(second.id)
    assert first_done.finished_at - first_done.started_at == 1.0
    assert second_done.finished_at - second_done.started_at == 0.0
    counts, total, seconds = store.duration_histogram([0.0, 0.5, 1.0, 10.0])
    assert (counts, total, seconds) == ([1, 1, 2, 2], 2, 1.0)
    assert store.latest_success() == second_done
    assert first_done.registration_rate == 0.9


def test_duration_falls_back_to_created_at(store: JobStore, owner: int) -> None:
    # update_progress always stamps started_at on the way to success, so a finished row
    # without it is written directly here.
    job = store.create_job(new_id(), owner, "ds", "s")
    finish = text("UPDATE jobs SET stage = 'success', finished_at = created_at + 5 WHERE id = :id")
    with store._engine.begin() as conn:
        conn.execute(finish, {"id": job.id})
    assert store.duration_histogram([4.0, 5.0]) == ([0, 1], 1, 5.0)
