"""Drift: check a ZIP without reconstructing it, a job's Evidently report, retraining."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse

from api.deps import UNREACHABLE, AdminUser, ContextDep, CurrentUser, OwnedJob
from api.schemas import DriftReportPublic, ErrorPublic, RetrainPublic
from api.uploads import multipart_openapi, receive_upload
from drift.service import drift_for_zip
from pipeline.errors import IngestError
from scene3d.jobs.drift_check import HTML_FILE, reference_for
from scene3d.jobs.paths import job_folder, spool_dir
from scene3d.orchestrator import OrchestratorUnavailable
from scene3d.worker import ModelNotReady

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
        report = await ctx.heavy.run(_check, ctx, parsed.path)
    except IngestError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    finally:
        parsed.discard()
    return DriftReportPublic.model_validate(report)


def _check(ctx: ContextDep, archive: Path) -> dict[str, Any]:
    """The archive against the reference of the model an upload would run with now (the
    platform's own when no model is ready); in the bounded pool, since finding the
    reference may wait on the model worker or MLflow."""
    try:
        version = ctx.worker.served().version
    except ModelNotReady:
        version = None
    reference = reference_for(ctx.settings, version)
    return drift_for_zip(archive, reference, ctx.settings.drift_rules(), ctx.settings.scratch_dir)


@router.get(
    "/jobs/{job_id}/drift-report",
    response_class=FileResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "Evidently's HTML report"},
        404: {"model": ErrorPublic},
    },
)
def drift_report_html(job: OwnedJob, ctx: ContextDep) -> FileResponse:
    """Evidently's HTML report of the job's drift check (owner or admin only). It holds
    scripts, so it is sent as a download to open locally, not rendered under the API."""
    path = job_folder(ctx.settings, job.id).drift / HTML_FILE
    if not path.is_file():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "No drift report for this job: its drift check has not run yet, or there was no "
            "reference profile to compare with",
        )
    return FileResponse(path, media_type="text/html", filename=f"drift_report_{job.id}.html")


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
