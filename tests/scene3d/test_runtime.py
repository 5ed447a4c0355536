"""scene3d.runtime: start-up done once per platform (store, first admin, orchestrator)."""

from __future__ import annotations

import stat
import threading
import uuid

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
