"""``scene3d up / down / status``: the whole embedded platform on one machine.

Started in order, each waited for until healthy:
1. MLflow tracking server (SQLite + local artifacts, job-execution workers off,
   allowed hosts set),
2. Airflow: ``db migrate``, then api-server, scheduler and dag-processor as separate
   processes (SQLite, LocalExecutor, simple auth manager with a generated password),
   DAGs unpaused and the GPU pool created through the REST API,
3. a Ray head node and the Serve application (gateway + model worker) on the API port.

Everything binds to 127.0.0.1 and keeps its state under ``SCENE3D_HOME``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scene3d.airflow import (
    AIRFLOW_USER,
    GPU_POOL,
    RECONSTRUCTION_DAG,
    airflow_commands,
    airflow_env,
    airflow_password,
)
from scene3d.bootstrap import ensure_admin
from scene3d.services import Service, Supervisor
from scene3d.settings import Settings
from scene3d.store import JobStore


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass
class Ports:
    """Where each service listens (all on 127.0.0.1); each is configurable."""

    api: int = 8000
    airflow: int = 8080
    mlflow: int = 5000
    ray: int = 6380

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            api=_port("SCENE3D_API_PORT", 8000),
            airflow=_port("SCENE3D_AIRFLOW_PORT", 8080),
            mlflow=_port("SCENE3D_MLFLOW_PORT", 5000),
            ray=_port("SCENE3D_RAY_PORT", 6380),
        )


@dataclass
class Platform:
    settings: Settings
    ports: Ports
    supervisor: Supervisor

    @property
    def urls(self) -> dict[str, str]:
        return {
            "api": f"http://127.0.0.1:{self.ports.api}",
            "airflow": f"http://127.0.0.1:{self.ports.airflow}",
            "mlflow": f"http://127.0.0.1:{self.ports.mlflow}",
        }


def _bin(name: str) -> str:
    """A console script of this virtualenv (next to the running interpreter)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def platform_env(settings: Settings, ports: Ports) -> dict[str, str]:
    """Environment shared by every service: the scene3d settings plus where the others are."""
    repo_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env.update(
        {
            "SCENE3D_HOME": str(settings.home),
            "SCENE3D_DATABASE_URL": settings.database_url,
            "SCENE3D_AIRFLOW_URL": f"http://127.0.0.1:{ports.airflow}",
            "SCENE3D_RAY_ADDRESS": f"127.0.0.1:{ports.ray}",
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports.mlflow}",
            "PYTHONPATH": os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH")) if p),
            "RAY_USAGE_STATS_ENABLED": "0",
            # One machine: Ray would otherwise replace 127.0.0.1 by the machine's address and
            # bind its internal services there. This switch keeps them on loopback.
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": env.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"),
            # setproctitle (Airflow) would overwrite the environment block, and with it the run
            # id `scene3d down` looks for.
            "SPT_NOENV": "1",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
    )
    return env


def mlflow_service(settings: Settings, ports: Ports, env: dict[str, str]) -> Service:
    root = settings.home / "mlflow"
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    argv = [
        _bin("mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(ports.mlflow),
        "--workers",
        "1",
        "--allowed-hosts",
        f"127.0.0.1:{ports.mlflow},localhost:{ports.mlflow},127.0.0.1,localhost",
    ]
    return Service("mlflow", argv, env, health_url=f"http://127.0.0.1:{ports.mlflow}/health")


def airflow_services(settings: Settings, ports: Ports, env: dict[str, str]) -> list[Service]:
    commands = airflow_commands(ports.airflow)
    health = f"http://127.0.0.1:{ports.airflow}/api/v2/monitor/health"
    return [
        Service("airflow-api-server", commands["api-server"], env, health_url=health),
        Service("airflow-scheduler", commands["scheduler"], env),
        Service("airflow-dag-processor", commands["dag-processor"], env),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_temp_dir(home: Path) -> Path:
    """Ray's session folder: short (its socket paths must stay under ~100 bytes) and
    private to this state folder, so two platforms on one machine never share it."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"scene3d-ray-{digest}"


def ray_services(ports: Ports, env: dict[str, str], home: Path) -> list[Service]:
    cpus = max(1, (os.cpu_count() or 2))
    head_argv = [_bin("ray"), "start", "--head", "--block", "--disable-usage-stats"]
    head_options = {
        "--node-ip-address": "127.0.0.1",
        "--port": str(ports.ray),
        "--num-cpus": str(cpus),
        "--include-dashboard": "false",
        # Ray's fixed defaults (client server 10001, dashboard agent 52365) would collide
        # with any other Ray on the machine: take free ports instead.
        "--ray-client-server-port": str(_free_port()),
        "--dashboard-agent-listen-port": str(_free_port()),
        "--temp-dir": str(ray_temp_dir(home)),
    }
    ray_head = Service(
        "ray-head",
        head_argv + [item for pair in head_options.items() for item in pair],
        env,
        healthy=lambda: _ray_up(ports.ray),
        stop_timeout=5.0,  # `ray start --block` ignores SIGTERM; its group is then killed
    )
    serve_app = Service(
        "serve",
        [
            sys.executable,
            "-m",
            "api.serve",
            "--ray-address",
            f"127.0.0.1:{ports.ray}",
            "--host",
            "127.0.0.1",
            "--port",
            str(ports.api),
        ],
        env,
        health_url=f"http://127.0.0.1:{ports.api}/ready",
        start_timeout=240,
    )
    return [ray_head, serve_app]


def _ray_up(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _prepare_airflow(platform: Platform, env: dict[str, str]) -> None:
    """Unpause the DAGs and create the GPU pool once the api-server answers."""
    from scene3d.airflow_client import AirflowOrchestrator

    client = AirflowOrchestrator(
        platform.urls["airflow"], AIRFLOW_USER, airflow_password(platform.settings)
    )
    client.ensure_pool(GPU_POOL, int(env.get("SCENE3D_GPU_SLOTS", "1")), "GPU-heavy scene3d work")
    deadline = time.monotonic() + 120
    while True:  # the dag-processor needs a moment to register the DAG file
        try:
            client.unpause(RECONSTRUCTION_DAG)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    for dag_id in ("drift_detection_dag", "experiment_pipeline_dag"):
        with contextlib.suppress(Exception):  # later DAGs: absent until their issue lands
            client.unpause(dag_id)


def up(settings: Settings, ports: Ports, log=print) -> tuple[Platform, str | None, dict]:
    """Start every service; returns the platform, a generated admin password (or None)
    and the seconds each service took to become healthy."""
    supervisor = Supervisor(settings.home)
    if any(row["alive"] for row in supervisor.status()):
        raise RuntimeError(
            f"scene3d is already running with state in {settings.home}; `scene3d down` first"
        )
    platform = Platform(settings, ports, supervisor)
    env = platform_env(settings, ports)
    env.update(airflow_env(settings, ports.airflow, base_env=env))
    store = JobStore(settings.database_url)
    store.migrate()
    generated = ensure_admin(store, settings)
    store.close()
    timings: dict[str, float] = {}
    try:
        mlflow = mlflow_service(settings, ports, env)
        supervisor.start(mlflow)
        start = time.monotonic()
        log("migrating Airflow's database ...")
        supervisor.run_once("airflow-migrate", airflow_commands(ports.airflow)["migrate"], env, 600)
        timings["airflow-migrate"] = time.monotonic() - start
        services = airflow_services(settings, ports, env) + ray_services(ports, env, settings.home)
        for service in services[:-1]:
            supervisor.start(service)
        timings["mlflow"] = supervisor.wait_healthy(mlflow)
        for service in services[:-1]:
            log(f"waiting for {service.name} ...")
            timings[service.name] = supervisor.wait_healthy(service)
        _prepare_airflow(platform, env)
        supervisor.start(services[-1])
        log("waiting for the Serve application ...")
        timings["serve"] = supervisor.wait_healthy(services[-1])
    except BaseException:
        supervisor.stop_all()
        raise
    return platform, generated, timings


def down(settings: Settings) -> list[int]:
    return Supervisor(settings.home).stop_all()


def status(settings: Settings) -> list[dict]:
    return Supervisor(settings.home).status()
