"""scene3d.settings: every knob read once from its variable; children get exactly the
settings they need, secrets only when named."""

from __future__ import annotations

import ast
import inspect
import stat
from dataclasses import fields
from itertools import pairwise

import pytest

from scene3d import settings as settings_module
from scene3d.settings import Settings


def test_every_setting_with_a_variable_is_read_from_it(tmp_path) -> None:
    environ = {
        "SCENE3D_HOME": str(tmp_path / "home"),
        "SCENE3D_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/test",
        "SCENE3D_JWT_SECRET": "s" * 40,
        "SCENE3D_LOGIN_MAX_FAILURES": "7",
        "SCENE3D_MAX_CONCURRENT_JOBS": "3",
        "SCENE3D_AIRFLOW_URL": "http://127.0.0.1:8080",
        "SCENE3D_RAY_ADDRESS": "127.0.0.1:6380",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "SCENE3D_API_PORT": "8123",
    }
    settings = Settings.from_env(environ=environ)
    assert settings.home == tmp_path / "home"
    assert settings.database_url == environ["SCENE3D_DATABASE_URL"]
    assert settings.jwt_secret == "s" * 40
    assert (settings.login_max_failures, settings.max_concurrent_jobs) == (7, 3)
    assert settings.airflow_url == "http://127.0.0.1:8080"
    assert settings.ray_address == "127.0.0.1:6380"
    assert settings.mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert settings.api_port == 8123


def test_defaults_are_embedded_and_the_signing_key_is_generated_private(tmp_path) -> None:
    settings = Settings.from_env(environ={"SCENE3D_HOME": str(tmp_path / "h")})
    assert settings.database_url == f"sqlite:///{tmp_path / 'h' / 'scene3d.db'}"
    assert (settings.airflow_url, settings.ray_address, settings.mlflow_tracking_uri) == ("",) * 3
    assert settings.jwt_secret == ""  # a process that signs tokens loads it: load_secrets
    settings = settings.load_secrets(environ={})
    key = tmp_path / "h" / "secrets" / "jwt_secret"
    assert len(settings.jwt_secret) >= 32 and key.read_text().strip() == settings.jwt_secret
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = Settings.from_env(environ={"SCENE3D_HOME": str(tmp_path / "h")}).load_secrets({})
    assert again.jwt_secret == settings.jwt_secret


def test_a_malformed_number_names_its_variable(tmp_path) -> None:
    with pytest.raises(ValueError, match="SCENE3D_GPU_SLOTS must be a whole number"):
        Settings.from_env(environ={"SCENE3D_HOME": str(tmp_path), "SCENE3D_GPU_SLOTS": "two"})
    with pytest.raises(ValueError, match="max_concurrent_jobs must be at least 1"):
        Settings.from_env(
            environ={"SCENE3D_HOME": str(tmp_path), "SCENE3D_MAX_CONCURRENT_JOBS": "0"}
        )


def test_every_field_is_documented_and_named_once() -> None:
    names = [f.metadata["env"] for f in fields(Settings) if "env" in f.metadata]
    assert len(names) == len(set(names))
    body = next(
        node
        for node in ast.parse(inspect.getsource(settings_module)).body
        if isinstance(node, ast.ClassDef) and node.name == "Settings"
    ).body
    documented = {
        stmt.target.id
        for stmt, after in pairwise(body)
        if isinstance(stmt, ast.AnnAssign)
        and isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
    }
    assert documented == {f.name for f in fields(Settings)}


def test_child_env_carries_settings_but_no_secret(tmp_path) -> None:
    settings = Settings(
        home=tmp_path,
        database_url="sqlite:///x.db",
        jwt_secret="j" * 40,
        admin_password="shown-once",
        airflow_url="http://127.0.0.1:8080",
    )
    base = {"PATH": "/usr/bin", "SCENE3D_ADMIN_PASSWORD": "from-the-shell", "SCENE3D_PRESET": "x"}
    env = settings.child_env(base)
    assert env["PATH"] == "/usr/bin"
    assert env["SCENE3D_HOME"] == str(tmp_path)
    assert env["SCENE3D_AIRFLOW_URL"] == "http://127.0.0.1:8080"
    assert env["SCENE3D_PRESET"] == "sift"  # the settings' value, not a stray one
    assert "SCENE3D_JWT_SECRET" not in env and "SCENE3D_ADMIN_PASSWORD" not in env


def test_a_process_reads_its_secrets_itself(tmp_path) -> None:
    bare = Settings.from_env(environ={"SCENE3D_HOME": str(tmp_path)})
    assert bare.jwt_secret == "" and not (tmp_path / "secrets").exists()
    generated = bare.load_secrets(environ={})
    assert generated.jwt_secret == (tmp_path / "secrets" / "jwt_secret").read_text().strip()
    given = bare.load_secrets(
        environ={"SCENE3D_JWT_SECRET": "k" * 40, "SCENE3D_AIRFLOW_PASSWORD": "af"}
    )
    assert (given.jwt_secret, given.airflow_password) == ("k" * 40, "af")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SCENE3D_ADMIN_PASSWORD", "a", "SCENE3D_ADMIN_PASSWORD is too short"),
        ("SCENE3D_JWT_SECRET", "secret", "SCENE3D_JWT_SECRET is too weak"),
    ],
)
def test_weak_secrets_are_refused_at_start(tmp_path, variable, value, message) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env(environ={"SCENE3D_HOME": str(tmp_path), variable: value})


def test_any_setting_may_come_from_a_file(tmp_path) -> None:
    """Docker secrets: ``X_FILE`` names a file holding ``X``; a missing file is an error."""
    (tmp_path / "url").write_text("postgresql+psycopg://u:p@db/jobs\n")
    (tmp_path / "key").write_text("k" * 40)
    (tmp_path / "gpus").write_text("1")
    environ = {
        "SCENE3D_HOME": str(tmp_path / "home"),
        "SCENE3D_DATABASE_URL_FILE": str(tmp_path / "url"),
        "SCENE3D_WORKER_GPUS_FILE": str(tmp_path / "gpus"),
    }
    settings = Settings.from_env(environ=environ)
    assert settings.database_url == "postgresql+psycopg://u:p@db/jobs"
    assert settings.worker_gpus == 1.0
    loaded = settings.load_secrets({"SCENE3D_JWT_SECRET_FILE": str(tmp_path / "key")})
    assert loaded.jwt_secret == "k" * 40
    assert not (settings.secrets_dir / "jwt_secret").exists()  # given, so nothing generated
    # The value itself wins over its file; children get neither form of a secret.
    both = {**environ, "SCENE3D_DATABASE_URL": "sqlite:///x.db"}
    assert Settings.from_env(environ=both).database_url == "sqlite:///x.db"
    child = settings.child_env({"SCENE3D_JWT_SECRET_FILE": str(tmp_path / "key")})
    assert "SCENE3D_JWT_SECRET_FILE" not in child
    with pytest.raises(ValueError, match=r"SCENE3D_DATABASE_URL_FILE=.* cannot be read"):
        Settings.from_env(environ={**environ, "SCENE3D_DATABASE_URL_FILE": str(tmp_path / "no")})
