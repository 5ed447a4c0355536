"""The model worker seam: what loads the model and does the GPU-heavy work, and how to reach it.

- :class:`ModelWorker` is what the API needs of a worker: its status for ``/ready``, and
  the model it serves, which a new job is pinned to.
- :class:`LocalModelWorker` lives in the calling process (``scene3d serve``, tests, and
  inside the Serve deployment ``api.serve.ModelWorkerDeployment``) and follows the
  registry's ``champion`` alias.
- :class:`RemoteModelWorker` talks to that deployment through a Serve handle: its status,
  its model, and running one job task next to the model (:meth:`RemoteModelWorker.run_task`).
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

from scene3d import registry
from scene3d.served import ServedModel
from scene3d.settings import Settings

log = logging.getLogger(__name__)

SERVE_APP = "scene3d"
"""The Ray Serve application (and Ray namespace) of the gateway and the model worker."""
WORKER_DEPLOYMENT = "ModelWorker"
"""Serve deployment that loads the model and runs the GPU-heavy tasks."""
GATEWAY_DEPLOYMENT = "Gateway"
"""Serve deployment that serves the FastAPI app."""
MODEL_LOAD_WAIT_SECONDS = 30.0
"""How long an upload arriving as the worker starts waits for the first model to load."""


@dataclass(frozen=True)
class WorkerStatus:
    ready: bool
    device: str
    reason: str = ""
    model: str = ""
    """The model the worker serves: the registered model's name, or ``preset:<name>``."""
    version: str | None = None
    """The registered version it serves; None for a preset."""
    note: str = ""
    """Why the served model may be out of date (MLflow unreachable, a version that did not
    load); the worker goes on serving what it has."""


class ModelNotReady(RuntimeError):
    """The worker has no model to hand out yet."""


class ModelWorker(Protocol):
    def status(self) -> WorkerStatus: ...

    def served(self) -> ServedModel:
        """The model a new job runs with; :class:`ModelNotReady` before one loaded."""
        ...


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
    """Serves the registry's ``champion`` (without a registry: the default preset).

    A background thread loads it, then looks at the alias every ``poll_seconds`` and loads
    the version it names by number when it moved: no restart. Jobs pin the model they
    start with (the API writes it into the job's folder), so running jobs keep theirs.
    When MLflow stops answering, the worker keeps serving what it has and says so in
    :attr:`WorkerStatus.note`.
    """

    def __init__(self, settings: Settings, poll_seconds: float | None = None) -> None:
        self.settings = settings
        self.poll_seconds = settings.model_poll_seconds if poll_seconds is None else poll_seconds
        self._model: ServedModel | None = None
        self._problem = ""
        self._device = "unknown"
        self._loaded = threading.Event()
        """Set once the first attempt ended, loaded or not."""
        self._stop = threading.Event()
        # MLflow retries a failed request for minutes by default; the worker polls again
        # soon anyway, and /ready should say that MLflow is gone while it is.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        threading.Thread(target=self._run, name="model-loader", daemon=True).start()

    def _run(self) -> None:
        self._device = describe_device()
        while True:
            self.refresh()
            self._loaded.set()
            if self._stop.wait(self.poll_seconds):
                return

    def refresh(self) -> None:
        """Load the model to serve now where it changed; a failure keeps the one served."""
        try:
            self._model = self._current()
            self._problem = ""
        except Exception as exc:  # reported through /ready, never raised into requests
            self._problem = str(exc)
            log.warning("model worker: %s", exc)

    def _current(self) -> ServedModel:
        if not self.settings.mlflow_tracking_uri:
            return self._model or ServedModel.from_preset(self.settings.default_preset)
        version = registry.champion_version(self.settings)
        if self._model is not None and self._model.version == version:
            return self._model
        model = registry.load_version(self.settings, version)
        log.info("model worker: serving %s", model.label)
        return model

    def wait(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def close(self) -> None:
        """Stop polling (tests; a replica's thread dies with its process)."""
        self._stop.set()

    def served(self) -> ServedModel:
        self._loaded.wait(MODEL_LOAD_WAIT_SECONDS)
        if self._model is None:
            raise ModelNotReady(self._problem or "model worker is still loading the model")
        return self._model

    def status(self) -> WorkerStatus:
        model = self._model
        if model is None:
            reason = self._problem or "model worker is still loading the model"
            return WorkerStatus(False, self._device, reason)
        note = f"keeps serving {model.label}: {self._problem}" if self._problem else ""
        return WorkerStatus(True, self._device, "", model.name, model.version, note)


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

    def served(self) -> ServedModel:
        try:
            # the worker may wait for its first model: the call gets that wait on top
            wait = self.timeout + MODEL_LOAD_WAIT_SECONDS
            data = self.handle.served.remote().result(timeout_s=wait)
        except Exception as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ModelNotReady):
                raise cause from None
            raise ModelNotReady(f"model worker unreachable: {type(exc).__name__}") from None
        return ServedModel.from_dict(data)

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
