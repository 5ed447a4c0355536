"""The connection layer every part of the store shares: one SQLAlchemy engine per store.

* SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
  ``BEGIN IMMEDIATE`` so writers queue on the file lock instead of failing half-way;
* PostgreSQL connections are checked before use (``pool_pre_ping``), so a restarted
  server costs one reconnect, not a failed request.

:class:`Database` is the base of the per-concern parts of :class:`scene3d.store.JobStore`:
it owns the engine, the clock and the ``_read``/``_write`` connection helpers they use.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Self

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from scene3d.store.values import dumps_json

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's write lock before giving up."""

_WRITE = "scene3d_write"
"""Connection execution option: on SQLite, start the transaction with BEGIN IMMEDIATE."""


def _enable_wal(cursor: Any) -> None:
    """Switch a new database file to WAL; a no-op once it is (the mode is stored in the file).

    The switch needs an exclusive lock, and SQLite answers SQLITE_BUSY at once, without
    calling the busy handler, while another process is switching the same fresh file;
    so retry until the busy timeout instead of failing the connect.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def sqlite_engine(url: URL) -> Engine:
    """An engine for a SQLite ``url`` set up for several processes writing one file."""
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        # The file holds password hashes: created owner-only before SQLite opens it (SQLite
        # gives its WAL and shared-memory files the database file's mode).
        with suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        json_serializer=dumps_json,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module; _on_begin emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(cursor)  # readers never block the writer
        cursor.execute("PRAGMA foreign_keys = ON")  # off by default: ON DELETE CASCADE needs it
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads first and writes later can fail at once with
        # SQLITE_BUSY (busy timeout or not); IMMEDIATE takes the write lock up front.
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """One engine for ``url`` (connected lazily), a clock, and connection helpers.

    ``url`` is ``sqlite:///path/to/file.db`` (the parent folder is created) or
    ``postgresql+psycopg://user@host/db``; libpq parameters go in the query string, e.g.
    ``?options=-csearch_path%3Dmyschema``. In-memory SQLite (``sqlite://``) gives each
    thread its own database, so it only suits single-threaded use.
    """

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        """Connect lazily to ``url``; ``clock`` (epoch seconds) is replaceable for tests."""
        self.url = make_url(url)
        self._now = clock
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            self._engine = sqlite_engine(self.url)
        else:
            self._engine = create_engine(self.url, pool_pre_ping=True, json_serializer=dumps_json)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Close pooled connections (tests, shutdown); the store reconnects if used again."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A connection in a write transaction, committed when the block ends."""
        with self._engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection for reads (autobegun, rolled back on close)."""
        with self._engine.connect() as conn:
            yield conn
