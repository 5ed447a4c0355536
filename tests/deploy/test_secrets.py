"""`scene3d deploy secrets` and docker/entrypoint.sh: every secret generated, stored 0600,
never overwritten by accident, and refused at container start when missing or a placeholder."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values

from scene3d.cli import main
from scene3d.deploy import SECRETS, generate, write_env_file
from tests.conftest import REPO_ROOT

ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
EX_CONFIG = 78


def test_every_secret_is_generated_fresh_and_distinct():
    first, second = generate(), generate()
    assert set(first) == {s.name for s in SECRETS}
    for name in first:
        assert first[name] != second[name], name
    passwords = [v for k, v in first.items() if k.endswith(("_password", "_secret", "_key"))]
    assert len(set(passwords)) == len(passwords)
    assert all(len(v) >= 24 for v in passwords)


def test_urls_carry_the_passwords_they_are_made_of():
    values = generate()
    assert values["scene3d_database_url"] == (
        f"postgresql+psycopg://scene3d:{values['scene3d_db_password']}@postgres:5432/scene3d"
    )
    assert values["airflow_broker_url"] == f"redis://:{values['redis_password']}@redis:6379/0"
    assert f'"{values["airflow_password"]}"' in values["airflow_passwords_json"]


def test_env_file_is_private_complete_and_read_back_literally(tmp_path):
    path = tmp_path / ".env"
    values = write_env_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    parsed = dotenv_values(path)
    assert parsed == {s.env: values[s.name] for s in SECRETS}


def test_an_existing_env_file_is_kept_unless_forced(tmp_path, capsys):
    path = tmp_path / ".env"
    assert main(["deploy", "secrets", "--env-file", str(path)]) == 0
    before = path.read_text()
    assert main(["deploy", "secrets", "--env-file", str(path)]) == 2
    assert "exists" in capsys.readouterr().err
    assert path.read_text() == before
    path.chmod(0o644)
    assert main(["deploy", "secrets", "--env-file", str(path), "--force"]) == 0
    assert path.read_text() != before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _entrypoint(secrets_dir: Path, *command: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *(command or ("true",))],
        env={"PATH": os.environ["PATH"], "SCENE3D_SECRETS_DIR": str(secrets_dir), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def secrets_dir(tmp_path) -> Path:
    folder = tmp_path / "secrets"
    folder.mkdir()
    for name, value in generate().items():
        (folder / name).write_text(value)
    return folder


def test_generated_secrets_pass_the_entrypoint(secrets_dir):
    for _ in range(20):  # fresh values each time: none may look like a placeholder
        for name, value in generate().items():
            (secrets_dir / name).write_text(value)
        result = _entrypoint(secrets_dir)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "bad, why",
    [
        ("", "empty"),
        ("short", "shorter"),
        ("please-CHANGE-ME-before-use", "placeholder"),
        ("<generate a password here>", "placeholder"),
    ],
)
def test_a_bad_secret_stops_the_container(secrets_dir, bad, why):
    (secrets_dir / "postgres_password").write_text(bad)
    result = _entrypoint(secrets_dir, "sh", "-c", "echo started")
    assert result.returncode == EX_CONFIG
    assert why in result.stderr and "scene3d deploy secrets" in result.stderr
    assert "started" not in result.stdout


def test_a_secret_compose_did_not_create_stops_the_container(secrets_dir):
    missing = secrets_dir / "airflow_broker_url"
    missing.unlink()
    result = _entrypoint(secrets_dir, AIRFLOW__CELERY__BROKER_URL__FILE=str(missing))
    assert result.returncode == EX_CONFIG and "missing" in result.stderr


def test_airflow_and_mlflow_secrets_are_handed_over_by_environment(secrets_dir):
    url = (secrets_dir / "airflow_broker_url").read_text()
    passwords = secrets_dir / "airflow_passwords_json"
    result = _entrypoint(
        secrets_dir,
        "sh",
        "-c",
        'printf "%s|%s|%s" "$AIRFLOW__CELERY__BROKER_URL" "${AIRFLOW__CELERY__BROKER_URL__FILE:-}"'
        ' "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"',
        AIRFLOW__CELERY__BROKER_URL__FILE=str(secrets_dir / "airflow_broker_url"),
        # An option whose own name ends in _FILE stays a path.
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
        PIP_CONFIG_FILE="/nonexistent/pip.conf",  # not a secret: ignored
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{url}||{passwords}"
