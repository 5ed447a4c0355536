"""The Ray Serve application: a gateway (the FastAPI app) and a model worker.

- ``ModelWorker`` loads the current model (the engine preset), reports its device
  for ``/ready`` and runs the GPU-heavy task (features and matching) for jobs.
  It asks for a GPU when the machine has one.
- ``Gateway`` builds the FastAPI app with :func:`api.main.create_app` on each replica
  (``__serve_build_asgi_app__``), so no app object is pickled between processes.

Run as a driver process: ``python -m api.serve --ray-address HOST:PORT --port 8000``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from dataclasses import asdict

from ray import serve

from scene3d.worker import LocalModelWorker, WorkerStatus

log = logging.getLogger(__name__)
APP_NAME = "scene3d"
WORKER_NAME = "ModelWorker"


def _apply_env(env: dict[str, str]) -> None:
    """Replicas start in Ray's worker processes: give them the platform's settings."""
    os.environ.update(env)


@serve.deployment(name=WORKER_NAME, max_ongoing_requests=4)
class ModelWorker:
    def __init__(self, env: dict[str, str]) -> None:
        _apply_env(env)
        from scene3d.settings import Settings

        self.settings = Settings.from_env()
        self.worker = LocalModelWorker(self.settings.default_preset)

    def status(self) -> dict:
        return asdict(self.worker.status())

    def run_task(self, name: str, job_id: str) -> None:
        """Run one task of :mod:`scene3d.tasks` here, next to the model (and the GPU)."""
        from scene3d.store import JobStore
        from scene3d.tasks import LOCAL_TASKS

        store = JobStore(self.settings.database_url)
        try:
            LOCAL_TASKS[name](job_id, store, self.settings)
        finally:
            store.close()


class RemoteModelWorker:
    """The API's view of the ModelWorker deployment (a Serve handle)."""

    def __init__(self, handle: serve.handle.DeploymentHandle, timeout: float = 5.0) -> None:
        self.handle = handle
        self.timeout = timeout

    def status(self) -> WorkerStatus:
        try:
            data = self.handle.status.remote().result(timeout_s=self.timeout)
        except Exception as exc:  # a worker that does not answer is simply not ready
            return WorkerStatus(False, "unknown", f"model worker unreachable: {type(exc).__name__}")
        return WorkerStatus(**data)


@serve.deployment(name="Gateway", max_ongoing_requests=64)
@serve.ingress()
class Gateway:
    def __init__(self, worker: serve.handle.DeploymentHandle, env: dict[str, str]) -> None:
        _apply_env(env)
        self.worker = RemoteModelWorker(worker)

    def __serve_build_asgi_app__(self):
        from api.main import create_app

        return create_app(worker=self.worker)


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def build_app(env: dict[str, str]) -> serve.Application:
    """The bound application; the worker gets a GPU when there is one."""
    worker = ModelWorker.options(ray_actor_options={"num_gpus": 1 if _gpu_count() else 0})
    return Gateway.bind(worker.bind(env), env)


def platform_env() -> dict[str, str]:
    """The settings every replica needs, taken from this driver's environment."""
    keys = (
        "SCENE3D_HOME",
        "SCENE3D_DATABASE_URL",
        "SCENE3D_JWT_SECRET",
        "JWT_EXPIRY_SECONDS",
        "SCENE3D_MAX_UPLOAD_BYTES",
        "SCENE3D_PRESET",
        "SCENE3D_AIRFLOW_URL",
        "SCENE3D_ADMIN_PASSWORD",
        "MLFLOW_TRACKING_URI",
        "SCENE3D_RUN_ID",
        "PYTHONPATH",
    )
    return {k: os.environ[k] for k in keys if k in os.environ}


def connect(address: str, timeout: float = 90.0, pause: float = 2.0) -> None:
    """Join the Ray cluster, retrying while its raylet is still starting.

    ``scene3d up`` starts this driver once the head's GCS port answers; on a busy machine
    the head's raylet can register a few seconds later, and ``ray.init`` gives up at once
    when it finds no raylet on this node."""
    import ray

    deadline = time.monotonic() + timeout
    while True:
        try:
            ray.init(address=address, namespace=APP_NAME, logging_level=logging.WARNING)
            return
        except (ConnectionError, RuntimeError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("Ray at %s not ready yet (%s); retrying", address, exc)
            ray.shutdown()
            time.sleep(pause)


def main() -> None:
    import ray

    parser = argparse.ArgumentParser(description="Run the scene3d Serve application")
    parser.add_argument("--ray-address", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    connect(args.ray_address)
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(build_app(platform_env()), name=APP_NAME, route_prefix="/", blocking=False)
    log.info("scene3d Serve application running on http://%s:%d", args.host, args.port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
