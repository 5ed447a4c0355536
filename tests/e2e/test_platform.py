"""The whole platform, for real: `scene3d up` starts MLflow, Airflow and Ray Serve; a client
logs in, uploads the Middlebury temple photos, follows the stages, downloads the results;
Airflow and MLflow are checked over their own APIs; `scene3d down` leaves nothing behind."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import time
import zipfile

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image

from pipeline.presets import load_preset
from scene3d.jobs.paths import job_folder
from scene3d.names import MODEL_NAME
from scene3d.served import ServedModel
from scene3d.services import RUN_ID_ENV, marked
from scene3d.settings import Settings
from tests.deploy.grafana import dashboard_queries, exported_samples, metric_names
from tests.e2e.platform import (
    ADMIN_PASSWORD,
    SCENE3D,
    STAGES,
    airflow_run,
    follow,
    mlflow_job_runs,
    served_version,
    temple_photos,
    token,
    upload_temple,
    wait_ready,
    zip_of,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


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
    ready = httpx.get(f"{base}/ready").json()
    # first start registered the default preset as version 1, the champion
    assert (ready["status"], ready["model"], ready["model_version"]) == ("ready", MODEL_NAME, "1")
    headers = token(base, "admin", ADMIN_PASSWORD)
    temple = temple_photos(bench_dir)
    start = time.monotonic()
    job_id = upload_temple(base, headers, bench_dir)
    status, seen = follow(base, headers, job_id)
    job_seconds = time.monotonic() - start
    rss = _platform_rss_mb(platform["run_id"])
    print(f"temple job end to end: {job_seconds:.1f} s; platform memory {rss:.0f} MiB")
    assert status["stage"] == "success", status
    order = [STAGES.index(stage) for stage, _ in seen]
    assert order == sorted(order), seen
    assert [p for _, p in seen] == sorted(p for _, p in seen), seen
    assert status["progress"] == 100 and status["n_images"] == len(temple)
    assert (status["model_name"], status["model_version"]) == (MODEL_NAME, "1")

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
    run = airflow_run(platform, job_id)
    assert run["state"] == "success", run
    # the GPU-heavy task was handed to the Ray Serve model worker
    logs = platform["home"] / "logs" / "airflow" / "dag_id=reconstruction_dag"
    matching_logs = list((logs / f"run_id=job_{job_id}" / "task_id=matching").glob("*.log"))
    assert any("on the model worker" in path.read_text() for path in matching_logs)

    # MLflow holds the job's run
    runs = mlflow_job_runs(platform, job_id)
    assert len(runs) == 1, runs
    metrics_logged = {m["key"]: m["value"] for m in runs[0]["data"]["metrics"]}
    assert metrics_logged["registration_rate"] >= 0.8
    params = {p["key"]: p["value"] for p in runs[0]["data"]["params"]}
    assert (params["model_name"], params["model_version"]) == (MODEL_NAME, "1")

    # the drift check judged the photos against the reference version 1 carries (built from
    # the benchmark at first start), with Evidently's report kept and logged
    insights = httpx.get(f"{base}/jobs/{job_id}/insights", headers=headers).json()
    assert insights["drift_severity"] in ("low", "medium", "high"), insights
    assert insights["drift_report"]["reference"].startswith("bench+bench_imc"), insights
    assert insights["drift_report"]["n_images"] == len(temple)
    assert insights["recommendation"]
    html = httpx.get(f"{base}/jobs/{job_id}/drift-report", headers=headers, timeout=30)
    assert html.status_code == 200 and b"Value Drift for column" in html.content
    tags = {t["key"]: t["value"] for t in runs[0]["data"]["tags"]}
    assert tags["drift_severity"] == insights["drift_severity"]
    platform["temple_job"] = job_id


def test_a_new_champion_serves_the_next_job_without_a_restart(platform, bench_dir) -> None:
    """A version registered and made champion (as the experiment DAG does) is served by the
    running worker within its poll interval; the next job runs with it and records it."""
    from scene3d import registry

    base = platform["api"]
    settings = Settings(home=platform["home"], mlflow_tracking_uri=platform["mlflow"])
    before = {row["pid"] for row in _services(platform).values()}
    fast = registry.register_version(settings, load_preset("fast"), tags={"origin": "e2e"})
    registry.set_champion(settings, fast)
    try:
        served_version(base, fast)
        headers = token(base, "admin", ADMIN_PASSWORD)
        job_id = upload_temple(base, headers, bench_dir)
        status, _ = follow(base, headers, job_id)
        assert status["stage"] == "success", status
        assert (status["model_name"], status["model_version"]) == (MODEL_NAME, fast)
        pinned = ServedModel.read(job_folder(settings, job_id).model)
        assert pinned.config == load_preset("fast")
        params = {
            p["key"]: p["value"] for p in mlflow_job_runs(platform, job_id)[0]["data"]["params"]
        }
        assert (params["model_version"], params["preset"]) == (fast, "fast")
    finally:
        registry.set_champion(settings, "1")
    served_version(base, "1")
    assert {row["pid"] for row in _services(platform).values()} == before  # nothing restarted


def test_unreconstructable_upload_fails_with_an_error(platform, tmp_path) -> None:
    base = platform["api"]
    headers = token(base, "admin", ADMIN_PASSWORD)
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
        files={"file": ("noise.zip", zip_of(paths), "application/zip")},
    )
    assert response.status_code == 202
    status, _ = follow(base, headers, response.json()["job_id"], timeout=600)
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
        "watchdog",
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


def test_every_dashboard_metric_is_served_through_ray_serve(platform) -> None:
    """The Grafana dashboard of docker-compose.yml draws only what the live /metrics has."""
    httpx.get(f"{platform['api']}/health")
    httpx.get(f"{platform['api']}/no-such-page")  # labelled counters appear once counted
    exported = exported_samples(httpx.get(f"{platform['api']}/metrics").text)
    queried = set().union(*(metric_names(e) for e in dashboard_queries()))
    assert queried - exported == set()


# ----------------------------------------------------------------- faults (run last: they
# kill services of the shared platform, which the watchdog must bring back)


def _services(platform) -> dict:
    return json.loads((platform["home"] / "run" / "services.json").read_text())["services"]


def _task_process(platform) -> int:
    """The Airflow process running a task now: the deepest under a busy LocalExecutor
    worker (whose title names the task's workload instead of ``<idle>``)."""
    for proc in marked(platform["run_id"]):
        with contextlib.suppress(psutil.Error):
            title = " ".join(proc.cmdline())
            if title.startswith("airflow worker -- ") and "LocalExecutor" not in title:
                leaves = [c for c in proc.children(recursive=True) if not c.children()]
                return (leaves or [proc])[-1].pid
    raise AssertionError("no Airflow task process found")


def _when_matching(base: str, headers: dict, job_id: str) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        stage = httpx.get(f"{base}/status/{job_id}", headers=headers, timeout=10).json()["stage"]
        if stage == "matching":
            return
        assert stage in ("queued", "extracting"), stage
        time.sleep(0.2)
    raise AssertionError("the job never reached matching")


@pytest.mark.parametrize(
    "victim",
    ["airflow-scheduler", "serve", "task process", "ray-head", "airflow-api-server", "mlflow"],
)
def test_a_process_killed_while_a_job_is_matching_loses_nothing(
    platform, bench_dir, victim
) -> None:
    """kill -9 of the scheduler (which takes its running task with it), of the Serve driver,
    of the task process itself, of the Ray head (the API's front door and the model worker
    with it), of Airflow's api-server (the tasks' Execution API) or of MLflow, while a job
    is in `matching`: the watchdog starts the service again, the task is retried where it
    died, the job ends `success` with all its results and the platform is whole again."""
    base = platform["api"]
    headers = token(base, "admin", ADMIN_PASSWORD)
    job_id = upload_temple(base, headers, bench_dir)
    _when_matching(base, headers, job_id)
    before = _services(platform)
    pid = _task_process(platform) if victim == "task process" else before[victim]["pid"]
    os.kill(pid, signal.SIGKILL)

    status, _ = follow(base, headers, job_id, timeout=600)
    assert status["stage"] == "success", status
    wait_ready(base)
    assert httpx.get(f"{base}/download/jobs/{job_id}", headers=headers).status_code == 200
    assert httpx.get(f"{base}/clusters/{job_id}", headers=headers).json()["clusters"]
    if victim != "task process":
        watchdog_log = (platform["home"] / "logs" / "watchdog.log").read_text()
        assert f"watchdog: {victim} is not running; starting it again" in watchdog_log
        assert _services(platform)[victim]["pid"] != pid
    rows = {row["name"]: row for row in _status_rows(platform)}
    assert all(row["alive"] for row in rows.values()), rows


def _status_rows(platform) -> list[dict]:
    from scene3d.services import Supervisor

    return Supervisor(platform["home"]).status()


def test_up_on_a_half_running_platform_starts_what_is_missing(platform) -> None:
    """With the watchdog and the dag-processor killed, `scene3d up --detach` starts those
    two, leaves the rest alone and keeps the run id `scene3d down` sweeps for."""
    before = _services(platform)
    for name in ("watchdog", "airflow-dag-processor"):
        os.kill(before[name]["pid"], signal.SIGKILL)
    time.sleep(1)
    result = subprocess.run(
        [SCENE3D, "up", "--detach"], env=platform["env"], capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    said = result.stdout + result.stderr  # progress lines go to stderr
    assert "already running: " in said and "starting the rest" in said
    after = _services(platform)
    for name, info in after.items():
        moved = info["pid"] != before[name]["pid"]
        assert moved == (name in ("watchdog", "airflow-dag-processor")), name
    assert all(row["alive"] for row in _status_rows(platform))
    assert (
        json.loads((platform["home"] / "run" / "services.json").read_text())["run_id"]
        == (platform["run_id"])
    )
    again = subprocess.run(
        [SCENE3D, "up", "--detach"], env=platform["env"], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert again.returncode == 0 and "already running" in again.stdout


def test_scheduled_drift_check_runs_in_airflow_and_respects_the_cool_down(
    platform, bench_dir
) -> None:
    """drift_detection_dag, triggered as a manual run over the last day: the jobs of the
    interval against the champion's reference, the report in MLflow experiment
    scene3d-drift, the verdict in /metrics; retraining was started by drift a moment ago
    (the state file says so), so whatever the severity, none is started now."""
    from scene3d.airflow import airflow_password
    from scene3d.jobs.paths import job_folder as folder_of
    from scene3d.names import DRIFT_DAG, DRIFT_EXPERIMENT

    settings = Settings(home=platform["home"])
    if "temple_job" not in platform:  # run alone: a job for the window to hold
        headers = token(platform["api"], "admin", ADMIN_PASSWORD)
        platform["temple_job"] = upload_temple(platform["api"], headers, bench_dir)
        follow(platform["api"], headers, platform["temple_job"])
    assert (folder_of(settings, platform["temple_job"]).drift / "features.json").is_file()
    state = settings.drift_dir / "retrain_triggered.json"
    state.write_text(json.dumps({"at": time.time(), "drift_run": "earlier", "retrain_run": "x"}))
    af = token(platform["airflow"], settings.airflow_user, airflow_password(settings))
    runs_url = f"{platform['airflow']}/api/v2/dags/{DRIFT_DAG}/dagRuns"
    run_id = f"manual__e2e_{int(time.time())}"
    response = httpx.post(
        runs_url,
        headers=af,
        json={"dag_run_id": run_id, "logical_date": None, "conf": {"window_hours": 24}},
    )
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run = httpx.get(f"{runs_url}/{run_id}", headers=af).json()
        if run["state"] in ("success", "failed"):
            break
        time.sleep(2)
    assert run["state"] == "success", run
    tasks = httpx.get(f"{runs_url}/{run_id}/taskInstances", headers=af).json()
    states = {t["task_id"]: t["state"] for t in tasks["task_instances"]}
    assert states["check_window"] == "success"
    assert states["trigger_retraining"] == "skipped", states

    latest = json.loads((settings.drift_dir / "latest.json").read_text())
    assert latest["run_id"] == run_id and platform["temple_job"] in latest["jobs"]
    assert latest["severity"] in ("low", "medium", "high") and latest["model_version"]
    experiment = httpx.get(
        f"{platform['mlflow']}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": DRIFT_EXPERIMENT},
    ).json()["experiment"]
    logged = httpx.post(
        f"{platform['mlflow']}/api/2.0/mlflow/runs/search",
        json={
            "experiment_ids": [experiment["experiment_id"]],
            "filter": f"tags.drift_run = '{run_id}'",
        },
    ).json()["runs"]
    assert len(logged) == 1
    metrics = {m["key"]: m["value"] for m in logged[0]["data"]["metrics"]}
    assert metrics["n_images"] == latest["n_images"]
    exported = httpx.get(f"{platform['api']}/metrics").text
    level = {"low": 0.0, "medium": 1.0, "high": 2.0}[latest["severity"]]
    assert f"drift_window_severity_level {level}" in exported
