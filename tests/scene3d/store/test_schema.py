"""``migrate()``: idempotent, matches the models, stays in its schema, safe across processes."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from scene3d.store import JobStore, alembic_config
from scene3d.store.models import Base
from scene3d.store.schema import MIGRATIONS_DIR
from tests.scene3d.store.support import PgServer


def test_migrate_twice_is_harmless_and_data_survives(store_url: str) -> None:
    with JobStore(store_url) as s:
        s.migrate()
        s.create_user("alice", "h")
        s.migrate()
        assert [u.username for u in s.list_users()] == ["alice"]
        with s._engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                ("0004",)
            ]


def test_migrations_create_exactly_the_models(store: JobStore) -> None:
    with store._engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_postgres_tables_live_in_the_test_schema(pg_server: PgServer) -> None:
    name, url = pg_server.new_schema()
    try:
        with JobStore(url) as s:
            s.migrate()
            with s._engine.connect() as conn:
                assert conn.execute(text("SELECT current_schema()")).scalar_one() == name
                holders = conn.execute(
                    text(
                        "SELECT DISTINCT table_schema FROM information_schema.tables"
                        " WHERE table_name IN ('users', 'jobs', 'clusters', 'alembic_version')"
                        " AND table_schema IN (:name, 'public')"
                    ),
                    {"name": name},
                ).scalars()
                assert list(holders) == [name]
    finally:
        pg_server.drop_schema(name)


def test_two_processes_migrating_together(store_url: str) -> None:
    code = "import sys; from scene3d.store import JobStore; JobStore(sys.argv[1]).migrate()"
    procs = [subprocess.Popen([sys.executable, "-c", code, store_url]) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    with JobStore(store_url) as s:
        s.migrate()
        assert s.list_users() == []


def test_alembic_config_points_at_the_package_revisions() -> None:
    # A password with "%" must survive configparser interpolation.
    cfg = alembic_config("postgresql+psycopg://u:p%25w@h/db")
    assert cfg.get_main_option("script_location") == str(MIGRATIONS_DIR)
    assert cfg.get_main_option("sqlalchemy.url") == "postgresql+psycopg://u:p%25w@h/db"
    assert "connection" not in cfg.attributes


def test_users_of_a_first_revision_store_get_a_token_stamp_each(tmp_path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with JobStore(url) as s:
        with s._write() as conn:
            command.upgrade(alembic_config(s.url, conn), "0001")
            for name in ("alice", "bob"):
                conn.execute(
                    text(
                        "INSERT INTO users (username, password_hash, role, created_at)"
                        " VALUES (:n, 'h', 'user', 0)"
                    ),
                    {"n": name},
                )
        s.migrate()
        stamps = [u.token_stamp for u in s.list_users()]
    assert len(set(stamps)) == 2 and all(len(stamp) == 32 for stamp in stamps)


def test_jobs_of_a_second_revision_store_name_the_preset_they_ran_with(tmp_path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with JobStore(url) as s:
        with s._write() as conn:
            command.upgrade(alembic_config(s.url, conn), "0002")
        user = s.create_user("alice", "h")
        with s._write() as conn:
            for job_id, preset in (("a", "fast"), ("b", None)):
                conn.execute(
                    text(
                        "INSERT INTO jobs (id, owner_id, dataset_name, scene_name, stage,"
                        " progress, message, created_at, preset)"
                        " VALUES (:id, :owner, 'd', 's', 'success', 100, '', 0, :preset)"
                    ),
                    {"id": job_id, "owner": user.id, "preset": preset},
                )
        s.migrate()
        with s._engine.connect() as conn:
            rows = conn.execute(text("SELECT id, model_name FROM jobs ORDER BY id")).all()
    assert rows == [("a", "preset:fast"), ("b", None)]


def test_a_third_revision_store_accepts_unknown_drift_and_keeps_its_jobs(store_url: str) -> None:
    from alembic import command

    with JobStore(store_url) as s:
        s.migrate()
        with s._write() as conn:
            command.downgrade(alembic_config(s.url, conn), "0003")
        user = s.create_user("carol", "h")
        job = s.create_job(str(uuid.uuid4()), user.id, "d", "s")
        with pytest.raises(IntegrityError), s._write() as conn:
            conn.execute(text("UPDATE jobs SET drift_severity = 'unknown'"))
        s.migrate()
        assert s.set_drift(job.id, False, "unknown", {"severity": "unknown"})
        assert s.get_job(job.id).drift_severity == "unknown"
        with pytest.raises(IntegrityError), s._write() as conn:
            conn.execute(text("UPDATE jobs SET drift_severity = 'bogus'"))
