"""The connection layer: SQLite pragmas, the WAL switch retry, reconnecting, persistence."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from scene3d.store import JobStore
from scene3d.store import engine as engine_module
from scene3d.store.engine import SQLITE_BUSY_TIMEOUT_S, _enable_wal
from tests.scene3d.store.support import cluster, new_id


def test_reopened_store_sees_the_data(store_url: str) -> None:
    with JobStore(store_url) as first:
        first.migrate()
        user = first.create_user("alice", "h", role="admin")
        job = first.create_job(new_id(), user.id, "ds", "scene")
        first.replace_clusters(job.id, [cluster(0)])
    with JobStore(store_url) as second:
        second.migrate()
        assert second.get_user("alice") == user
        assert second.get_job(job.id) == job
        assert len(second.get_clusters(job.id)) == 1


def test_a_closed_store_reconnects_when_used_again(store: JobStore) -> None:
    store.create_user("alice", "h")
    store.close()
    assert store.get_user("alice") is not None


def test_sqlite_connections_are_set_up_for_several_processes(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "scene3d.db"
    with JobStore(f"sqlite:///{path}") as s:
        with s._engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
        assert pragma == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": int(SQLITE_BUSY_TIMEOUT_S * 1000),
        }
    assert path.parent.is_dir()  # the parent folder was created


def test_repr_hides_the_password() -> None:
    s = JobStore("postgresql+psycopg://user:secret@db.example/scene3d")
    assert "secret" not in repr(s) and repr(s).startswith("JobStore(")
    assert s.dialect == "postgresql"


class _LockedCursor:
    """A cursor whose journal-mode switch fails ``failures`` times with 'database is locked'."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.mode = "delete"

    def execute(self, sql: str) -> _LockedCursor:
        if sql == "PRAGMA journal_mode = WAL":
            if self.failures:
                self.failures -= 1
                raise sqlite3.OperationalError("database is locked")
            self.mode = "wal"
        return self

    def fetchone(self) -> tuple[str]:
        return (self.mode,)


def test_the_wal_switch_retries_while_another_process_holds_the_lock() -> None:
    cursor = _LockedCursor(failures=3)
    _enable_wal(cursor)
    assert cursor.mode == "wal"


def test_the_wal_switch_gives_up_after_the_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_S", -1.0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _enable_wal(_LockedCursor(failures=1))
