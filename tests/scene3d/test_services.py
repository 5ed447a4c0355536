"""Health checks count a service healthy only on a 2xx answer; the supervisor signals
only processes it can prove it started."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from scene3d.services import Supervisor, _get_ok


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = int(self.path.strip("/"))
        self.send_response(code)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


CASES = [(200, True), (204, True), (404, False), (503, False)]


@pytest.mark.parametrize(("code", "healthy"), CASES)
def test_only_success_is_healthy(server: str, code: int, healthy: bool) -> None:
    # 404 is what Ray Serve's proxy answers before the application's routes exist.
    assert _get_ok(f"{server}/{code}") is healthy


def test_nothing_listening_is_not_healthy() -> None:
    assert _get_ok("http://127.0.0.1:9/health") is False


def test_a_service_that_dies_at_start_up_reports_its_log(tmp_path) -> None:
    """The error names the cause (the log's last lines), not just where the log lies."""
    import sys

    from scene3d.services import Service, Supervisor

    supervisor = Supervisor(tmp_path)
    lines = "".join(f"print('line {i}');" for i in range(40))
    crash = f"{lines} raise SystemExit('the [bold]real[/bold] cause')"
    service = Service(
        "crasher",
        [sys.executable, "-u", "-c", crash],
        env={},
        healthy=lambda: False,
        start_timeout=30,
    )
    supervisor.start(service)
    with pytest.raises(RuntimeError) as failure:
        supervisor.wait_healthy(service)
    message = str(failure.value)
    assert "crasher exited during start-up; see logs/crasher.log" in message
    assert "the [bold]real[/bold] cause" in message
    assert "line 39" in message and "line 5\n" not in message  # only the tail
    supervisor.stop_all()


def _stranger() -> subprocess.Popen:
    """A process scene3d did not start, in a session of its own."""
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


@pytest.mark.parametrize("entry", ["no start time", "other start time"])
def test_a_process_that_cannot_be_proven_ours_is_never_signalled(tmp_path, entry) -> None:
    stranger = _stranger()
    try:
        record = {"pid": stranger.pid, "stop_timeout": 1.0}
        if entry == "other start time":
            record["create_time"] = psutil.Process(stranger.pid).create_time() - 3600
        supervisor = Supervisor(tmp_path)
        supervisor.run_dir.mkdir(parents=True)
        state = {"run_id": "r1", "services": {"api": record}}
        supervisor.state_file.write_text(json.dumps(state))
        assert supervisor.stop_all() == []
        assert stranger.poll() is None, "an unproven entry killed a process that is not ours"
        assert [s["alive"] for s in Supervisor(tmp_path).status()] == []  # state removed
    finally:
        stranger.kill()
        stranger.wait()
