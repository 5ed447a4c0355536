"""Bringing the database schema to the newest Alembic revision, safely from several processes.

The revisions live in :mod:`scene3d.store.migrations`; there is no alembic.ini, the
configuration is built here in code.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from scene3d.store.engine import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_PG_MIGRATION_LOCK = 0x5C3D_0001
"""PostgreSQL advisory-lock key that serialises concurrent ``migrate()`` calls."""

_alembic_lock = threading.Lock()
"""Alembic keeps its migration context in module globals: one upgrade per process at once."""


def alembic_config(url: str | URL, connection: Connection | None = None) -> Config:
    """An Alembic configuration built in code (no alembic.ini) for this package's revisions.

    With ``connection``, ``env.py`` runs on it inside the caller's transaction.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    rendered = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))  # configparser escape
    cfg.attributes["url"] = rendered
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


class SchemaStore(Database):
    """The ``migrate()`` part of the store."""

    def migrate(self) -> None:
        """Bring the schema to the newest revision; a no-op when it already is.

        Safe when several processes start together: the upgrade runs inside one
        transaction holding a lock (the SQLite write lock, a PostgreSQL advisory lock),
        so the second caller waits, then finds the schema current.
        """
        with _alembic_lock, self._write() as conn:
            if self.dialect == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                conn.execute(lock, {"key": _PG_MIGRATION_LOCK})
            command.upgrade(alembic_config(self.url, conn), "head")
