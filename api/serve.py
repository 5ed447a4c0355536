"""The Ray Serve application: a gateway (the FastAPI app) and a model worker.

- :class:`ModelWorkerDeployment` serves the registry's ``champion`` (it follows the alias),
  hands a new job the model it serves, reports its device for ``/ready`` and runs the job
  tasks handed to it (``scene3d.jobs.runner`` decides which). It asks for a GPU when the
  machine has one.
- :class:`Gateway` builds the FastAPI app with :func:`api.main.create_app` on each replica
  (``__serve_build_asgi_app__``), so no app object is pickled between processes.

The deployments take no arguments: deployment arguments are stored in Ray's state, which
has no authentication. Each replica reads :class:`~scene3d.settings.Settings` from its own
environment (the Ray node's, which ``scene3d up`` gives every setting but the secrets); the
gateway reads the secrets it uses itself (:meth:`Settings.load_secrets`).

Run as a driver process: ``python -m api.serve``, with ``SCENE3D_RAY_ADDRESS`` naming the
cluster, after the platform's start-up (``scene3d.runtime.prepare``, done by ``scene3d up``).
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import asdict

from ray import serve

from scene3d.settings import Settings
from scene3d.worker import (
    GATEWAY_DEPLOYMENT,
    SERVE_APP,
    WORKER_DEPLOYMENT,
    LocalModelWorker,
    RemoteModelWorker,
    connect_ray,
)

log = logging.getLogger(__name__)


@serve.deployment(name=WORKER_DEPLOYMENT, max_ongoing_requests=4)
class ModelWorkerDeployment:
    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.worker = LocalModelWorker(self.settings)

    def status(self) -> dict:
        return asdict(self.worker.status())

    def served(self) -> dict:
        return self.worker.served().to_dict()

    def run_task(self, name: str, job_id: str) -> None:
        """Run one task of :mod:`scene3d.jobs.tasks` here, next to the model (and the GPU)."""
        from scene3d.jobs.tasks import TASKS
        from scene3d.store import JobStore

        store = JobStore(self.settings.database_url)
        try:
            TASKS[name](job_id, store, self.settings)
        finally:
            store.close()


@serve.deployment(name=GATEWAY_DEPLOYMENT, max_ongoing_requests=64)
@serve.ingress()
class Gateway:
    def __init__(self, worker: serve.handle.DeploymentHandle) -> None:
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


def worker_options(settings: Settings) -> dict:
    """Placement of the model worker replicas: the GPUs each reserves
    (``SCENE3D_WORKER_GPUS``; negative: one if this machine has a GPU) and, with
    ``SCENE3D_WORKER_MAX_REPLICAS`` above one, autoscaling up to that many, so GPU workers
    that join the cluster take replicas."""
    gpus = settings.worker_gpus if settings.worker_gpus >= 0 else (1 if _gpu_count() else 0)
    options: dict = {"ray_actor_options": {"num_gpus": gpus}}
    if settings.worker_max_replicas > 1:
        options["autoscaling_config"] = {
            "min_replicas": 1,
            "max_replicas": settings.worker_max_replicas,
            # One job's GPU task per replica at a time: a second waiting task asks for one more.
            "target_ongoing_requests": 1,
        }
    return options


def build_app(settings: Settings) -> serve.Application:
    """The bound application, the worker placed by :func:`worker_options`."""
    worker = ModelWorkerDeployment.options(**worker_options(settings))
    return Gateway.bind(worker.bind())


SERVE_LOGGING = {"enable_access_log": False}
"""Ray Serve writes an access-log line per request in the proxy and again in the replica:
on two cores that was a large share of each request's time (the API counts and times every
request itself, in its Prometheus metrics). Warnings and errors are still logged."""


def _deployed() -> bool:
    """True when the cluster already runs the scene3d application (healthy or starting)."""
    from ray.serve.schema import ApplicationStatus

    app = serve.status().applications.get(SERVE_APP)
    return app is not None and app.status in (
        ApplicationStatus.RUNNING,
        ApplicationStatus.DEPLOYING,
    )


def main() -> None:
    import ray

    logging.basicConfig(level=logging.INFO)
    settings = Settings.from_env()
    if not settings.ray_address:
        raise SystemExit("api.serve needs SCENE3D_RAY_ADDRESS (host:port of a Ray cluster)")
    connect_ray(settings.ray_address)
    # The API listens on the head only: GPU and Airflow nodes that join the cluster must not
    # open port 8000 of their own.
    serve.start(
        proxy_location="HeadOnly",
        http_options={"host": settings.api_host, "port": settings.api_port},
        logging_config=SERVE_LOGGING,
    )
    if _deployed():
        # A driver started again after its predecessor died: the application outlived it
        # (Serve keeps it in the cluster), and deploying it again would replace the model
        # worker replicas under the jobs they are running.
        log.info("the scene3d application is already deployed; keeping it")
    else:
        serve.run(
            build_app(settings),
            name=SERVE_APP,
            route_prefix="/",
            blocking=False,
            logging_config=SERVE_LOGGING,
        )
    log.info("scene3d Serve application on http://%s:%d", settings.api_host, settings.api_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
