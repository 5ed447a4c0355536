"""Heavy work never starves the rest: drift checks beyond their slots answer 503 with
Retry-After, a slow Airflow holds no request threads, and /health and /auth/token keep
answering throughout (real uvicorn, concurrent clients)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from api.routes import drift as drift_routes
from tests.api.conftest import PASSWORD, Api, FakeOrchestrator, image_zip, live_server

CONCURRENT = 45


def _probe_while(base: str, busy: threading.Event) -> list[float]:
    """Seconds /health and /auth/token take while ``busy`` is set."""
    times = []
    with httpx.Client(base_url=base, timeout=30) as client:
        while busy.is_set():
            for call in (
                lambda: client.get("/health"),
                lambda: client.post("/auth/token", json={"username": "bob", "password": PASSWORD}),
            ):
                start = time.monotonic()
                assert call().status_code == 200
                times.append(time.monotonic() - start)
            time.sleep(0.05)
    return times


def test_many_drift_checks_at_once_are_bounded(api: Api, monkeypatch) -> None:
    release = threading.Event()

    def slow_check(*args):
        release.wait(30)
        return {"drift_detected": False, "severity": "low", "checks": {}, "n_images": 3}

    monkeypatch.setattr(drift_routes, "drift_for_zip", slow_check)
    body = image_zip(3)
    with live_server(api, max_heavy_requests=2, user_uploads_per_minute=0) as base:
        headers = {"Authorization": f"Bearer {api.token()}"}

        def check() -> httpx.Response:
            return httpx.post(
                f"{base}/drift", headers=headers, timeout=60,
                files={"file": ("p.zip", body, "application/zip")},
            )  # fmt: skip

        busy = threading.Event()
        busy.set()
        with ThreadPoolExecutor(CONCURRENT + 1) as pool:
            probes = pool.submit(_probe_while, base, busy)
            checks = [pool.submit(check) for _ in range(CONCURRENT)]
            deadline = time.monotonic() + 30
            # All but the two running checks answer at once.
            while sum(f.done() for f in checks) < CONCURRENT - 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)  # health and login asked while both slots are still taken
            busy.clear()
            release.set()
            answers = [f.result() for f in checks]
            latencies = probes.result()
    codes = sorted(r.status_code for r in answers)
    assert codes.count(503) >= CONCURRENT - 2, codes
    busy_answer = next(r for r in answers if r.status_code == 503)
    assert busy_answer.headers["retry-after"] and "busy" in busy_answer.json()["detail"]
    assert latencies and max(latencies) < 2.0, f"health/login took up to {max(latencies):.1f} s"


class SlowAirflow(FakeOrchestrator):
    def trigger_retrain(self) -> str:
        time.sleep(1.0)
        return super().trigger_retrain()


def test_a_slow_airflow_holds_no_request_threads(api: Api) -> None:
    from scene3d.security import hash_password

    api.store.create_user("root", hash_password(PASSWORD), role="admin")
    with live_server(api, orchestrator=SlowAirflow()) as base:
        admin = {"Authorization": f"Bearer {api.token('root')}"}
        busy = threading.Event()
        busy.set()
        with ThreadPoolExecutor(CONCURRENT + 1) as pool:
            probes = pool.submit(_probe_while, base, busy)
            calls = [
                pool.submit(httpx.post, f"{base}/drift/trigger-retrain", headers=admin, timeout=120)
                for _ in range(CONCURRENT)
            ]
            codes = [f.result().status_code for f in calls]
            busy.clear()
            latencies = probes.result()
    assert codes == [200] * CONCURRENT
    assert latencies and max(latencies) < 2.0, f"health/login took up to {max(latencies):.1f} s"
