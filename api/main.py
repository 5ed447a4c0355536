"""The FastAPI app factory. Ray Serve and the tests build the app through
:func:`create_app`; no module-level app object exists, so every replica builds
its own (with its own metrics registry) instead of receiving a pickled copy.

:func:`create_app` only assembles what it is given (defaults: what the settings name).
Start-up work (migrations, the first admin, resuming jobs) is done once per platform by
:mod:`scene3d.runtime`; :func:`create_standalone_app` is ``scene3d serve``'s single process.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.background import lifespan_for
from api.deps import RETRY_LATER, STORE_BUSY, AppContext
from api.limits import ORCHESTRATOR_SLOTS, WorkPool
from api.metrics import ApiMetrics, install_metrics_middleware
from api.quotas import DriftCheckQuota
from api.routes import auth, downloads, drift, health, jobs
from scene3d import __version__, runtime
from scene3d.orchestrator import Orchestrator
from scene3d.security import LoginThrottle
from scene3d.settings import Settings
from scene3d.store import JobStore
from scene3d.worker import LocalModelWorker, ModelWorker

log = logging.getLogger(__name__)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return "Invalid request: " + "; ".join(parts)


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # /docs is FastAPI's Swagger UI: its script and styles come from jsDelivr, with an
    # inline start-up script; nothing else may load, and no page may frame the API.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
        "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}
"""Sent with every response."""


class SecurityHeaders:
    """Every response carries :data:`SECURITY_HEADERS`; tokens are never cached. A plain
    ASGI middleware (no extra task per request, as ``BaseHTTPMiddleware`` would add)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(self.headers)
        if scope["path"] == "/auth/token":
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security_headers(app: FastAPI) -> None:
    app.add_middleware(SecurityHeaders)


_PASSING_ERRORS = ("locked", "busy", "could not connect", "connection", "timeout", "closed")


def _passing(exc: OperationalError) -> bool:
    """Whether a database error is one a retry may cure (a lock, a lost connection)."""
    text = str(exc.orig).lower()
    return exc.connection_invalidated or any(word in text for word in _PASSING_ERRORS)


def install_error_handlers(app: FastAPI) -> None:
    """Every error is ``{"detail": "..."}``; no stack traces or server paths leak."""

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status.HTTP_400_BAD_REQUEST)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def store_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # A locked SQLite file or a PostgreSQL server that went away: the server's trouble,
        # passing; the client may retry. Anything else (a missing table, say) is a 500 that a
        # retry would not cure. Details go to the log only.
        if not _passing(exc):
            log.exception("job store error on %s %s", request.method, request.url.path)
            return JSONResponse({"detail": "Internal server error"}, 500)
        log.warning("job store unavailable on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": STORE_BUSY}, status.HTTP_503_SERVICE_UNAVAILABLE, headers=RETRY_LATER
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "Internal server error"}, 500)


def create_app(
    settings: Settings | None = None,
    *,
    store: JobStore | None = None,
    orchestrator: Orchestrator | None = None,
    worker: ModelWorker | None = None,
) -> FastAPI:
    """Assemble the API. Defaults: settings from the environment (with the secrets this
    process finds: it signs tokens), the store they name (already migrated by
    :func:`scene3d.runtime.prepare`), the orchestrator they name and an in-process model
    worker."""
    settings = (settings or Settings.from_env()).load_secrets()
    store = store or JobStore(settings.database_url)
    orchestrator = orchestrator or runtime.orchestrator_for(settings, store)
    worker = worker or LocalModelWorker(settings)
    metrics = ApiMetrics(store, worker, settings)

    ctx = AppContext(
        settings=settings,
        store=store,
        orchestrator=orchestrator,
        worker=worker,
        metrics=metrics,
        login_limiter=LoginThrottle(
            settings.login_max_failures,
            settings.login_max_failures_wide,
            settings.login_window_seconds,
        ),
        heavy=WorkPool(settings.max_heavy_requests, "checks", reject_when_full=True),
        orchestrator_calls=WorkPool(
            ORCHESTRATOR_SLOTS, "orchestrator calls", reject_when_full=False
        ),
        drift_quota=DriftCheckQuota(settings),
    )
    app = FastAPI(
        title="scene3d API",
        version=__version__,
        description="Photo collections in, camera poses and point clouds out.",
        lifespan=lifespan_for(ctx),
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    install_security_headers(app)
    install_metrics_middleware(app, metrics)
    for module in (auth, health, jobs, downloads, drift):
        app.include_router(module.router)
    return app


def create_standalone_app() -> FastAPI:
    """``scene3d serve``: the platform's one API process (jobs in local threads unless the
    settings name an Airflow); it resumes the jobs a previous run left unfinished (the
    caller ran :func:`scene3d.runtime.prepare`)."""
    app = create_app()
    ctx = app.state.ctx
    runtime.resume_unfinished(ctx.orchestrator, ctx.store)
    return app
