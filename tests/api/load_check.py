"""A bounded load check on loopback: the API under uvicorn in its own process, driven by
``concurrency`` async clients for ``requests`` calls split between /health and /status.

    .venv/bin/python -m tests.api.load_check --requests 2000 --concurrency 20
    .venv/bin/python -m tests.api.load_check --also http://127.0.0.1:8000 --password ...

Prints p50/p99 latency per endpoint and requests/s; ``--also`` drives a running platform
(Ray Serve, as `make up` runs it) with the same load in the same run, logged in as ``admin``
with ``--password``. ``tests/api/test_load.py`` runs a small version so the script keeps
working.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from scene3d import runtime
from scene3d.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, password: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "SCENE3D_HOME": str(home), "SCENE3D_ADMIN_PASSWORD": password}
    runtime.prepare(Settings.from_env(environ=env))  # what `scene3d serve` does first
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "api.main:create_standalone_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("API did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(base: str, password: str, total: int, concurrency: int) -> dict[str, list[float]]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        token = (
            await client.post("/auth/token", json={"username": "admin", "password": password})
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        timings: dict[str, list[float]] = {"/health": [], "/status/{job_id}": []}
        failures = 0
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(total):
            queue.put_nowait(i)

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                i = queue.get_nowait()
                path, key = (
                    ("/health", "/health") if i % 2 else ("/status/missing", "/status/{job_id}")
                )
                start = time.perf_counter()
                response = await client.get(path, headers=headers)
                timings[key].append(time.perf_counter() - start)
                expected = 200 if key == "/health" else 404
                failures += response.status_code != expected

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        if failures:
            raise RuntimeError(f"{failures} requests answered unexpectedly")
        return timings


def measure(base: str, password: str, total: int, concurrency: int) -> dict[str, dict]:
    """Drive ``base`` and summarise: per endpoint n, p50, p99 and mean; overall req/s."""
    start = time.perf_counter()
    timings = asyncio.run(drive(base, password, total, concurrency))
    wall = time.perf_counter() - start
    summary = {}
    for key, values in timings.items():
        summary[key] = {
            "n": len(values),
            "p50_ms": percentile(values, 0.50) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
            "mean_ms": statistics.fmean(values) * 1000,
        }
    summary["all"] = {"n": total, "wall_s": wall, "req_per_s": total / wall}
    return summary


def run(total: int, concurrency: int) -> dict[str, dict[str, float]]:
    """The load against a fresh uvicorn API process."""
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="scene3d-load-") as home:
        proc, base = start_server(Path(home), password)
        try:
            return measure(base, password, total, concurrency)
        finally:
            proc.terminate()
            proc.wait(10)


def _print(title: str, summary: dict[str, dict]) -> None:
    print(f"[{title}]")
    for key, values in summary.items():
        shown = (f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        print(" ", key, " ".join(shown))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--also", help="base URL of a running platform to drive as well")
    parser.add_argument("--password", help="the admin password of that platform")
    args = parser.parse_args()
    if args.also:
        _print(f"ray serve {args.also}", measure(args.also, args.password, args.requests,
                                                 args.concurrency))  # fmt: skip
    _print("uvicorn", run(args.requests, args.concurrency))


if __name__ == "__main__":
    main()
