"""Downloads of a finished job: all PLY as a ZIP, the IMC2025 CSV, or one named PLY.

Only files the job itself produced are served: a requested name must be one of
the names in the job's PLY folder, so no path, link or other job's file can be
reached by a crafted filename.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

from api.deps import ContextDep, OwnedJob
from api.schemas import ErrorPublic
from scene3d.jobs.paths import JobFolder, job_folder
from scene3d.store import JobRecord

router = APIRouter(tags=["downloads"])

_PLY_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.ply$")
_RESPONSES = {404: {"model": ErrorPublic}, 409: {"model": ErrorPublic}}


def _finished_files(job: JobRecord, ctx: ContextDep) -> JobFolder:
    if job.stage != "success":
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"Job is not complete yet (stage: {job.stage})"
        )
    return job_folder(ctx.settings, job.id)


def _ply_files(files: JobFolder) -> list[Path]:
    if not files.run.ply.is_dir():
        return []
    return sorted(
        p
        for p in files.run.ply.iterdir()
        if p.is_file() and not p.is_symlink() and p.suffix == ".ply"
    )


def _zip_of(plys: list[Path], target: Path) -> Path:
    """Build the archive once and reuse it while it is newer than every PLY (a rerun of
    the job's export rewrites them). Each builder writes its own temporary file and renames
    it into place, so concurrent first requests never interleave their writes. PLY is
    binary: stored, not deflated."""
    newest = max(p.stat().st_mtime_ns for p in plys)
    if target.exists() and target.stat().st_mtime_ns >= newest:
        return target
    fd, tmp = tempfile.mkstemp(prefix=".point_clouds-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
            for ply in plys:
                zf.write(ply, ply.name)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


@router.get(
    "/download/jobs/{job_id}",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}, **_RESPONSES},
)
def download_all(job: OwnedJob, ctx: ContextDep) -> FileResponse:
    """Every PLY of the job in one ZIP."""
    files = _finished_files(job, ctx)
    plys = _ply_files(files)
    if not plys:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "No point cloud: the job produced no points")
    archive = _zip_of(plys, files.root / "point_clouds.zip")
    return FileResponse(
        archive, media_type="application/zip", filename=f"{job.id}_point_clouds.zip"
    )


@router.get(
    "/download/jobs/{job_id}/csv",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}}}, **_RESPONSES},
)
def download_csv(job: OwnedJob, ctx: ContextDep) -> FileResponse:
    """The IMC2025 submission CSV."""
    files = _finished_files(job, ctx)
    if not files.run.submission.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "CSV not available")
    return FileResponse(
        files.run.submission, media_type="text/csv", filename=f"{job.id}_submission.csv"
    )


@router.get(
    "/download/jobs/{job_id}/{filename}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **_RESPONSES},
)
def download_one(filename: str, job: OwnedJob, ctx: ContextDep) -> FileResponse:
    """One named PLY file of the job."""
    files = _finished_files(job, ctx)
    by_name = {p.name: p for p in _ply_files(files)}
    if not _PLY_NAME.match(filename) or filename not in by_name:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "PLY file not found")
    return FileResponse(by_name[filename], media_type="application/octet-stream", filename=filename)
