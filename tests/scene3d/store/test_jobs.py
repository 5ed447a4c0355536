"""Job rows: create with validation, read one, list by owner, store the drift verdict."""

from __future__ import annotations

import numpy as np
import pytest

from scene3d.store import JobExistsError, JobStore, UnknownUserError
from tests.scene3d.store.support import new_id


def test_create_get_and_list_jobs_by_owner(store: JobStore) -> None:
    a = store.create_user("a", "h").id
    b = store.create_user("b", "h").id
    j1 = store.create_job(new_id(), a, "ds1", "s1", preset="sift", model_version="v1")
    j2 = store.create_job(new_id(), a, "ds2", "s2")
    j3 = store.create_job(new_id(), b, "ds3", "s3")
    assert j1.stage == "queued" and j1.progress == 0 and j1.message == ""
    assert j1.started_at is None and j1.finished_at is None
    assert (j1.preset, j1.model_version, j1.has_drift, j1.drift_severity) == (
        "sift",
        "v1",
        False,
        "low",
    )
    assert store.get_job(j1.id) == j1
    assert store.get_job(new_id()) is None
    assert [j.id for j in store.list_jobs(owner_id=a)] == [j2.id, j1.id]  # newest first
    assert [j.id for j in store.list_jobs(owner_id=b)] == [j3.id]
    assert [j.id for j in store.list_jobs()] == [j3.id, j2.id, j1.id]
    assert [j.id for j in store.list_jobs(limit=2)] == [j3.id, j2.id]

    with pytest.raises(JobExistsError):
        store.create_job(j1.id, a, "x", "y")
    with pytest.raises(UnknownUserError):
        store.create_job(new_id(), 9999, "x", "y")
    with pytest.raises(ValueError):
        store.create_job("../../etc", a, "x", "y")
    with pytest.raises(ValueError):
        store.create_job(j1.id.upper(), a, "x", "y")  # not canonical
    assert len(store.list_jobs()) == 3


def test_set_drift_stores_a_json_report(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    report = {"drift_detected": True, "psi": np.float64(0.4), "n": np.int64(3), "x": float("nan")}
    assert store.set_drift(job.id, True, "high", report) is True
    stored = store.get_job(job.id)
    assert stored.has_drift is True and stored.drift_severity == "high"
    assert stored.drift_report == {"drift_detected": True, "psi": 0.4, "n": 3, "x": None}
    with pytest.raises(ValueError):
        store.set_drift(job.id, True, "extreme", {})
    assert store.set_drift(new_id(), False, "low", None) is False


def test_a_quota_is_checked_where_the_job_is_created(store: JobStore, owner: int) -> None:
    from scene3d.store import JobQuota, QuotaExceededError

    quota = JobQuota(max_unfinished=2, max_recent=3, window_seconds=60)
    first, second = new_id(), new_id()
    store.create_job(first, owner, "d", "s", quota=quota)
    store.create_job(second, owner, "d", "s", quota=quota)
    with pytest.raises(QuotaExceededError, match="2 jobs queued or running"):
        store.create_job(new_id(), owner, "d", "s", quota=quota)
    store.mark_failed(first, "ended")
    store.create_job(new_id(), owner, "d", "s", quota=quota)  # a place came free
    store.mark_failed(second, "ended")
    with pytest.raises(QuotaExceededError, match="3 uploads per 60 seconds"):
        store.create_job(new_id(), owner, "d", "s", quota=quota)
    assert len(store.list_jobs(owner_id=owner)) == 3  # nothing written when refused
