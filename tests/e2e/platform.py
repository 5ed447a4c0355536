"""One real platform for an e2e module: `scene3d up --detach` in a temporary home on free
ports, stopped with `scene3d down` (which must leave no process behind), and the client
steps every e2e test takes (log in, upload the temple photos, follow the stages)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from scene3d.services import marked

STAGES = ["queued", "extracting", "matching", "triangulating", "decimating", "success"]
SCENE3D = str(Path(sys.executable).parent / "scene3d")
ADMIN_PASSWORD = "e2e-admin-" + os.urandom(6).hex()
"""The first admin's password of the shared platform (tests/e2e/conftest.py)."""


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


@contextlib.contextmanager
def running_platform(
    home: Path, admin_password: str, extra_env: Mapping[str, str] | None = None
) -> Iterator[dict]:
    """Start the platform in ``home`` with the settings of ``extra_env`` over the embedded
    defaults; yield its addresses; stop it and check that nothing it started is left."""
    api, airflow, mlflow, ray = free_ports(4)
    env = {
        **os.environ,
        "SCENE3D_HOME": str(home),
        "SCENE3D_ADMIN_PASSWORD": admin_password,
        "SCENE3D_API_PORT": str(api),
        "SCENE3D_AIRFLOW_PORT": str(airflow),
        "SCENE3D_MLFLOW_PORT": str(mlflow),
        "SCENE3D_RAY_PORT": str(ray),
    }
    for name in ("SCENE3D_DATABASE_URL", "SCENE3D_AIRFLOW_DATABASE_URL",
                 "SCENE3D_MLFLOW_BACKEND_URI"):  # fmt: skip
        env.pop(name, None)
    env.update(extra_env or {})
    start = time.monotonic()
    result = subprocess.run(
        [SCENE3D, "up", "--detach"], env=env, capture_output=True, text=True, timeout=900
    )
    up_seconds = time.monotonic() - start
    print(result.stdout, result.stderr[-3000:])
    state = home / "run" / "services.json"
    recorded = json.loads(state.read_text()) if state.exists() else {}
    run_id = recorded.get("run_id")
    services_at_start = recorded.get("services", {})
    try:
        assert result.returncode == 0, result.stderr[-3000:]
        yield {
            "home": home,
            "env": env,
            "api": f"http://127.0.0.1:{api}",
            "airflow": f"http://127.0.0.1:{airflow}",
            "mlflow": f"http://127.0.0.1:{mlflow}",
            "run_id": run_id,
            "up_seconds": up_seconds,
        }
    finally:
        down = subprocess.run(
            [SCENE3D, "down"], env=env, capture_output=True, text=True, timeout=300
        )
        print(down.stdout, down.stderr[-2000:])
        if run_id:
            sessions = {info["pid"] for info in services_at_start.values()}
            assert marked(run_id, sessions) == [], "processes left after `scene3d down`"


def token(base: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(f"{base}/auth/token", json={"username": username, "password": password})
    assert response.status_code in (200, 201), response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def zip_of(paths: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in paths:
            zf.write(path, path.name)
    return buf.getvalue()


def follow(base: str, headers: dict, job_id: str, timeout: float = 900) -> tuple[dict, list]:
    """Poll /status until the job ends; stages must only move forward.

    The API's front door is Ray Serve's proxy: while a killed Ray head is started again it
    does not answer, or answers its own 404 until the application is deployed again, so
    polls that do not reach the API are waited out (until ``timeout``)."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base}/status/{job_id}", headers=headers, timeout=10)
        except httpx.TransportError:
            response = None
        if response is None or not _from_the_api(response):
            time.sleep(1.0)
            continue
        body = response.json()
        seen.append((body["stage"], body["progress"]))
        if body["stage"] in ("success", "failed"):
            return body, seen
        time.sleep(1.0)
    raise AssertionError(f"job did not finish in {timeout} s; last {seen[-1:]}")


def _from_the_api(response: httpx.Response) -> bool:
    """The API answers JSON below 500; Serve's proxy without the app answers plain text."""
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return is_json and response.status_code < 500


def wait_ready(base: str, timeout: float = 300) -> None:
    """Until ``/ready`` answers 200 (the Serve application deployed, its model loaded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/ready", timeout=10).status_code == 200:
                return
        time.sleep(1.0)
    raise AssertionError(f"{base}/ready did not answer 200 in {timeout} s")


def served_version(base: str, version: str, timeout: float = 60) -> None:
    """Until ``/ready`` reports that the model worker serves ``version``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{base}/ready", timeout=10).json().get("model_version") == version:
            return
        time.sleep(0.5)
    raise AssertionError(f"the model worker did not serve version {version} in {timeout} s")


def temple_photos(bench_dir: Path) -> list[Path]:
    return sorted((bench_dir / "train" / "middlebury").glob("temple*.png"))


def upload_temple(base: str, headers: dict, bench_dir: Path) -> str:
    """Upload the Middlebury temple photos; the new job's id."""
    response = httpx.post(
        f"{base}/upload",
        headers=headers,
        timeout=60,
        files={"file": ("temple.zip", zip_of(temple_photos(bench_dir)), "application/zip")},
        data={"dataset_name": "middlebury", "scene_name": "temple"},
    )
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def airflow_run(platform: dict, job_id: str) -> dict:
    """The job's reconstruction_dag run, once Airflow has marked it done (or after 60 s)."""
    from scene3d.airflow import airflow_password
    from scene3d.settings import Settings

    settings = Settings(home=platform["home"])
    af = token(platform["airflow"], settings.airflow_user, airflow_password(settings))
    run_url = f"{platform['airflow']}/api/v2/dags/reconstruction_dag/dagRuns/job_{job_id}"
    for _ in range(60):  # the run is marked done a moment after its last task ends
        run = httpx.get(run_url, headers=af).json()
        if run["state"] in ("success", "failed"):
            break
        time.sleep(1)
    return run


def mlflow_job_runs(platform: dict, job_id: str) -> list[dict]:
    """The MLflow runs of experiment scene3d-jobs tagged with the job's id."""
    experiment = httpx.get(
        f"{platform['mlflow']}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "scene3d-jobs"},
    ).json()["experiment"]
    return httpx.post(
        f"{platform['mlflow']}/api/2.0/mlflow/runs/search",
        json={
            "experiment_ids": [experiment["experiment_id"]],
            "filter": f"tags.job_id = '{job_id}'",
        },
    ).json()["runs"]
