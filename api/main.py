"""The FastAPI app factory. Ray Serve and the tests build the app through
:func:`create_app`; no module-level app object exists, so every replica builds
its own (with its own metrics registry) instead of receiving a pickled copy.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.deps import AppContext
from api.metrics import ApiMetrics, install_metrics_middleware
from api.routes import auth, downloads, drift, health, jobs
from scene3d import __version__
from scene3d.bootstrap import ensure_admin
from scene3d.jobs import run_reconstruction_job
from scene3d.orchestrator import LocalOrchestrator, Orchestrator
from scene3d.security import LoginRateLimiter
from scene3d.settings import Settings
from scene3d.store import TERMINAL_STAGES, JobStore
from scene3d.worker import LocalModelWorker, ModelWorker

log = logging.getLogger(__name__)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return "Invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Every error is ``{"detail": "..."}``; no stack traces or server paths leak."""

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status.HTTP_400_BAD_REQUEST)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "Internal server error"}, 500)


def default_orchestrator(settings: Settings, store: JobStore) -> Orchestrator:
    """Airflow when the platform runs it (``SCENE3D_AIRFLOW_URL``), else local threads."""
    url = os.environ.get("SCENE3D_AIRFLOW_URL")
    if url:
        from scene3d.airflow import AIRFLOW_USER, airflow_password
        from scene3d.airflow_client import AirflowOrchestrator

        return AirflowOrchestrator(url, AIRFLOW_USER, airflow_password(settings))
    local = LocalOrchestrator(lambda job_id: run_reconstruction_job(job_id, store, settings))
    # Jobs this process was running when it stopped would otherwise stay active forever;
    # the tasks resume from their files, so starting them again finishes them.
    for job in store.list_jobs():
        if job.stage not in TERMINAL_STAGES:
            log.info("resuming unfinished job %s (stage %s)", job.id, job.stage)
            local.trigger_reconstruction(job.id)
    return local


def create_app(
    settings: Settings | None = None,
    *,
    store: JobStore | None = None,
    orchestrator: Orchestrator | None = None,
    worker: ModelWorker | None = None,
) -> FastAPI:
    """Build the API. Defaults: settings from the environment, the store they name
    (migrated), a local threaded orchestrator and an in-process model worker."""
    settings = settings or Settings.from_env()
    store = store or JobStore(settings.database_url)
    store.migrate()
    generated = ensure_admin(store, settings)
    if generated:
        log.warning(
            "created user 'admin' with a generated password, stored in %s",
            settings.secrets_dir / "admin_password",
        )
    orchestrator = orchestrator or default_orchestrator(settings, store)
    worker = worker or LocalModelWorker(settings.default_preset)
    metrics = ApiMetrics(store, worker)

    app = FastAPI(
        title="scene3d API",
        version=__version__,
        description="Photo collections in, camera poses and point clouds out.",
    )
    app.state.ctx = AppContext(
        settings=settings,
        store=store,
        orchestrator=orchestrator,
        worker=worker,
        metrics=metrics,
        login_limiter=LoginRateLimiter(settings.login_max_failures, settings.login_window_seconds),
    )
    install_error_handlers(app)
    install_metrics_middleware(app, metrics)
    for module in (auth, health, jobs, downloads, drift):
        app.include_router(module.router)
    return app
