"""The façade: one ``JobStore`` with every part's methods, and the package's exports."""

from __future__ import annotations

import scene3d.store
from scene3d.store import JobStore

# What the API, the CLI, the job tasks and the DAGs call on a store.
USED_ELSEWHERE = (
    "migrate",
    "close",
    "create_user",
    "get_user",
    "list_users",
    "set_password_hash",
    "delete_user",
    "count_admins",
    "create_job",
    "get_job",
    "list_jobs",
    "update_progress",
    "mark_failed",
    "set_drift",
    "replace_clusters",
    "get_clusters",
    "count_active_jobs",
    "duration_histogram",
    "latest_success",
)


def test_job_store_offers_every_method_callers_use() -> None:
    missing = [name for name in USED_ELSEWHERE if not callable(getattr(JobStore, name, None))]
    assert missing == []


def test_every_exported_name_exists() -> None:
    assert [n for n in scene3d.store.__all__ if not hasattr(scene3d.store, n)] == []
    assert JobStore.__module__ == "scene3d.store.store"
