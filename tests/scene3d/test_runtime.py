"""scene3d.runtime: start-up done once per platform (store, first admin, orchestrator)."""

from __future__ import annotations

import stat
import threading
import uuid

import pytest

from scene3d import runtime
from scene3d.airflow_client import AirflowOrchestrator
from scene3d.orchestrator import LocalOrchestrator
from scene3d.security import verify_password
from scene3d.settings import Settings
from scene3d.store import JobStore


def _settings(tmp_path, **values) -> Settings:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return Settings(home=home, database_url=f"sqlite:///{home / 's.db'}", **values)


def test_prepare_migrates_and_creates_one_admin_with_a_generated_password(tmp_path) -> None:
    settings = _settings(tmp_path)
    generated = runtime.prepare(settings)
    assert generated and len(generated) >= 20
    path = settings.secrets_dir / "admin_password"
    assert path.read_text() == f"admin:{generated}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert runtime.prepare(settings) is None  # once: a second start creates nobody
    with JobStore(settings.database_url) as store:
        admin = store.get_user("admin")
        assert admin and admin.role == "admin"
        assert verify_password(admin.password_hash, generated)


def test_the_admin_password_can_be_chosen(tmp_path) -> None:
    settings = _settings(tmp_path, admin_user="root", admin_password="chosen-password-123")
    assert runtime.prepare(settings) is None
    assert not (settings.secrets_dir / "admin_password").exists()
    with JobStore(settings.database_url) as store:
        assert verify_password(store.get_user("root").password_hash, "chosen-password-123")


def test_orchestrator_is_airflow_only_when_the_settings_name_it(tmp_path) -> None:
    settings = _settings(tmp_path)
    runtime.prepare(settings)
    with JobStore(settings.database_url) as store:
        assert isinstance(runtime.orchestrator_for(settings, store), LocalOrchestrator)
        airflow = _settings(tmp_path, airflow_url="http://127.0.0.1:9")
        client = runtime.orchestrator_for(airflow, store)
        assert isinstance(client, AirflowOrchestrator)
        client.close()


def test_unfinished_jobs_are_resumed_and_finished_ones_left_alone(tmp_path) -> None:
    settings = _settings(tmp_path)
    runtime.prepare(settings)
    ran: list[str] = []
    done = threading.Event()

    def run(job_id: str) -> None:
        ran.append(job_id)
        if len(ran) == 2:
            done.set()

    with JobStore(settings.database_url) as store:
        owner = store.get_user("admin")
        queued, running, ended = (str(uuid.uuid4()) for _ in range(3))
        for job_id in (queued, running, ended):
            store.create_job(job_id, owner.id, "d", "s")
        store.update_progress(running, "matching", 30, "")
        store.mark_failed(ended, "boom")
        local = LocalOrchestrator(run)
        assert sorted(runtime.resume_unfinished(local, store)) == sorted([queued, running])
        assert done.wait(10)
        local.join(10)
    assert sorted(ran) == sorted([queued, running])


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_start_makes_an_open_home_owner_only(tmp_path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'scene3d.db'}")
    runtime.prepare(settings)
    (home / "jobs").mkdir(exist_ok=True)
    for path, mode in [
        (home, 0o755),
        (home / "scene3d.db", 0o644),
        (home / "jobs", 0o755),
        (home / "secrets", 0o755),
        (home / "secrets" / "admin_password", 0o644),
    ]:
        path.chmod(mode)  # as an older version, or another tool, left them
    runtime.prepare(settings)
    assert _mode(home) == 0o700 and _mode(home / "jobs") == 0o700
    assert _mode(home / "scene3d.db") == 0o600
    assert _mode(home / "secrets") == 0o700 and _mode(home / "secrets" / "admin_password") == 0o600


def test_a_fresh_sqlite_store_and_its_wal_are_owner_only(tmp_path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'scene3d.db'}")
    runtime.prepare(settings)
    with JobStore(settings.database_url) as store:
        store.create_user("alice", "h")  # a write: the WAL file exists now
        wal = home / "scene3d.db-wal"
        assert wal.exists() and _mode(wal) == 0o600
    assert _mode(home / "scene3d.db") == 0o600


def test_a_new_admin_password_over_an_open_file_is_owner_only(tmp_path) -> None:
    home = tmp_path / "home"
    secret = home / "secrets" / "admin_password"
    secret.parent.mkdir(parents=True)
    secret.write_text("stale\n")
    secret.chmod(0o644)
    runtime.prepare(Settings(home=home, database_url=f"sqlite:///{home / 'scene3d.db'}"))
    assert _mode(secret) == 0o600 and secret.read_text() != "stale\n"


def test_a_failed_start_never_loses_the_generated_password(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'scene3d.db'}")
    secret = home / "secrets" / "admin_password"

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runtime.os, "fsync", disk_full)
    with pytest.raises(OSError):
        runtime.prepare(settings)
    with JobStore(settings.database_url) as store:
        assert store.count_admins() == 0  # no admin without its password on file
    assert not secret.exists() and list(secret.parent.iterdir()) == []
    monkeypatch.undo()
    generated = runtime.prepare(settings)  # the next start tries again
    assert generated and secret.read_text() == f"admin:{generated}\n"


def test_a_state_folder_that_cannot_be_tightened_is_refused_clearly(tmp_path, monkeypatch):
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'scene3d.db'}")

    def not_ours(self, mode):
        raise PermissionError(1, "Operation not permitted", str(self))

    monkeypatch.setattr(runtime.Path, "chmod", not_ours)
    with pytest.raises(RuntimeError, match="readable by its owner only"):
        runtime.prepare(settings)


def test_start_up_removes_what_a_crash_left_behind(tmp_path) -> None:
    settings = _settings(tmp_path)
    runtime.prepare(settings)
    with JobStore(settings.database_url) as store:
        owner = store.create_user("alice", "h")
        kept = str(uuid.uuid4())
        store.create_job(kept, owner.id, "d", "s")
    spool = settings.jobs_dir / ".incoming"
    spool.mkdir(parents=True)
    (spool / "upload-abc.part").write_bytes(b"half an upload")
    orphan = settings.jobs_dir / str(uuid.uuid4())  # stored, but its row was never written
    orphan.mkdir()
    (orphan / "upload.zip").write_bytes(b"PK")
    (settings.jobs_dir / kept).mkdir()
    (settings.jobs_dir / "notes").mkdir()  # not a job folder: not ours to judge
    runtime.prepare(settings)
    assert list(spool.iterdir()) == []
    assert not orphan.exists()
    assert (settings.jobs_dir / kept).is_dir() and (settings.jobs_dir / "notes").is_dir()
