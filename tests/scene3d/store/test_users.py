"""Users: create, look up, change the password hash, delete (never the last admin)."""

from __future__ import annotations

import pytest

from scene3d.store import JobStore, LastAdminError, UserExistsError
from tests.scene3d.store.support import cluster, new_id


def test_user_crud(store: JobStore) -> None:
    alice = store.create_user("alice", "h1", role="admin")
    bob = store.create_user("bob", "h2")
    assert alice.role == "admin" and alice.is_admin and bob.role == "user"
    assert store.get_user("alice") == alice and store.get_user("bob") == bob
    assert store.get_user("nobody") is None
    assert store.list_users() == [alice, bob]
    assert alice.id != bob.id
    assert store.count_admins() == 1

    assert store.set_password_hash("bob", "h3") is True
    assert store.get_user("bob").password_hash == "h3"
    assert store.set_password_hash("nobody", "h") is False

    with pytest.raises(UserExistsError):
        store.create_user("alice", "other")
    with pytest.raises(ValueError):
        store.create_user("carol", "h", role="root")
    with pytest.raises(ValueError):
        store.create_user(" carol", "h")
    with pytest.raises(ValueError):
        store.create_user("carol", "")
    with pytest.raises(ValueError):
        store.set_password_hash("bob", "")

    assert store.delete_user("bob") is True
    assert store.delete_user("bob") is False
    assert [u.username for u in store.list_users()] == ["alice"]


def test_last_admin_cannot_be_deleted(store: JobStore) -> None:
    store.create_user("root", "h", role="admin")
    with pytest.raises(LastAdminError):
        store.delete_user("root")
    store.create_user("root2", "h", role="admin")
    assert store.delete_user("root") is True
    with pytest.raises(LastAdminError):
        store.delete_user("root2")
    assert store.count_admins() == 1


def test_deleting_a_user_cascades_to_jobs_and_clusters(store: JobStore) -> None:
    store.create_user("admin", "h", role="admin")
    doomed = store.create_user("doomed", "h").id
    kept = store.create_user("kept", "h").id
    j1 = store.create_job(new_id(), doomed, "ds", "s")
    j2 = store.create_job(new_id(), kept, "ds", "s")
    store.replace_clusters(j1.id, [cluster(0)])
    store.replace_clusters(j2.id, [cluster(0)])

    assert store.delete_user("doomed") is True
    assert store.get_job(j1.id) is None and store.get_clusters(j1.id) == []
    assert store.get_job(j2.id) is not None and len(store.get_clusters(j2.id)) == 1
