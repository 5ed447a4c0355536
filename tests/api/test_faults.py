"""The server's own troubles while taking an upload: a client that goes silent (408), a
full disk (507), a locked database (503). Each answer is clear and nothing is left behind."""

from __future__ import annotations

import os
import socket
import sqlite3
import tempfile
import time
from dataclasses import replace

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from api import uploads
from api.main import create_app
from tests.api.conftest import Api, FakeOrchestrator, FakeWorker, image_zip, live_server


def _leftovers(api: Api) -> list[str]:
    jobs = api.settings.jobs_dir
    spool = sorted(p.name for p in (jobs / ".incoming").glob("*"))
    folders = sorted(p.name for p in jobs.iterdir() if p.name != ".incoming")
    return spool + folders


def test_a_client_that_goes_silent_gets_408_and_its_spool_is_removed(api: Api) -> None:
    token = api.token()
    with live_server(api, upload_read_timeout_seconds=1.0) as base:
        port = int(base.rsplit(":", 1)[1])
        boundary = "b0undary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\n'
        ).encode()
        request = (
            "POST /upload HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {5 * 1024 * 1024}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(20)
            sock.sendall(request + head + b"\0" * 100_000)  # then silence
            started = time.monotonic()
            answer = sock.recv(4096)
            waited = time.monotonic() - started
        assert answer.split(b"\r\n", 1)[0].endswith(b"408 Request Timeout"), answer[:200]
        assert b"stalled" in answer and waited < 10
        assert _leftovers(api) == []


def test_a_full_disk_while_spooling_is_507_not_the_clients_fault(api: Api, monkeypatch) -> None:
    real_mkstemp = tempfile.mkstemp

    def spool_on_a_full_disk(*args, **kwargs):
        fd, path = real_mkstemp(*args, **kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), path  # every write: ENOSPC

    monkeypatch.setattr(uploads.tempfile, "mkstemp", spool_on_a_full_disk)
    response = api.upload(image_zip(3, size=(640, 480)))
    assert response.status_code == 507
    assert response.json() == {"detail": "the server is out of disk space; try again later"}
    assert response.headers["retry-after"]
    assert _leftovers(api) == [] and api.store.list_jobs() == []


def test_a_locked_database_is_503_and_leaves_no_upload_without_a_job(api: Api, monkeypatch):
    def locked(*args, **kwargs):
        raise OperationalError("INSERT INTO jobs", {}, sqlite3.OperationalError("locked"))

    monkeypatch.setattr(api.store, "create_job", locked)
    response = api.upload(image_zip(3))
    assert response.status_code == 503
    assert "job store is busy" in response.json()["detail"]
    assert "INSERT" not in response.text and response.headers["retry-after"]
    assert _leftovers(api) == []
    assert api.orchestrator.triggered == []


class AirflowWithRuns(FakeOrchestrator):
    """Knows no run of any job: every stuck job is one to trigger again."""

    def dag_run_state(self, dag_id: str, run_id: str) -> str | None:
        return None


def test_the_api_reconciles_stuck_jobs_while_it_runs(api: Api) -> None:
    owner = api.store.get_user("alice").id
    stuck = "0d1e6f5a-0000-4000-8000-00000000aaaa"
    api.store.create_job(stuck, owner, "d", "s")
    with api.store._write() as conn:  # uploaded long ago, never triggered
        conn.execute(text("UPDATE jobs SET created_at = created_at - 3600"))
    orchestrator = AirflowWithRuns()
    settings = replace(api.settings, reconcile_interval_seconds=0.2)
    app = create_app(settings, store=api.store, orchestrator=orchestrator, worker=FakeWorker())
    with TestClient(app):
        deadline = time.monotonic() + 10
        while not orchestrator.triggered and time.monotonic() < deadline:
            time.sleep(0.1)
    assert orchestrator.triggered[:1] == [stuck]


def test_a_database_error_no_retry_cures_is_a_500_not_busy(api: Api, monkeypatch) -> None:
    def missing_table(*args, **kwargs):
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: jobs"))

    monkeypatch.setattr(api.store, "create_job", missing_table)
    app = create_app(api.settings, store=api.store, orchestrator=FakeOrchestrator(),
                     worker=FakeWorker())  # fmt: skip
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/upload", headers=api.auth(),
            files={"file": ("p.zip", image_zip(3), "application/zip")},
        )  # fmt: skip
    assert response.status_code == 500 and "retry-after" not in response.headers
    assert "jobs" not in response.text and _leftovers(api) == []
