"""The reconstruction of one job as separate, idempotent tasks.

Airflow's ``reconstruction_dag`` runs each function as one task; the local runner runs
the same functions in the order of :data:`scene3d.jobs.flow.RECONSTRUCTION_TASKS`. Every
task calls the engine step that resumes from its files (a retry gives the same files),
writes only inside the job's folder, records stage, progress and message through the
store, and adds its wall time to ``work/timings.json``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pipeline.config import PipelineConfig
from pipeline.errors import ReconstructionError
from pipeline.ingest import ImageRecord, load_manifest
from pipeline.presets import load_preset
from pipeline.progress import CancelToken
from pipeline.reconstruct import (
    load_models,
    run_export,
    run_features,
    run_ingest,
    run_mapping,
    run_matching,
    run_pairs,
    summarize_run,
)
from scene3d import tracking
from scene3d.jobs.paths import JobFolder, job_folder
from scene3d.jobs.progress import ProgressWriter
from scene3d.served import ServedModel
from scene3d.settings import Settings
from scene3d.store import JobRecord, JobStore

log = logging.getLogger(__name__)


@dataclass
class TaskContext:
    """What every task works with: the job, where its files are, its engine config."""

    job: JobRecord
    store: JobStore
    settings: Settings
    folder: JobFolder
    config: PipelineConfig
    progress: ProgressWriter
    """One writer per task, so its once-per-percent throttle spans the whole task."""

    def images(self) -> list[ImageRecord]:
        return load_manifest(self.folder.run.images).images

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Record the wall time of ``step``; a retry replaces the value, never adds to it."""
        start = time.perf_counter()
        yield
        path = self.folder.timings
        timings = json.loads(path.read_text()) if path.exists() else {}
        timings[step] = round(time.perf_counter() - start, 3)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(timings, indent=2))
        tmp.replace(path)


def task_context(job_id: str, store: JobStore, settings: Settings) -> TaskContext:
    job = store.get_job(job_id)
    if job is None:
        raise ReconstructionError(f"job {job_id} does not exist")
    folder = job_folder(settings, job_id)
    if folder.model.exists():
        config = ServedModel.read(folder.model).config
    else:  # a job uploaded before jobs were pinned to a model
        config = load_preset(job.preset or settings.default_preset)
    return TaskContext(job, store, settings, folder, config, ProgressWriter(store, job_id))


def extract(job_id: str, store: JobStore, settings: Settings) -> None:
    """Validate and unpack the upload into ``work/images``; record image counts."""
    ctx = task_context(job_id, store, settings)
    ctx.folder.run.root.mkdir(parents=True, exist_ok=True)
    progress = ctx.progress
    progress.start("ingest", "Unpacking the ZIP")
    with ctx.timed("ingest"):
        result = run_ingest(ctx.folder.upload, ctx.folder.run, ctx.config, progress, CancelToken())
    progress.done(
        "ingest",
        f"{len(result.images)} valid images, {len(result.skipped)} skipped",
        n_images=len(result.images) + len(result.skipped),
        n_valid_images=len(result.images),
    )


def drift_check(job_id: str, store: JobStore, settings: Settings) -> None:
    """Compare the job's photos with the serving model's reference profile (Evidently);
    the verdict goes on the job, the report and its HTML into the job's folder. Advisory:
    a broken check never fails the reconstruction."""
    ctx = task_context(job_id, store, settings)
    with ctx.timed("drift"):
        try:
            from scene3d.jobs.drift_check import check_job

            report = check_job(settings, store, ctx.job, [rec.path for rec in ctx.images()])
            log.info("drift of job %s: %s", job_id, report["severity"])
        except Exception as exc:  # advisory: a broken check must not lose a reconstruction
            log.exception("drift check failed for job %s", job_id)
            reason = f"the drift check failed: {type(exc).__name__}"
            report = {"drift_detected": False, "severity": "unknown", "reason": reason}
            store.set_drift(job_id, False, "unknown", report)


def matching(job_id: str, store: JobStore, settings: Settings) -> None:
    """Local features, pair selection and verified matches (the GPU-heavy part).

    One run at a time per job (file lock), so a retry that overlaps an abandoned attempt
    waits instead of sharing the database.
    """
    ctx = task_context(job_id, store, settings)
    progress = ctx.progress
    progress.start("features", "Extracting features")
    images = ctx.images()
    paths = ctx.folder.run
    with (paths.root / ".matching.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with ctx.timed("features"):
            run_features(paths, images, ctx.config, progress, CancelToken())
        with ctx.timed("matching"):
            pairs = run_pairs(paths, images, ctx.config)
            run_matching(paths, pairs, ctx.config, progress, CancelToken())


def triangulate(job_id: str, store: JobStore, settings: Settings) -> None:
    """Scene split and structure from motion; every model kept."""
    ctx = task_context(job_id, store, settings)
    progress = ctx.progress
    progress.start("mapping", "Structure from motion")
    with ctx.timed("mapping"):
        run_mapping(ctx.folder.run, ctx.images(), ctx.config, progress, CancelToken())


def decimate(job_id: str, store: JobStore, settings: Settings) -> None:
    """Point clouds (raw and voxel-decimated), the IMC2025 CSV and ``clusters.json``."""
    ctx = task_context(job_id, store, settings)
    progress = ctx.progress
    progress.start("export", "Point clouds")
    paths = ctx.folder.run
    with ctx.timed("export"):
        run_export(
            paths,
            ctx.images(),
            load_models(paths),
            ctx.job.dataset_name,
            job_id,
            ctx.config,
            progress,
        )


def export(job_id: str, store: JobStore, settings: Settings) -> None:
    """Record the results in the store (and MLflow), then mark the job successful."""
    ctx = task_context(job_id, store, settings)
    timings = json.loads(ctx.folder.timings.read_text()) if ctx.folder.timings.exists() else {}
    summary = summarize_run(
        ctx.folder.run,
        job_id=job_id,
        dataset=ctx.job.dataset_name,
        preset=ctx.config.name,
        timings=timings,
    )
    summary.require_models()
    store.replace_clusters(job_id, summary.clusters)
    try:
        tracking.log_job_run(settings, ctx.job, ctx.folder.run, summary, ctx.folder.drift)
    except Exception:  # tracking is a record of the job, not part of it: never lose results
        log.exception("could not log job %s to MLflow", job_id)
    applied = ctx.progress.succeed(
        f"Reconstruction complete: {summary.n_registered}/{summary.n_images} images registered "
        f"in {len(summary.clusters)} clusters",
        n_points=summary.n_points,
        registration_rate=round(summary.registration_rate, 4),
        timings=timings,
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
"""Each task of :data:`~scene3d.jobs.flow.RECONSTRUCTION_TASKS`, by id."""
