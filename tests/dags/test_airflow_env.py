"""scene3d.airflow: the environment every Airflow process of the platform gets."""

from __future__ import annotations

import base64
import json
import stat
import sys
from dataclasses import replace
from pathlib import Path

from scene3d.airflow import (
    DAGS_FOLDER,
    REPO_ROOT,
    airflow_commands,
    airflow_env,
    airflow_password,
    passwords_file,
)
from tests.dags.conftest import isolated_settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_env_configures_an_embedded_airflow(tmp_path) -> None:
    settings = replace(isolated_settings(tmp_path / "home"), airflow_port=8123)
    env = airflow_env(settings, base_env={"PATH": "/usr/bin", "PYTHONPATH": "/x"})
    home = settings.home / "airflow"
    assert env["AIRFLOW_HOME"] == str(home)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(DAGS_FOLDER)
    assert (DAGS_FOLDER / "reconstruction_dag.py").is_file()
    assert not (DAGS_FOLDER / "__init__.py").exists()
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home / 'airflow.db'}"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "2"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == f"{settings.airflow_user}:admin"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "8123"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8123/execution/"
    assert env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] == str(settings.home / "logs" / "airflow")
    assert env["SCENE3D_HOME"] == str(settings.home)
    assert env["SCENE3D_DATABASE_URL"] == settings.database_url
    assert env["PYTHONPATH"].split(":") == [str(REPO_ROOT), "/x"]
    assert env["PATH"] == "/usr/bin"
    assert "MLFLOW_TRACKING_URI" not in env
    assert "SCENE3D_JWT_SECRET" not in env  # the API's signing key: no Airflow process needs it
    assert len(base64.urlsafe_b64decode(env["AIRFLOW__CORE__FERNET_KEY"])) == 32


def test_secrets_are_generated_once_private_and_shared(tmp_path) -> None:
    settings = isolated_settings(tmp_path / "home")
    first = airflow_env(settings, base_env={})
    second = airflow_env(
        replace(settings, airflow_port=9090), base_env={"AIRFLOW__API_AUTH__JWT_SECRET": "stray"}
    )
    for key in (
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
    ):
        assert first[key] == second[key] and len(first[key]) >= 32, key
    secrets = settings.secrets_dir
    assert _mode(secrets) == 0o700
    for path in secrets.iterdir():
        assert _mode(path) == 0o600, path.name

    password = airflow_password(settings)
    assert len(password) >= 24
    assert password == airflow_password(settings)
    path = Path(first["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    assert path == passwords_file(settings)
    assert json.loads(path.read_text()) == {settings.airflow_user: password}
    assert _mode(path) == 0o600


def test_settings_reach_the_tasks_and_stray_ones_do_not(tmp_path) -> None:
    settings = replace(
        isolated_settings(tmp_path / "home"),
        mlflow_tracking_uri="http://127.0.0.1:5000",
        max_concurrent_jobs=2,
        airflow_database_url="postgresql://airflow@db/airflow",
    )
    stray = {"SCENE3D_MAX_CONCURRENT_JOBS": "7", "SCENE3D_ADMIN_PASSWORD": "from-the-shell"}
    env = airflow_env(settings, base_env=stray)
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert env["SCENE3D_MAX_CONCURRENT_JOBS"] == "2"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql://airflow@db/airflow"
    assert "SCENE3D_ADMIN_PASSWORD" not in env
    assert "SCENE3D_AIRFLOW_DATABASE_URL" not in env  # given to Airflow as its own setting


def test_a_password_the_operator_sets_wins_over_the_stored_one(tmp_path) -> None:
    settings = isolated_settings(tmp_path / "home")
    generated = airflow_password(settings)
    chosen = replace(settings, airflow_password="chosen-by-the-operator")
    assert airflow_password(chosen) == "chosen-by-the-operator"
    assert json.loads(passwords_file(settings).read_text()) == {
        settings.airflow_user: "chosen-by-the-operator"
    }
    assert airflow_password(settings) == "chosen-by-the-operator" != generated


def test_commands_start_each_component_separately() -> None:
    commands = airflow_commands(8123)
    assert list(commands) == ["migrate", "api-server", "scheduler", "dag-processor"]
    airflow = commands["migrate"][:-2]
    assert airflow[0] == str(Path(sys.executable).with_name("airflow")) or airflow == [
        sys.executable,
        "-m",
        "airflow",
    ]
    assert commands["migrate"][-2:] == ["db", "migrate"]
    assert commands["api-server"][len(airflow) :] == [
        "api-server",
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
    ]
    assert commands["scheduler"][len(airflow)] == "scheduler"
    assert commands["dag-processor"][len(airflow) :] == ["dag-processor"]


def test_postgresql_metadata_database_serves_the_async_engine_too(tmp_path) -> None:
    url = "postgresql+psycopg://airflow:pw@127.0.0.1/airflow"
    env = airflow_env(replace(isolated_settings(tmp_path), airflow_database_url=url), {})
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == url
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == url  # no asyncpg needed
    embedded = airflow_env(isolated_settings(tmp_path), {})
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC" not in embedded  # aiosqlite derived
