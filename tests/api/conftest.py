"""API fixtures: the real app factory over a real SQLite store in a temporary home."""

from __future__ import annotations

import io
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.main import create_app
from scene3d import runtime
from scene3d.orchestrator import OrchestratorUnavailable
from scene3d.platform import proxy_header_options
from scene3d.security import hash_password
from scene3d.served import ServedModel
from scene3d.settings import Settings
from scene3d.store import JobStore
from scene3d.worker import ModelNotReady, WorkerStatus

PASSWORD = "correct-horse-battery"


@dataclass
class FakeOrchestrator:
    """Records what the API asked for; ``down`` simulates an unreachable Airflow."""

    down: bool = False
    triggered: list[str] = field(default_factory=list)
    retrains: int = 0

    def trigger_reconstruction(self, job_id: str) -> None:
        if self.down:
            raise OrchestratorUnavailable("connection refused")
        self.triggered.append(job_id)

    def trigger_retrain(self) -> str:
        if self.down:
            raise OrchestratorUnavailable("connection refused")
        self.retrains += 1
        return f"manual__{self.retrains}"


@dataclass
class FakeWorker:
    """Serves ``model`` (the default preset) once ``ready``."""

    ready: bool = True
    model: ServedModel = field(default_factory=lambda: ServedModel.from_preset("sift"))

    def status(self) -> WorkerStatus:
        if self.ready:
            return WorkerStatus(True, "cpu (2 cores)", "", self.model.name, self.model.version)
        return WorkerStatus(False, "unknown", "model worker is still loading the model")

    def served(self) -> ServedModel:
        if not self.ready:
            raise ModelNotReady("model worker is still loading the model")
        return self.model


def make_settings(home: Path, **overrides) -> Settings:
    values = {
        "home": home,
        "database_url": f"sqlite:///{home / 'scene3d.db'}",
        "jwt_secret": "test-secret-" + "x" * 40,
        "max_upload_bytes": 20 * 1024 * 1024,
        "login_max_failures": 5,
        "admin_password": "admin-" + PASSWORD,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    client: TestClient
    store: JobStore
    settings: Settings
    orchestrator: FakeOrchestrator
    worker: FakeWorker

    def token(self, username: str = "alice", password: str = PASSWORD) -> str:
        response = self.client.post(
            "/auth/token", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def auth(self, username: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def upload(self, data: bytes, username: str = "alice", **fields: str):
        return self.client.post(
            "/upload",
            headers=self.auth(username),
            files={"file": ("photos.zip", data, "application/zip")},
            data=fields,
        )


@pytest.fixture(autouse=True)
def no_platform_services(monkeypatch) -> None:
    """API tests use their own fakes or local threads, never an ambient Airflow/MLflow/Ray."""
    for name in (
        "SCENE3D_AIRFLOW_URL",
        "MLFLOW_TRACKING_URI",
        "SCENE3D_RAY_ADDRESS",
        "SCENE3D_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def api(tmp_path) -> Iterator[Api]:
    settings = make_settings(tmp_path / "home")
    settings.home.mkdir()
    runtime.prepare(settings)
    store = JobStore(settings.database_url)
    store.create_user("alice", hash_password(PASSWORD), role="user")
    store.create_user("bob", hash_password(PASSWORD), role="user")
    orchestrator, worker = FakeOrchestrator(), FakeWorker()
    app = create_app(settings, store=store, orchestrator=orchestrator, worker=worker)
    with TestClient(app) as client:
        yield Api(client, store, settings, orchestrator, worker)


def image_zip(n: int = 3, size: tuple[int, int] = (64, 48)) -> bytes:
    """A small valid ZIP of PNG images."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(n):
            pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            img = io.BytesIO()
            Image.fromarray(pixels).save(img, "PNG")
            zf.writestr(f"photos/img_{i:03d}.png", img.getvalue())
    return buf.getvalue()


@contextmanager
def live_server(api: Api, orchestrator=None, **overrides) -> Iterator[str]:
    """The app of ``api`` (settings changed by ``overrides``) under a real uvicorn on
    loopback, run with the options `scene3d serve` uses; yields its base URL."""
    settings = replace(api.settings, **overrides)
    app = create_app(
        settings,
        store=api.store,
        orchestrator=orchestrator or FakeOrchestrator(),
        worker=FakeWorker(),
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="error", **proxy_header_options(settings)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
