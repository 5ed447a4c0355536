"""``scene3d up / down / status``: the whole embedded platform on one machine.

Started in order, each waited for until healthy:
1. MLflow tracking server (SQLite + local artifacts, job-execution workers off,
   allowed hosts set),
2. Airflow: ``db migrate``, then api-server, scheduler and dag-processor as separate
   processes (SQLite, LocalExecutor, simple auth manager with a generated password),
   DAGs unpaused and the GPU pool created through the REST API,
3. a Ray head node and the Serve application (gateway + model worker) on the API port.

Everything binds to 127.0.0.1 and keeps its state under ``SCENE3D_HOME``. On a platform
that is partly running, ``up`` starts only what is missing. A watchdog
(:mod:`scene3d.watchdog`: the foreground ``scene3d up`` itself, or the ``watchdog`` service
behind ``--detach``) starts again any service that dies.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from scene3d import runtime
from scene3d.airflow import airflow_commands, airflow_env, airflow_password
from scene3d.names import (
    CHAMPION_ALIAS,
    GPU_POOL,
    MODEL_NAME,
    PLATFORM_DAGS,
    RECONSTRUCTION_DAG,
    REFERENCE_ARTIFACT,
)
from scene3d.services import Service, Supervisor
from scene3d.settings import Settings, read_or_create_secret
from scene3d.store import JobStore

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from scene3d.airflow_client import AirflowOrchestrator


@dataclass
class Platform:
    settings: Settings
    """The settings every service runs with: the caller's, with the platform's addresses."""
    supervisor: Supervisor

    @property
    def urls(self) -> dict[str, str]:
        return {
            "api": f"http://127.0.0.1:{self.settings.api_port}",
            "airflow": self.settings.airflow_url,
            "mlflow": self.settings.mlflow_tracking_uri,
        }


def platform_settings(settings: Settings) -> Settings:
    """``settings`` with the addresses of the embedded services (all on 127.0.0.1)."""
    return replace(
        settings,
        api_host="127.0.0.1",
        airflow_url=f"http://127.0.0.1:{settings.airflow_port}",
        ray_address=f"127.0.0.1:{settings.ray_port}",
        mlflow_tracking_uri=f"http://127.0.0.1:{settings.mlflow_port}",
    )


def _bin(name: str) -> str:
    """A console script of this virtualenv (next to the running interpreter)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def proxy_header_options(settings: Settings) -> dict:
    """uvicorn's options for ``scene3d serve``: ``X-Forwarded-For`` names the client only when
    a configured proxy sent it; otherwise any client could choose the address the login
    limits count (uvicorn's default trusts loopback, i.e. every local client)."""
    return {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": settings.trusted_proxies or None,
    }


def service_env(settings: Settings) -> dict[str, str]:
    """Environment of a service: this process's, the settings without secrets (each
    process that uses one reads it from the state folder) and what keeps Ray and the
    process supervisor working on one machine."""
    repo_root = str(Path(__file__).resolve().parents[1])
    env = settings.child_env()
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH")) if p),
            "RAY_USAGE_STATS_ENABLED": "0",
            # One machine: Ray would otherwise replace 127.0.0.1 by the machine's address and
            # bind its internal services there. This switch keeps them on loopback.
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": env.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"),
            # setproctitle (Airflow) would overwrite the environment block, and with it the run
            # id `scene3d down` looks for.
            "SPT_NOENV": "1",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # Ray Serve's HTTP proxy is a uvicorn too: it reads X-Forwarded-For only from the
            # peers this names (see proxy_header_options).
            "FORWARDED_ALLOW_IPS": settings.trusted_proxies,
        }
    )
    return env


def mlflow_service(settings: Settings, env: dict[str, str]) -> Service:
    root = settings.home / "mlflow"
    port = settings.mlflow_port
    (root / "artifacts").mkdir(parents=True, exist_ok=True)
    # The backend URL goes by environment, not argv: a PostgreSQL URL holds a password
    # that `ps` would show to every local user.
    env = {
        **env,
        "MLFLOW_BACKEND_STORE_URI": settings.mlflow_backend_uri
        or f"sqlite:///{root / 'mlflow.db'}",
    }
    argv = [
        _bin("mlflow"),
        "server",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--allowed-hosts",
        f"127.0.0.1:{port},localhost:{port},127.0.0.1,localhost",
    ]
    return Service("mlflow", argv, env, health_url=f"{settings.mlflow_tracking_uri}/health")


def airflow_services(settings: Settings, env: dict[str, str]) -> list[Service]:
    commands = airflow_commands(settings.airflow_port)
    health = f"{settings.airflow_url}/api/v2/monitor/health"
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


def ray_services(settings: Settings, env: dict[str, str]) -> list[Service]:
    cpus = max(1, (os.cpu_count() or 2))
    head_argv = [_bin("ray"), "start", "--head", "--block", "--disable-usage-stats"]
    head_options = {
        "--node-ip-address": "127.0.0.1",
        "--port": str(settings.ray_port),
        "--num-cpus": str(cpus),
        "--include-dashboard": "false",
        # Ray's fixed defaults (client server 10001, dashboard agent 52365) would collide
        # with any other Ray on the machine: take free ports instead.
        "--ray-client-server-port": str(_free_port()),
        "--dashboard-agent-listen-port": str(_free_port()),
        "--temp-dir": str(ray_temp_dir(settings.home)),
    }
    ray_head = Service(
        "ray-head",
        head_argv + [item for pair in head_options.items() for item in pair],
        env,
        healthy=lambda: _ray_up(settings.ray_port),
        stop_timeout=5.0,  # `ray start --block` ignores SIGTERM; its group is then killed
    )
    serve_app = Service(
        "serve",
        [sys.executable, "-m", "api.serve"],
        env,
        health_url=f"http://127.0.0.1:{settings.api_port}/ready",
        start_timeout=240,
        restart_after=("ray-head",),  # the application lives in the head's Ray cluster
    )
    return [ray_head, serve_app]


def platform_services(settings: Settings) -> list[Service]:
    """Every long-running service of the platform, in start order (``settings`` as
    :func:`platform_settings` returns them)."""
    env = service_env(settings)
    # Airflow's own keys and metadata database reach the Airflow processes only.
    airflow = airflow_env(settings, base_env=env)
    return [
        mlflow_service(settings, env),
        *airflow_services(settings, airflow),
        *ray_services(settings, env),
    ]


def watchdog_service(settings: Settings) -> Service:
    """``scene3d watch``: the watchdog of a platform started with ``--detach``."""
    argv = [sys.executable, "-m", "scene3d.cli", "watch"]
    return Service("watchdog", argv, service_env(settings), stop_timeout=5.0)


def _ray_up(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _airflow_client(settings: Settings) -> AirflowOrchestrator:
    from scene3d.airflow_client import AirflowOrchestrator

    return AirflowOrchestrator(
        settings.airflow_url, settings.airflow_user, airflow_password(settings)
    )


def prepare_airflow(settings: Settings) -> None:
    """Unpause the DAGs and create the GPU pool once the api-server answers."""
    with _airflow_client(settings) as client:
        client.ensure_pool(GPU_POOL, settings.gpu_slots, "GPU-heavy scene3d work")
        deadline = time.monotonic() + 120
        while True:  # the dag-processor needs a moment to register the DAG file
            try:
                client.unpause(RECONSTRUCTION_DAG)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
        for dag_id in PLATFORM_DAGS:
            if dag_id != RECONSTRUCTION_DAG:
                with contextlib.suppress(Exception):  # later DAGs: absent until they land
                    client.unpause(dag_id)


def prepare_registry(settings: Settings) -> str | None:
    """Give a registry without a ``champion`` its first version (the default preset, with
    the platform's drift reference, built from the benchmark where there is none yet), so
    the model worker has a registered model to serve; the champion's version, or None
    where no MLflow is configured."""
    from scene3d.jobs.drift_check import ensure_platform_reference

    try:
        reference = ensure_platform_reference(settings)
    except Exception:  # drift is advisory: reports say "unknown", the platform still starts
        log.exception("could not build the drift reference from the benchmark")
        reference = None
    if not settings.mlflow_tracking_uri:
        return None
    from scene3d import registry

    artifacts = {REFERENCE_ARTIFACT: reference} if reference else None
    return registry.ensure_champion(settings, artifacts=artifacts)


def resume_jobs(settings: Settings) -> None:
    """Jobs the last run left unfinished start again, once the model worker that their
    GPU task needs is up."""
    with _airflow_client(settings) as client, JobStore(settings.database_url) as store:
        runtime.resume_unfinished(client, store)


def _keep_given_signing_key(settings: Settings) -> None:
    """The Serve replicas read the API's signing key from the state folder, never from
    their arguments or environment: a key the operator gave (``SCENE3D_JWT_SECRET``) is
    stored there on first start, and one that disagrees with the stored key is refused."""
    given = settings.jwt_secret  # set only when the environment gave it
    if given and read_or_create_secret(settings.secrets_dir / "jwt_secret", value=given) != given:
        raise RuntimeError(
            "SCENE3D_JWT_SECRET differs from the key in secrets/jwt_secret; unset it, or "
            "delete that file to sign with the new key (existing tokens stop working)"
        )


class AlreadyRunning(RuntimeError):
    """Every service of the platform is running already."""


def up(settings: Settings, log=print, detach: bool = False) -> tuple[Platform, str | None, dict]:
    """Start every service that is not running (all of them on a stopped platform), and
    with ``detach`` the watchdog; returns the platform, a generated admin password (or
    None) and the seconds each service took to become healthy."""
    supervisor = Supervisor(settings.home)
    if supervisor.state_file.exists() and supervisor.stopping():
        if supervisor.running():
            raise RuntimeError("`scene3d down` is stopping the platform; start it once it ended")
        supervisor.state_file.unlink()  # what an interrupted `scene3d down` left behind
    settings = platform_settings(settings)
    platform = Platform(settings, supervisor)
    services = platform_services(settings)
    running = supervisor.running()
    wanted = [s.name for s in services] + (["watchdog"] if detach else [])
    if set(wanted) <= running:
        raise AlreadyRunning(f"scene3d is already running with state in {settings.home}")
    if running:
        log(f"already running: {', '.join(sorted(running))}; starting the rest")
    _keep_given_signing_key(settings)
    generated = runtime.prepare(settings)
    timings: dict[str, float] = {}
    started: list[str] = []

    def start(service: Service) -> None:
        if service.restart_after and set(service.restart_after) & set(started):
            supervisor.stop(service.name)  # it cannot outlive what it follows
        if supervisor.start(service) is not None:
            started.append(service.name)

    try:
        start(services[0])  # MLflow starts while Airflow migrates
        if "airflow-api-server" not in running:
            begin = time.monotonic()
            log("migrating Airflow's database ...")
            migrate = airflow_commands(settings.airflow_port)["migrate"]
            supervisor.run_once("airflow-migrate", migrate, services[1].env, 600)
            timings["airflow-migrate"] = time.monotonic() - begin
        for service in services[1:-1]:
            start(service)
        for service in services[:-1]:
            log(f"waiting for {service.name} ...")
            timings[service.name] = supervisor.wait_healthy(service)
        prepare_airflow(settings)
        log(f"{CHAMPION_ALIAS}: {MODEL_NAME} version {prepare_registry(settings)}")
        start(services[-1])
        log("waiting for the Serve application ...")
        timings["serve"] = supervisor.wait_healthy(services[-1])
        resume_jobs(settings)
        if detach:
            supervisor.start(watchdog_service(settings))
    except BaseException:
        if running:  # what ran before stays; what this call started goes
            for name in reversed(started):
                supervisor.stop(name)
        else:
            supervisor.stop_all()
        raise
    return platform, generated, timings


def down(settings: Settings) -> list[int]:
    return Supervisor(settings.home).stop_all()


def status(settings: Settings) -> list[dict]:
    return Supervisor(settings.home).status()
