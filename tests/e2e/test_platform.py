"""The whole platform, for real: `scene3d up` starts MLflow, Airflow and Ray Serve; a client
logs in, uploads the Middlebury temple photos, follows the stages, downloads the results;
Airflow and MLflow are checked over their own APIs; `scene3d down` leaves nothing behind."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image

from scene3d.services import RUN_ID_ENV, marked

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

STAGES = ["queued", "extracting", "matching", "triangulating", "decimating", "success"]
ADMIN_PASSWORD = "e2e-admin-" + os.urandom(6).hex()
SCENE3D = str(Path(sys.executable).parent / "scene3d")


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    api, airflow, mlflow, ray = _free_ports(4)
    env = {
        **os.environ,
        "SCENE3D_HOME": str(home),
        "SCENE3D_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SCENE3D_API_PORT": str(api),
        "SCENE3D_AIRFLOW_PORT": str(airflow),
        "SCENE3D_MLFLOW_PORT": str(mlflow),
        "SCENE3D_RAY_PORT": str(ray),
    }
    env.pop("SCENE3D_DATABASE_URL", None)
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


def _token(base: str, username: str, password: str) -> dict[str, str]:
    response = httpx.post(f"{base}/auth/token", json={"username": username, "password": password})
    assert response.status_code in (200, 201), response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _zip(paths: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in paths:
            zf.write(path, path.name)
    return buf.getvalue()


def _follow(base: str, headers: dict, job_id: str, timeout: float = 900) -> tuple[dict, list]:
    """Poll /status until the job ends; stages must only move forward."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/status/{job_id}", headers=headers, timeout=10).json()
        seen.append((body["stage"], body["progress"]))
        if body["stage"] in ("success", "failed"):
            return body, seen
        time.sleep(1.0)
    raise AssertionError(f"job did not finish in {timeout} s; last {seen[-1:]}")


def _platform_rss_mb(run_id: str) -> float:
    total = 0
    for proc in marked(run_id):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total / 1024**2


def test_temple_job_end_to_end(platform, bench_dir) -> None:
    base = platform["api"]
    print(f"\nup to ready: {platform['up_seconds']:.1f} s")
    assert httpx.get(f"{base}/health").json()["status"] == "ok"
    assert httpx.get(f"{base}/ready").json()["status"] == "ready"
    headers = _token(base, "admin", ADMIN_PASSWORD)
    temple = sorted((bench_dir / "train" / "middlebury").glob("temple*.png"))
    start = time.monotonic()
    response = httpx.post(
        f"{base}/upload",
        headers=headers,
        timeout=60,
        files={"file": ("temple.zip", _zip(temple), "application/zip")},
        data={"dataset_name": "middlebury", "scene_name": "temple"},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    status, seen = _follow(base, headers, job_id)
    job_seconds = time.monotonic() - start
    rss = _platform_rss_mb(platform["run_id"])
    print(f"temple job end to end: {job_seconds:.1f} s; platform memory {rss:.0f} MiB")
    assert status["stage"] == "success", status
    order = [STAGES.index(stage) for stage, _ in seen]
    assert order == sorted(order), seen
    assert [p for _, p in seen] == sorted(p for _, p in seen), seen
    assert status["progress"] == 100 and status["n_images"] == len(temple)

    plys = httpx.get(f"{base}/download/jobs/{job_id}", headers=headers, timeout=60)
    assert plys.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(plys.content))
    assert archive.namelist() and all(n.endswith(".ply") for n in archive.namelist())
    first = archive.read(sorted(archive.namelist())[0])
    assert first.startswith(b"ply\nformat binary_little_endian")
    vertices = int(first.split(b"element vertex ")[1].split(b"\n")[0])
    assert vertices > 0
    rows = list(
        csv.DictReader(
            io.StringIO(httpx.get(f"{base}/download/jobs/{job_id}/csv", headers=headers).text)
        )
    )
    assert len(rows) == len(temple)
    assert sum(r["scene"] != "outliers" for r in rows) >= 0.8 * len(temple)
    clusters = httpx.get(f"{base}/clusters/{job_id}", headers=headers).json()["clusters"]
    assert clusters and clusters[0]["num_points3D"] > 0
    metrics = httpx.get(f"{base}/metrics").text
    assert "model_server_ready 1.0" in metrics
    assert 'api_requests_total{endpoint="/upload",method="POST",status="202"}' in metrics
    assert "inference_latency_seconds_count 1.0" in metrics

    # Airflow saw the DAG run succeed, under the run id derived from the job id
    from scene3d.airflow import airflow_password
    from scene3d.settings import Settings

    settings = Settings(home=platform["home"])
    af = _token(platform["airflow"], settings.airflow_user, airflow_password(settings))
    run_url = f"{platform['airflow']}/api/v2/dags/reconstruction_dag/dagRuns/job_{job_id}"
    for _ in range(60):  # the run is marked done a moment after its last task ends
        run = httpx.get(run_url, headers=af).json()
        if run["state"] in ("success", "failed"):
            break
        time.sleep(1)
    assert run["state"] == "success", run
    # the GPU-heavy task was handed to the Ray Serve model worker
    logs = platform["home"] / "logs" / "airflow" / "dag_id=reconstruction_dag"
    matching_logs = list((logs / f"run_id=job_{job_id}" / "task_id=matching").glob("*.log"))
    assert any("on the model worker" in path.read_text() for path in matching_logs)

    # MLflow holds the job's run
    experiment = httpx.get(
        f"{platform['mlflow']}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": "scene3d-jobs"},
    ).json()["experiment"]
    runs = httpx.post(
        f"{platform['mlflow']}/api/2.0/mlflow/runs/search",
        json={
            "experiment_ids": [experiment["experiment_id"]],
            "filter": f"tags.job_id = '{job_id}'",
        },
    ).json()["runs"]
    assert len(runs) == 1, runs
    metrics_logged = {m["key"]: m["value"] for m in runs[0]["data"]["metrics"]}
    assert metrics_logged["registration_rate"] >= 0.8


def test_unreconstructable_upload_fails_with_an_error(platform, tmp_path) -> None:
    base = platform["api"]
    headers = _token(base, "admin", ADMIN_PASSWORD)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = tmp_path / f"noise_{i}.png"
        Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    response = httpx.post(
        f"{base}/upload",
        headers=headers,
        timeout=60,
        files={"file": ("noise.zip", _zip(paths), "application/zip")},
    )
    assert response.status_code == 202
    status, _ = _follow(base, headers, response.json()["job_id"], timeout=600)
    assert status["stage"] == "failed"
    assert "no scene could be reconstructed" in status["error"]
    assert status["download_url"] is None


def test_run_id_is_inherited_by_the_services(platform) -> None:
    """Every service and its descendants carry the run id `scene3d down` sweeps for."""
    services = json.loads((platform["home"] / "run" / "services.json").read_text())["services"]
    assert set(services) == {
        "mlflow",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "ray-head",
        "serve",
    }
    procs = marked(platform["run_id"])  # by the environment marker alone
    pids = {p.pid for p in procs}
    assert {info["pid"] for info in services.values()} <= pids
    assert len(procs) > len(services), "descendants (workers, replicas) carry it too"
    assert all(p.environ().get(RUN_ID_ENV) == platform["run_id"] for p in procs)


def test_services_listen_on_loopback(platform) -> None:
    """The API, Airflow and MLflow answer on 127.0.0.1 only."""
    ports = {int(platform[name].rsplit(":", 1)[1]) for name in ("api", "airflow", "mlflow")}
    listeners = [
        c
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    ]
    assert {c.laddr.port for c in listeners} == ports
    assert all(c.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for c in listeners)
