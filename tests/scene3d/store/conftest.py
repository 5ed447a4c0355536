"""Fixtures of the store tests: every store test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from ``SCENE3D_TEST_PG_URL`` (default: the local server, database
``test``); its variant is skipped, with the reason, when the server cannot be reached.
Each PostgreSQL test runs in a schema of its own, named after this session's random token
and selected through the connection's ``search_path``; the schema is dropped after the
test and any leftovers of this session at its end, so parallel runs never meet.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from scene3d.store import JobStore
from tests.scene3d.store.support import PG_URL, FakeClock, PgServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3}, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0]
        pytest.skip(f"PostgreSQL unreachable at {make_url(PG_URL)!r} ({reason})")
    server = PgServer(engine, f"scene3d_test_{uuid.uuid4().hex[:10]}_", itertools.count())
    yield server
    with engine.begin() as conn:  # whatever a failed teardown left behind
        names = conn.execute(
            text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
            {"p": server.prefix + "%"},
        ).scalars()
        for name in list(names):
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'scene3d.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name, url = server.new_schema()
    try:
        yield url
    finally:
        server.drop_schema(name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[JobStore]:
    s = JobStore(store_url, clock=clock)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def owner(store: JobStore) -> int:
    return store.create_user("owner", "hash-o").id
