"""The PostgreSQL server of this machine (127.0.0.1:5432, trust auth), for the deployment's
database tests: the three databases of docker-compose.yml made by its own init script."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

INIT_SCRIPT = REPO_ROOT / "docker" / "postgres-init.sh"
COMPONENTS = ("scene3d", "airflow", "mlflow")
PG_HOST = os.environ.get("SCENE3D_TEST_PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("SCENE3D_TEST_PGPORT", "5432"))


def require_postgres() -> None:
    if shutil.which("psql") is None:
        pytest.skip("psql not installed: the PostgreSQL tests need the client and a server")
    try:
        socket.create_connection((PG_HOST, PG_PORT), timeout=2).close()
    except OSError:
        pytest.skip(f"no PostgreSQL server at {PG_HOST}:{PG_PORT} (set SCENE3D_TEST_PGHOST)")


def psql(sql: str, user: str = "postgres", database: str = "postgres", **env: str):
    return subprocess.run(
        ["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", user, "-d", database, "-v",
         "ON_ERROR_STOP=1", "--no-psqlrc", "-tAc", sql],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )  # fmt: skip


@dataclass
class Databases:
    prefix: str
    passwords: dict[str, str]

    def url(self, component: str, scheme: str = "postgresql+psycopg") -> str:
        name = self.prefix + component
        return f"{scheme}://{name}:{self.passwords[component]}@{PG_HOST}:{PG_PORT}/{name}"


@contextmanager
def compose_databases(secrets_dir: Path) -> Iterator[Databases]:
    """Run docker/postgres-init.sh with a unique prefix; drop what it made afterwards."""
    require_postgres()
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    passwords = {c: uuid.uuid4().hex for c in COMPONENTS}
    for component, password in passwords.items():
        (secrets_dir / f"{component}_db_password").write_text(password)
    env = {
        **os.environ,
        "SCENE3D_SECRETS_DIR": str(secrets_dir),
        "SCENE3D_DB_PREFIX": prefix,
        "PGHOST": PG_HOST,
        "PGPORT": str(PG_PORT),
        "POSTGRES_USER": "postgres",
    }
    result = subprocess.run(
        ["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    try:
        assert result.returncode == 0, result.stderr
        yield Databases(prefix, passwords)
    finally:
        for component in COMPONENTS:
            name = prefix + component
            psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            psql(f'DROP ROLE IF EXISTS "{name}"')
