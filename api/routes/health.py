"""Unauthenticated probes: /health, /ready, /metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Response, status

from api.deps import ContextDep
from api.schemas import ErrorPublic, HealthPublic, ReadyPublic
from scene3d import __version__

router = APIRouter(tags=["probes"])


@router.get("/health", response_model=HealthPublic)
async def health() -> HealthPublic:
    """Liveness: the process answers (on the event loop: no thread needed, so it answers
    however busy the thread pools are)."""
    return HealthPublic(version=__version__, timestamp=time.time())


@router.get("/ready", response_model=ReadyPublic, responses={503: {"model": ErrorPublic}})
def ready(ctx: ContextDep) -> ReadyPublic:
    """Readiness: the model worker has loaded its model; reports its device."""
    state = ctx.worker.status()
    if not state.ready:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, state.reason or "not ready")
    return ReadyPublic(
        device=state.device,
        model=state.model,
        model_version=state.version,
        note=state.note or None,
    )


@router.get("/metrics", response_class=Response)
def metrics(ctx: ContextDep) -> Response:
    """Prometheus text format; job metrics are read from the job store now."""
    return Response(ctx.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
