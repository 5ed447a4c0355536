"""The model worker seam: what loads the model and does the GPU-heavy work, and how to reach it.

- :class:`ModelWorker` is what the API needs of a worker (its status for ``/ready``).
- :class:`LocalModelWorker` lives in the calling process (``scene3d serve``, tests, and
  inside the Serve deployment ``api.serve.ModelWorkerDeployment``).
- :class:`RemoteModelWorker` talks to that deployment through a Serve handle: its status,
  and running one job task next to the model (:meth:`RemoteModelWorker.run_task`).
- :func:`remote_worker` joins the Ray cluster of ``settings.ray_address`` and returns one.
- :data:`SERVE_APP`, :data:`WORKER_DEPLOYMENT`, :data:`GATEWAY_DEPLOYMENT`: the names the
  Serve application (``api.serve``) is deployed under and found by.

Ray is imported inside the functions that use it: the API and the tasks without a Ray
cluster never pay for it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.presets import load_preset
from scene3d.settings import Settings

log = logging.getLogger(__name__)

SERVE_APP = "scene3d"
"""The Ray Serve application (and Ray namespace) of the gateway and the model worker."""
WORKER_DEPLOYMENT = "ModelWorker"
"""Serve deployment that loads the model and runs the GPU-heavy tasks."""
GATEWAY_DEPLOYMENT = "Gateway"
"""Serve deployment that serves the FastAPI app."""


@dataclass(frozen=True)
class WorkerStatus:
    ready: bool
    device: str
    reason: str = ""
    model: str = ""
    """The model the worker serves (today the engine preset's name)."""


class ModelWorker(Protocol):
    def status(self) -> WorkerStatus: ...


def describe_device() -> str:
    """GPU name and memory when CUDA is usable, else the CPU core count."""
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return f"{props.name} ({props.total_memory / 1024**3:.1f} GB)"
    except ImportError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"cpu ({cores} cores)"


class LocalModelWorker:
    """Checks that the preset loads, in a background thread; not ready until that finished.

    The tasks load their job's preset themselves (a job keeps the preset it started
    with), so only the verdict is kept here.
    """

    def __init__(self, preset: str) -> None:
        self.preset = preset
        self._error: str | None = None
        self._device = "unknown"
        self._loaded = threading.Event()
        threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            load_preset(self.preset)
            self._device = describe_device()
        except Exception as exc:  # reported through /ready, never raised into requests
            self._error = f"model {self.preset!r} failed to load: {exc}"
        finally:
            self._loaded.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def status(self) -> WorkerStatus:
        if not self._loaded.is_set():
            reason = "model worker is still loading the model"
            return WorkerStatus(False, self._device, reason, self.preset)
        if self._error:
            return WorkerStatus(False, self._device, self._error, self.preset)
        return WorkerStatus(True, self._device, model=self.preset)


class RemoteModelWorker:
    """The model worker deployment seen through a Serve ``DeploymentHandle``."""

    def __init__(self, handle: Any, timeout: float = 5.0) -> None:
        self.handle = handle
        self.timeout = timeout

    def status(self) -> WorkerStatus:
        try:
            data = self.handle.status.remote().result(timeout_s=self.timeout)
        except Exception as exc:  # a worker that does not answer is simply not ready
            return WorkerStatus(False, "unknown", f"model worker unreachable: {type(exc).__name__}")
        return WorkerStatus(**data)

    def run_task(self, name: str, job_id: str) -> None:
        """Run task ``name`` of job ``job_id`` on the worker (it runs there, never routed
        further); the engine's own error is raised here."""
        log.info("running %s of job %s on the model worker", name, job_id)
        response = self.handle.run_task.remote(name, job_id)
        try:
            response.result()
        except BaseException as exc:
            response.cancel()  # a killed or retried task must not leave the work running
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None  # the engine's own error, not Ray's remote traceback
            raise


def connect_ray(address: str, timeout: float = 90.0, pause: float = 2.0) -> None:
    """Join the Ray cluster at ``address``, retrying while its raylet is still starting.

    ``scene3d up`` starts the Serve driver once the head's GCS port answers; on a busy
    machine the head's raylet can register a few seconds later, and ``ray.init`` gives up
    at once when it finds no raylet on this node."""
    import ray

    if ray.is_initialized():
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            ray.init(address=address, namespace=SERVE_APP, logging_level=logging.WARNING)
            return
        except (ConnectionError, RuntimeError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("Ray at %s not ready yet (%s); retrying", address, exc)
            ray.shutdown()
            time.sleep(pause)


def remote_worker(settings: Settings) -> RemoteModelWorker:
    """The model worker of the Ray cluster ``settings.ray_address`` names."""
    from ray import serve

    connect_ray(settings.ray_address)
    return RemoteModelWorker(serve.get_deployment_handle(WORKER_DEPLOYMENT, app_name=SERVE_APP))
