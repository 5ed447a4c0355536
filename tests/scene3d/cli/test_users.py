"""``scene3d users``: driven through a real argparse parser against a SQLite store in tmp."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from scene3d.cli import users
from scene3d.store import JobStore


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SCENE3D_HOME", str(tmp_path))
    monkeypatch.delenv("SCENE3D_DATABASE_URL", raising=False)
    return tmp_path


@pytest.fixture
def store(home: Path) -> Iterator[JobStore]:
    """The store the CLI writes to, for checking what it did."""
    s = JobStore(f"sqlite:///{home / 'scene3d.db'}")
    s.migrate()
    yield s
    s.close()


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="scene3d")
    users.add_users(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["users", *argv])
    return args.func(args)


def prompts(monkeypatch: pytest.MonkeyPatch, *answers: str) -> None:
    """Answer getpass prompts in order; fail the test if asked more often."""
    queue = list(answers)
    monkeypatch.setattr(users.getpass, "getpass", lambda prompt="": queue.pop(0))


def test_add_list_passwd_remove(
    home: Path,
    store: JobStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run("list") == 0
    assert "no users yet" in capsys.readouterr().out

    assert run("add", "root", "--password", "correct horse", "--admin") == 0
    assert "created admin 'root'" in capsys.readouterr().out
    prompts(monkeypatch, "battery staple", "battery staple")
    assert run("add", "bob") == 0

    root, bob = store.get_user("root"), store.get_user("bob")
    assert root.role == "admin" and bob.role == "user"
    assert root.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(bob.password_hash, "battery staple")

    assert run("list") == 0
    out = capsys.readouterr().out
    assert "root" in out and "admin" in out and "bob" in out

    prompts(monkeypatch, "new secret 1", "new secret 1")
    assert run("passwd", "bob") == 0
    assert PasswordHasher().verify(store.get_user("bob").password_hash, "new secret 1")
    assert run("passwd", "root", "--password", "another one") == 0
    assert PasswordHasher().verify(store.get_user("root").password_hash, "another one")

    job = store.create_job("0f8fad5b-d9cb-469f-a165-70867728950e", bob.id, "ds", "s")
    job_dir = home / "jobs" / job.id
    job_dir.mkdir(parents=True)
    assert run("remove", "bob") == 0
    assert "removed user 'bob' and 1 job(s)" in capsys.readouterr().out
    assert store.get_user("bob") is None and store.get_job(job.id) is None
    assert not job_dir.exists()


def test_last_admin_is_protected(store: JobStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("add", "root", "--password", "long enough", "--admin") == 0
    assert run("remove", "root") == 2
    assert "last administrator" in capsys.readouterr().err
    assert store.get_user("root") is not None

    assert run("add", "root2", "--password", "long enough", "--admin") == 0
    assert run("remove", "root") == 0
    assert [u.username for u in store.list_users()] == ["root2"]


def test_refusals_change_nothing(
    store: JobStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("add", "alice", "--password", "short") == 2
    assert "at least 8 characters" in capsys.readouterr().err
    assert run("add", "alice", "--password", "") == 2
    prompts(monkeypatch, "first password", "second password")
    assert run("add", "alice") == 2
    assert "differ" in capsys.readouterr().err
    assert store.list_users() == []

    assert run("add", "alice", "--password", "long enough") == 0
    before = store.get_user("alice")
    assert run("add", "alice", "--password", "long enough") == 2
    assert "already exists" in capsys.readouterr().err
    assert run("passwd", "alice", "--password", "tiny") == 2
    assert run("passwd", "nobody", "--password", "long enough") == 2
    assert run("remove", "nobody") == 2
    assert "no user 'nobody'" in capsys.readouterr().err
    assert store.get_user("alice") == before


def test_unusable_store_is_a_clear_failure(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCENE3D_DATABASE_URL", "postgresql+psycopg://u:secret@127.0.0.1:1/none")
    assert run("list") == 1
    err = capsys.readouterr().err
    assert "cannot use the job store" in err and "secret" not in err


def test_role_changes_and_the_last_admin_keeps_the_role(
    store: JobStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("add", "root", "--password", "correct horse", "--admin") == 0
    assert run("add", "bob", "--password", "battery staple") == 0
    stamp = store.get_user("bob").token_stamp
    assert run("role", "bob", "admin") == 0
    bob = store.get_user("bob")
    assert bob.role == "admin" and bob.token_stamp != stamp  # older tokens end
    assert run("role", "bob", "user") == 0
    assert run("role", "root", "user") == 2
    assert "last administrator" in capsys.readouterr().err
    assert store.get_user("root").role == "admin"
    assert run("role", "nobody", "admin") == 2
