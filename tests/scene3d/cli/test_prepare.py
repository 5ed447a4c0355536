"""``scene3d prepare``: the start-up of a platform whose services something else starts
(docker-compose's ray-head runs it before the Serve application)."""

from __future__ import annotations

import stat

import pytest

from scene3d.cli import main
from scene3d.store import JobStore


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SCENE3D_HOME", str(tmp_path))
    for name in (
        "SCENE3D_DATABASE_URL",
        "SCENE3D_AIRFLOW_URL",
        "SCENE3D_ADMIN_PASSWORD",
        "MLFLOW_TRACKING_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_prepare_migrates_and_creates_the_admin_once(home, capsys) -> None:
    assert main(["prepare"]) == 0
    out = capsys.readouterr().out
    secret = home / "secrets" / "admin_password"
    password = secret.read_text().strip().split(":", 1)[1]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert password not in out and "not a terminal" in out  # logs never get the password
    with JobStore(f"sqlite:///{home / 'scene3d.db'}") as store:
        assert store.count_admins() == 1
    assert main(["prepare"]) == 0  # twice: nothing new
    assert "created user" not in capsys.readouterr().out


def test_admin_password_from_a_secret_file(home, tmp_path, monkeypatch) -> None:
    (tmp_path / "pw").write_text("a-long-admin-password\n")
    monkeypatch.setenv("SCENE3D_ADMIN_PASSWORD_FILE", str(tmp_path / "pw"))
    assert main(["prepare"]) == 0
    assert not (home / "secrets" / "admin_password").exists()


def test_resume_needs_an_orchestrator(home, capsys) -> None:
    assert main(["prepare", "--resume"]) == 2
    assert "SCENE3D_AIRFLOW_URL" in capsys.readouterr().err
