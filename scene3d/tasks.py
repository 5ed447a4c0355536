"""The reconstruction of one job as separate, idempotent tasks.

Airflow's ``reconstruction_dag`` runs each function as one task; the local
orchestrator runs the same functions in order (:func:`run_all`). Every task
- calls the engine step that resumes from its files (a retry gives the same files),
- writes only inside the job's folder,
- records stage, progress and message through the store's monotonic update,
- adds its wall time to ``work/timings.json``.
"""

from __future__ import annotations

import csv
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import PipelineConfig
from pipeline.errors import ReconstructionError
from pipeline.ingest import IngestResult, load_manifest
from pipeline.presets import load_preset
from pipeline.progress import CancelToken
from pipeline.reconstruct import (
    JobPaths,
    run_export,
    run_features,
    run_ingest,
    run_mapping,
    run_matching,
    run_pairs,
    step_progress,
)
from scene3d.jobs import STAGE_SPAN, ProgressWriter, check_drift, job_files
from scene3d.settings import Settings
from scene3d.store import STAGE_PROGRESS, JobRecord, JobStore

log = logging.getLogger(__name__)


@dataclass
class TaskContext:
    job: JobRecord
    store: JobStore
    settings: Settings
    paths: JobPaths
    upload: Path
    config: PipelineConfig

    def progress(self) -> ProgressWriter:
        return ProgressWriter(self.store, self.job.id)

    def images(self) -> IngestResult:
        return load_manifest(self.paths.images)


def _context(job_id: str, store: JobStore, settings: Settings) -> TaskContext:
    job = store.get_job(job_id)
    if job is None:
        raise ReconstructionError(f"job {job_id} does not exist")
    files = job_files(settings, job_id)
    preset = job.preset or settings.default_preset
    return TaskContext(job, store, settings, files.engine, files.upload, load_preset(preset))


@contextmanager
def _timed(ctx: TaskContext, step: str):
    start = time.perf_counter()
    yield
    path = ctx.paths.root / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings[step] = round(time.perf_counter() - start, 3)  # a retry replaces, never adds
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(timings, indent=2))
    tmp.replace(path)


def extract(job_id: str, store: JobStore, settings: Settings) -> None:
    """Validate and unpack the upload into ``work/images``; record image counts."""
    ctx = _context(job_id, store, settings)
    ctx.paths.root.mkdir(parents=True, exist_ok=True)
    store.update_progress(job_id, "extracting", STAGE_PROGRESS["extracting"], "Unpacking the ZIP")
    with _timed(ctx, "ingest"):
        result = run_ingest(ctx.upload, ctx.paths, ctx.config, ctx.progress(), CancelToken())
    store.update_progress(
        job_id,
        "extracting",
        STAGE_SPAN["extracting"][1],
        f"{len(result.images)} valid images, {len(result.skipped)} skipped",
        n_images=len(result.images) + len(result.skipped),
        n_valid_images=len(result.images),
    )


def drift_check(job_id: str, store: JobStore, settings: Settings) -> None:
    """Compare the job's photos with the reference profile (advisory, never fails)."""
    ctx = _context(job_id, store, settings)
    with _timed(ctx, "drift"):
        check_drift(store, job_id, settings, [rec.path for rec in ctx.images().images])


def matching(job_id: str, store: JobStore, settings: Settings) -> None:
    """Local features, pair selection and verified matches (the GPU-heavy part).

    With a Ray cluster configured (``SCENE3D_RAY_ADDRESS``) the model worker runs it,
    next to the loaded model and the GPU; otherwise it runs here. Both call
    :func:`matching_local`, so the files and results are the same.
    """
    store.update_progress(job_id, "matching", STAGE_PROGRESS["matching"], "Extracting features")
    address = os.environ.get("SCENE3D_RAY_ADDRESS")
    if address:
        _run_on_worker(address, "matching", job_id)
    else:
        matching_local(job_id, store, settings)


def _run_on_worker(address: str, name: str, job_id: str) -> None:
    import ray
    from ray import serve

    from api.serve import APP_NAME, WORKER_NAME

    if not ray.is_initialized():
        ray.init(address=address, namespace=APP_NAME, logging_level=logging.WARNING)
    handle = serve.get_deployment_handle(WORKER_NAME, app_name=APP_NAME)
    log.info("running %s of job %s on the model worker", name, job_id)
    response = handle.run_task.remote(name, job_id)
    try:
        response.result()
    except BaseException as exc:
        response.cancel()  # a killed or retried task must not leave the work running
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None  # the engine's own error, not Ray's remote traceback
        raise


def matching_local(job_id: str, store: JobStore, settings: Settings) -> None:
    """Features and matching in this process; one run at a time per job (file lock), so
    a retry that overlaps an abandoned attempt waits instead of sharing the database."""
    ctx = _context(job_id, store, settings)
    images = ctx.images().images
    progress = ctx.progress()
    ctx.paths.root.mkdir(parents=True, exist_ok=True)
    with (ctx.paths.root / ".matching.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with _timed(ctx, "features"):
            run_features(
                ctx.paths, images, ctx.config, step_progress("features", progress), CancelToken()
            )
        with _timed(ctx, "matching"):
            pairs = run_pairs(ctx.paths, images, ctx.config)
            run_matching(
                ctx.paths, pairs, ctx.config, step_progress("matching", progress), CancelToken()
            )


def triangulate(job_id: str, store: JobStore, settings: Settings) -> None:
    """Scene split and structure from motion; every model kept."""
    ctx = _context(job_id, store, settings)
    store.update_progress(
        job_id, "triangulating", STAGE_PROGRESS["triangulating"], "Structure from motion"
    )
    with _timed(ctx, "mapping"):
        run_mapping(ctx.paths, ctx.images().images, ctx.config, ctx.progress(), CancelToken())


def decimate(job_id: str, store: JobStore, settings: Settings) -> None:
    """Point clouds (raw and voxel-decimated), the IMC2025 CSV and ``clusters.json``."""
    ctx = _context(job_id, store, settings)
    store.update_progress(job_id, "decimating", STAGE_PROGRESS["decimating"], "Point clouds")
    images = ctx.images().images  # read the manifest once
    models = run_mapping(ctx.paths, images, ctx.config, ctx.progress(), CancelToken())
    with _timed(ctx, "export"):
        run_export(
            ctx.paths, images, models, ctx.job.dataset_name, job_id, ctx.config, ctx.progress()
        )


@dataclass
class JobSummary:
    n_images: int
    n_registered: int
    n_points: int
    clusters: list[dict]
    timings: dict[str, float]

    @property
    def registration_rate(self) -> float:
        return self.n_registered / self.n_images if self.n_images else 0.0


def summarize(paths: JobPaths) -> JobSummary:
    """Counts read back from the files the earlier tasks wrote."""
    with paths.submission.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    clusters = json.loads(paths.clusters.read_text())["clusters"]
    timings_path = paths.root / "timings.json"
    return JobSummary(
        n_images=len(rows),
        n_registered=sum(r["scene"] != "outliers" for r in rows),
        n_points=sum(c["num_points3D"] for c in clusters),
        clusters=clusters,
        timings=json.loads(timings_path.read_text()) if timings_path.exists() else {},
    )


def export(job_id: str, store: JobStore, settings: Settings) -> None:
    """Record the results in the store (and MLflow), then mark the job successful."""
    ctx = _context(job_id, store, settings)
    summary = summarize(ctx.paths)
    if not summary.clusters:
        raise ReconstructionError(
            f"no scene could be reconstructed: none of the {summary.n_images} images could be "
            "matched into a model (too few images of one place, or too little texture)"
        )
    store.replace_clusters(job_id, summary.clusters)
    from scene3d.tracking import log_job_run

    try:
        log_job_run(settings, ctx.job, ctx.paths, summary)
    except Exception:  # tracking is a record of the job, not part of it: never lose results
        log.exception("could not log job %s to MLflow", job_id)
    applied = store.update_progress(
        job_id,
        "success",
        STAGE_PROGRESS["success"],
        f"Reconstruction complete: {summary.n_registered}/{summary.n_images} images registered "
        f"in {len(summary.clusters)} clusters",
        n_points=summary.n_points,
        registration_rate=round(summary.registration_rate, 4),
        timings=summary.timings,
        preset=ctx.config.name,
    )
    if not applied:
        log.warning(
            "job %s had already ended (%s); result files were refreshed only",
            job_id,
            (store.get_job(job_id) or ctx.job).stage,
        )


Task = Callable[[str, JobStore, Settings], None]
TASKS: dict[str, Task] = {
    "extract": extract,
    "drift_check": drift_check,
    "matching": matching,
    "triangulate": triangulate,
    "decimate": decimate,
    "export": export,
}
LOCAL_TASKS: dict[str, Task] = {**TASKS, "matching": matching_local}
"""What the model worker runs when a task is handed to it."""
