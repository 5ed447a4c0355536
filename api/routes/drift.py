"""Drift: check a ZIP without reconstructing it; trigger retraining."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, status

from api.deps import UNREACHABLE, AdminUser, ContextDep, CurrentUser
from api.schemas import DriftReportPublic, ErrorPublic, RetrainPublic
from api.uploads import multipart_openapi, receive_upload
from drift.service import drift_for_zip
from pipeline.errors import IngestError
from scene3d.jobs.paths import spool_dir
from scene3d.orchestrator import OrchestratorUnavailable

log = logging.getLogger(__name__)
router = APIRouter(tags=["drift"])


@router.post(
    "/drift",
    response_model=DriftReportPublic,
    responses={
        400: {"model": ErrorPublic},
        408: {"model": ErrorPublic},
        413: {"model": ErrorPublic},
        429: {"model": ErrorPublic},
        503: {"model": ErrorPublic},
        507: {"model": ErrorPublic},
    },
    openapi_extra=multipart_openapi(),
)
async def check_drift(request: Request, ctx: ContextDep, user: CurrentUser) -> DriftReportPublic:
    """Per-feature drift flags and a severity for the photos in a ZIP; nothing is stored."""
    ctx.drift_quota.take(user)
    parsed = await receive_upload(
        request,
        spool_dir(ctx.settings),
        ctx.settings.max_upload_bytes,
        read_timeout=ctx.settings.upload_read_timeout_seconds,
    )
    try:
        report = await ctx.heavy.run(
            drift_for_zip, parsed.path, ctx.settings.drift_reference, ctx.settings.scratch_dir
        )
    except IngestError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    finally:
        parsed.discard()
    return DriftReportPublic.model_validate(report)


@router.post(
    "/drift/trigger-retrain",
    response_model=RetrainPublic,
    responses={403: {"model": ErrorPublic}, 502: {"model": ErrorPublic}},
)
async def trigger_retrain(ctx: ContextDep, user: AdminUser) -> RetrainPublic:
    """Start Airflow's ``experiment_pipeline_dag`` (admins only: it retrains the model)."""
    try:
        run_id = await ctx.orchestrator_calls.run(ctx.orchestrator.trigger_retrain)
    except OrchestratorUnavailable as exc:
        log.warning("retraining requested by %s could not start: %s", user.username, exc)
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, UNREACHABLE) from None
    return RetrainPublic(run_id=run_id)
