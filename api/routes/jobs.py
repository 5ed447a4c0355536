"""Jobs: upload a ZIP, follow its status, read clusters and insights."""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from starlette.concurrency import run_in_threadpool

from api.deps import UNREACHABLE, ContextDep, CurrentUser, OwnedJob
from api.quotas import check_upload_quota, job_quota, quota_refused
from api.schemas import (
    ClusterPublic,
    ClustersPublic,
    DriftReportPublic,
    ErrorPublic,
    InsightsPublic,
    JobPublic,
    JobsPublic,
    JobSummaryPublic,
    Stage,
    UploadPublic,
)
from api.uploads import multipart_openapi, receive_upload, storage_error
from drift.report import recommendation, stored_report
from pipeline.errors import IngestError
from pipeline.ingest import probe_zip
from scene3d.jobs.paths import job_folder, spool_dir
from scene3d.orchestrator import OrchestratorUnavailable
from scene3d.store import START_FAILED, JobRecord, QuotaExceededError
from scene3d.worker import ModelNotReady

log = logging.getLogger(__name__)
router = APIRouter(tags=["jobs"])

_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NOT_FOUND = {404: {"model": ErrorPublic}}


def _slug(value: str | None, field: str, default: str) -> str:
    value = (value or "").strip() or default
    if not _SLUG.match(value) or ".." in value:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"{field} must be 1-64 letters, digits, '_', '-' or '.', starting with a letter "
            "or digit",
        )
    return value


def job_public(job: JobRecord) -> JobPublic:
    return JobPublic(
        job_id=job.id,
        stage=job.stage,
        status=job.stage,
        progress=job.progress,
        message=job.message or "",
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        n_images=job.n_images or 0,
        n_points=job.n_points or 0,
        registration_rate=job.registration_rate,
        error=job.error,
        download_url=f"/download/jobs/{job.id}" if job.stage == "success" else None,
        has_drift=bool(job.has_drift),
        drift_severity=job.drift_severity or "low",
        model_name=job.model_name,
        model_version=job.model_version,
    )


@router.post(
    "/upload",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadPublic,
    responses={
        400: {"model": ErrorPublic},
        408: {"model": ErrorPublic},
        413: {"model": ErrorPublic},
        429: {"model": ErrorPublic},
        502: {"model": ErrorPublic},
        503: {"model": ErrorPublic},
        507: {"model": ErrorPublic},
    },
    openapi_extra=multipart_openapi(dataset_name="custom", scene_name="scene_01"),
)
async def upload(request: Request, ctx: ContextDep, user: CurrentUser) -> UploadPublic:
    """Stream the ZIP to disk under the size cap, check it with the engine's ingest rules,
    record a ``queued`` job and hand it to the orchestrator."""
    await run_in_threadpool(check_upload_quota, user, ctx.store, ctx.settings)
    # The job is pinned to the model served now: all its tasks run with that configuration.
    try:
        model = await run_in_threadpool(ctx.worker.served)
    except ModelNotReady as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    spool = spool_dir(ctx.settings)
    parsed = await receive_upload(
        request,
        spool,
        ctx.settings.max_upload_bytes,
        read_timeout=ctx.settings.upload_read_timeout_seconds,
    )
    try:
        dataset = _slug(parsed.fields.get("dataset_name"), "dataset_name", "custom")
        scene = _slug(parsed.fields.get("scene_name"), "scene_name", "scene_01")
        try:  # with the rules the job's extraction applies
            await ctx.heavy.run(probe_zip, parsed.path, model.config.ingest)
        except IngestError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        job_id = str(uuid.uuid4())
        files = job_folder(ctx.settings, job_id)
        try:
            files.root.mkdir(parents=True)
            shutil.move(parsed.path, files.upload)
            model.write(files.model)
        except OSError as exc:
            shutil.rmtree(files.root, ignore_errors=True)
            raise storage_error(exc) from exc
    finally:
        parsed.discard()
    try:
        await run_in_threadpool(
            ctx.store.create_job,
            job_id,
            user.id,
            dataset,
            scene,
            preset=model.config.name,
            model_name=model.name,
            model_version=model.version,
            quota=job_quota(user, ctx.settings),
        )
    except QuotaExceededError as exc:
        shutil.rmtree(files.root, ignore_errors=True)
        raise quota_refused(str(exc)) from None
    except BaseException:
        # No row, no folder: a job either exists whole or not at all (a locked database
        # answers 503 through the app's handler, and the client may send it again).
        shutil.rmtree(files.root, ignore_errors=True)
        raise
    try:
        await ctx.orchestrator_calls.run(ctx.orchestrator.trigger_reconstruction, job_id)
    except OrchestratorUnavailable as exc:
        log.warning("job %s could not start: %s", job_id, exc)
        await run_in_threadpool(ctx.store.mark_failed, job_id, f"{START_FAILED}: {UNREACHABLE}")
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, UNREACHABLE) from None
    except Exception:
        log.exception("starting job %s failed", job_id)
        await run_in_threadpool(ctx.store.mark_failed, job_id, f"{START_FAILED} the pipeline")
        raise
    return UploadPublic(job_id=job_id)


@router.get("/jobs", response_model=JobsPublic, responses={403: {"model": ErrorPublic}})
def list_jobs(
    ctx: ContextDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Jobs to skip")] = 0,
    stage: Annotated[Stage | None, Query(description="Only jobs in this stage")] = None,
    owner: Annotated[
        str | None, Query(max_length=64, description="Only this user's jobs (admins)")
    ] = None,
) -> JobsPublic:
    """The caller's jobs, newest first (admins: everyone's, or ``owner``'s)."""
    names = {u.id: u.username for u in ctx.store.list_users()} if user.is_admin else {}
    if not user.is_admin:
        if owner not in (None, user.username):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Only admins list other users' jobs")
        owner_id: int | None = user.id
        names[user.id] = user.username
    elif owner is not None:
        found = ctx.store.get_user(owner)
        if found is None:
            return JobsPublic(jobs=[], total=0, limit=limit, offset=offset)
        owner_id = found.id
    else:
        owner_id = None
    jobs, total = ctx.store.page_jobs(owner_id, stage, limit, offset)
    return JobsPublic(
        jobs=[
            JobSummaryPublic(**job_public(job).model_dump(), owner=names.get(job.owner_id, "?"))
            for job in jobs
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/status/{job_id}", response_model=JobPublic, responses=_NOT_FOUND)
def get_status(job: OwnedJob) -> JobPublic:
    """Stage, progress and counts of a job."""
    return job_public(job)


@router.get("/jobs/{job_id}", response_model=JobPublic, responses=_NOT_FOUND)
def get_job(job: OwnedJob) -> JobPublic:
    """Same as ``GET /status/{job_id}``."""
    return job_public(job)


@router.get("/clusters/{job_id}", response_model=ClustersPublic, responses=_NOT_FOUND)
def get_clusters(job: OwnedJob, ctx: ContextDep) -> ClustersPublic:
    """Per-cluster statistics; empty until the job succeeded."""
    return ClustersPublic(
        clusters=[
            ClusterPublic(
                id=c.cluster_id, name=c.name, num_points3D=c.num_points3D, filename=c.filename
            )
            for c in ctx.store.get_clusters(job.id)
        ]
    )


@router.get("/jobs/{job_id}/insights", response_model=InsightsPublic, responses=_NOT_FOUND)
def get_insights(job: OwnedJob) -> InsightsPublic:
    """Reconstruction and drift insights with a plain-language recommendation."""
    severity = job.drift_severity or "low"
    if job.drift_report:
        report, advice = stored_report(job.drift_report), recommendation(severity)
    else:
        reason = "the drift check has not run yet"
        report = {"drift_detected": False, "severity": severity, "checks": {}, "reason": reason}
        advice = f"No verdict yet: {reason}."
    return InsightsPublic(
        registration_rate=job.registration_rate,
        n_points=job.n_points or 0,
        has_drift=bool(job.has_drift),
        drift_severity=severity,
        drift_report=DriftReportPublic.model_validate(report),
        recommendation=advice,
        model_name=job.model_name,
        model_version=job.model_version,
    )
