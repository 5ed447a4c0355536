"""Drift: check a ZIP without reconstructing it; trigger retraining."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from api.deps import ContextDep, CurrentUser
from api.schemas import DriftReportPublic, ErrorPublic, RetrainPublic
from api.uploads import multipart_openapi, receive_upload
from drift.service import drift_for_zip
from pipeline.errors import IngestError
from scene3d.orchestrator import OrchestratorUnavailable

router = APIRouter(tags=["drift"])


@router.post(
    "/drift",
    response_model=DriftReportPublic,
    responses={400: {"model": ErrorPublic}, 413: {"model": ErrorPublic}},
    openapi_extra=multipart_openapi(),
)
async def check_drift(request: Request, ctx: ContextDep, user: CurrentUser) -> DriftReportPublic:
    """Per-feature drift flags and a severity for the photos in a ZIP; nothing is stored."""
    parsed = await receive_upload(
        request, ctx.settings.jobs_dir / ".incoming", ctx.settings.max_upload_bytes
    )
    try:
        report = await run_in_threadpool(
            drift_for_zip, parsed.path, ctx.settings.drift_reference, ctx.settings.scratch_dir
        )
    except IngestError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    finally:
        parsed.discard()
    return DriftReportPublic.model_validate(report)


@router.post(
    "/drift/trigger-retrain", response_model=RetrainPublic, responses={502: {"model": ErrorPublic}}
)
def trigger_retrain(ctx: ContextDep, user: CurrentUser) -> RetrainPublic:
    """Start Airflow's ``experiment_pipeline_dag``."""
    try:
        run_id = ctx.orchestrator.trigger_retrain()
    except OrchestratorUnavailable as exc:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, f"Airflow API unreachable: {exc}"
        ) from None
    return RetrainPublic(run_id=run_id)
