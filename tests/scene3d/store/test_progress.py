"""Progress only moves forward, under concurrency too; failures end a job once."""

from __future__ import annotations

import random
import threading

import pytest

from scene3d.store import PIPELINE_ORDER, JobStore
from tests.scene3d.store.support import new_id


def test_progress_is_monotonic_and_stamped(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    assert store.update_progress(job.id, "queued", 0, "waiting") is True
    assert store.get_job(job.id).started_at is None

    assert store.update_progress(job.id, "extracting", 20, "features", n_images=12) is True
    started = store.get_job(job.id).started_at
    assert started is not None

    assert store.update_progress(job.id, "extracting", 10, "lower") is False  # same stage, lower
    assert store.update_progress(job.id, "queued", 0, "back") is False  # earlier stage
    assert store.update_progress(job.id, "extracting", 20, "same, new message") is True
    assert store.update_progress(job.id, "matching", 5, "new stage may start low") is True
    assert store.update_progress(job.id, "extracting", 99, "back") is False

    current = store.get_job(job.id)
    assert (current.stage, current.progress, current.message) == (
        "matching",
        5,
        "new stage may start low",
    )
    assert current.started_at == started and current.n_images == 12

    assert store.update_progress(
        job.id,
        "success",
        100,
        "done",
        n_points=500,
        registration_rate=0.75,
        timings={"total": 3.5},
        preset="sift",
        model_version="v2",
        n_valid_images=10,
    )
    done = store.get_job(job.id)
    assert done.stage == "success" and done.finished_at is not None
    assert done.finished_at > done.started_at == started
    assert (done.n_points, done.registration_rate, done.timings) == (500, 0.75, {"total": 3.5})
    assert (done.n_images, done.n_valid_images, done.model_version) == (12, 10, "v2")

    # terminal stays terminal
    assert store.update_progress(job.id, "success", 100, "again") is False
    assert store.update_progress(job.id, "decimating", 90, "back") is False
    assert store.mark_failed(job.id, "late failure") is False
    assert store.get_job(job.id) == done


def test_update_progress_refuses_bad_input(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    with pytest.raises(ValueError, match="mark_failed"):
        store.update_progress(job.id, "failed", 0, "x")
    with pytest.raises(ValueError):
        store.update_progress(job.id, "bogus", 0, "x")
    with pytest.raises(ValueError):
        store.update_progress(job.id, "matching", 101, "x")
    with pytest.raises(ValueError):
        store.update_progress(job.id, "matching", True, "x")
    with pytest.raises(TypeError):
        store.update_progress(job.id, "matching", 40, "x", owner_id=5)
    assert store.update_progress(new_id(), "matching", 40, "unknown job") is False
    assert store.get_job(job.id) == job


def test_non_finite_registration_rate_is_stored_as_null(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    assert store.update_progress(job.id, "matching", 40, "x", registration_rate=float("nan"))
    assert store.get_job(job.id).registration_rate is None


def test_mark_failed(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    store.update_progress(job.id, "triangulating", 75, "mapping")
    assert store.mark_failed(job.id, "no model\ntraceback details") is True
    failed = store.get_job(job.id)
    assert (failed.stage, failed.progress, failed.message) == ("failed", 0, "no model")
    assert failed.error == "no model\ntraceback details" and failed.finished_at is not None
    assert store.mark_failed(job.id, "twice") is False
    assert store.update_progress(job.id, "success", 100, "too late") is False
    assert store.get_job(job.id) == failed
    assert store.mark_failed(new_id(), "unknown") is False


def test_concurrent_writers_never_move_a_job_backwards(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    n_threads, n_updates = 6, 25
    attempts: list[tuple[str, int]] = []
    seen: list[tuple[int, int]] = []
    start = threading.Barrier(n_threads + 1)
    done = threading.Event()
    errors: list[BaseException] = []
    stages = PIPELINE_ORDER[:-1]  # success would freeze the job early

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            for _ in range(n_updates):
                stage, progress = rng.choice(stages), rng.randint(0, 100)
                attempts.append((stage, progress))
                store.update_progress(job.id, stage, progress, f"{stage} {progress}")
        except BaseException as exc:
            errors.append(exc)

    def watcher() -> None:
        start.wait()
        while not done.is_set():
            j = store.get_job(job.id)
            seen.append((PIPELINE_ORDER.index(j.stage), j.progress))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n_threads)]
    observer = threading.Thread(target=watcher)
    for t in [*threads, observer]:
        t.start()
    for t in threads:
        t.join(timeout=60)
    done.set()
    observer.join(timeout=60)
    assert not errors

    final = store.get_job(job.id)
    top = max(attempts, key=lambda a: PIPELINE_ORDER.index(a[0]))[0]
    assert final.stage == top
    assert final.progress == max(p for s, p in attempts if s == top)
    assert final.message == f"{final.stage} {final.progress}"
    assert seen == sorted(seen), "a reader saw the job move backwards"
