"""The engine's runner: ingest -> features -> pairs -> matching -> scenes + mapping -> export.

Each step is a function of the job folder (:class:`JobPaths`) and resumes from
its files: a finished step leaves a marker and is skipped when the job runs
again, so a retry after a crash redoes only what was not finished. Airflow
tasks and the command line call these same functions.
"""

from __future__ import annotations

import functools
import json
import resource
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pycolmap

from pipeline import descriptor_store, export, matching, pairs, scenes, sfm
from pipeline.config import PipelineConfig
from pipeline.errors import ReconstructionError
from pipeline.features import extract_features
from pipeline.ingest import ImageRecord, IngestResult, ingest
from pipeline.presets import load_preset
from pipeline.progress import CancelToken, ProgressCallback, null_progress

# Where each engine step sits in the API's stages: (stage, start, end) of that
# stage's progress. Feature extraction counts as the first part of "matching".
STEP_STAGES: dict[str, tuple[str, float, float]] = {
    "ingest": ("extracting", 0.0, 1.0),
    "features": ("matching", 0.0, 0.35),
    "pairs": ("matching", 0.35, 0.4),
    "matching": ("matching", 0.4, 1.0),
    "mapping": ("triangulating", 0.0, 1.0),
    "export": ("decimating", 0.0, 1.0),
}
STEPS = tuple(STEP_STAGES)


@dataclass
class JobPaths:
    """Every file a job writes lives under ``root``; nothing is written elsewhere."""

    root: Path

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def manifest(self) -> Path:
        return self.images / "manifest.json"

    @property
    def database(self) -> Path:
        return self.root / "database.db"

    @property
    def pairs(self) -> Path:
        return self.root / "pairs.txt"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def scenes(self) -> Path:
        return self.root / "scenes.json"

    @property
    def ply(self) -> Path:
        return self.root / "ply"

    @property
    def submission(self) -> Path:
        return self.root / "submission.csv"

    @property
    def clusters(self) -> Path:
        return self.root / "clusters.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    def marker(self, step: str) -> Path:
        return self.root / f".{step}.done"


@dataclass
class ReconstructionResult:
    """Summary of one run; also written to ``summary.json``."""

    job_id: str
    dataset: str
    preset: str
    n_images: int
    n_registered: int
    n_points: int
    clusters: list[dict]
    outliers: list[str]
    skipped: list[dict]
    timings: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0

    @property
    def registration_rate(self) -> float:
        return self.n_registered / self.n_images if self.n_images else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "registration_rate": self.registration_rate}


def set_colmap_logging(verbose: bool) -> None:
    """COLMAP logs every registered image at INFO; keep warnings and errors only unless asked."""
    pycolmap.logging.minloglevel = 0 if verbose else 1


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def step_progress(step: str, progress: ProgressCallback) -> ProgressCallback:
    stage, lo, hi = STEP_STAGES[step]

    def report(_stage: str, fraction: float, message: str) -> None:
        progress(stage, lo + (hi - lo) * min(max(fraction, 0.0), 1.0), message)

    return report


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[step] = timings.get(step, 0.0) + time.perf_counter() - start


def _read_manifest(paths: JobPaths) -> IngestResult:
    data = json.loads(paths.manifest.read_text())
    return IngestResult.from_dict(data, paths.images)


def run_ingest(
    source: Path,
    paths: JobPaths,
    config: PipelineConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> IngestResult:
    if paths.marker("ingest").exists() and paths.manifest.exists():
        return _read_manifest(paths)
    result = ingest(source, paths.images, config.ingest, progress=progress, cancel=cancel)
    paths.marker("ingest").touch()
    return result


def run_features(
    paths: JobPaths,
    images: list[ImageRecord],
    config: PipelineConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    if paths.marker("features").exists():
        return
    # pycolmap skips images already in the database, so an interrupted run resumes.
    extract_features(paths.images, paths.database, images, config.features, progress, cancel)
    paths.marker("features").touch()


def read_descriptors(paths: JobPaths, name: str) -> np.ndarray:
    """An image's local descriptors: learned ones from their files, else SIFT's from the
    database (uint8)."""
    db = pycolmap.Database.open(paths.database)
    try:
        image = db.read_image_with_name(name)
        if descriptor_store.has_descriptors(paths.database, image.image_id):
            return descriptor_store.load_descriptors(paths.database, image.image_id)
        return np.asarray(db.read_descriptors(image.image_id).data)
    finally:
        db.close()


def run_pairs(paths: JobPaths, images: list[ImageRecord], config: PipelineConfig) -> list:
    if not paths.pairs.exists():
        selected = pairs.select_pairs(
            [rec.name for rec in images], config.pairs, functools.partial(read_descriptors, paths)
        )
        tmp = paths.pairs.with_suffix(".tmp")
        pairs.write_pairs(selected, tmp)
        tmp.replace(paths.pairs)
    return pairs.read_pairs(paths.pairs)


def run_matching(
    paths: JobPaths,
    selected: list,
    config: PipelineConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    if paths.marker("matching").exists():
        return
    # pycolmap skips pairs already in the database, so an interrupted run resumes.
    matching.match_pairs(paths.database, selected, config.matching, progress, cancel)
    paths.marker("matching").touch()


def run_mapping(
    paths: JobPaths,
    images: list[ImageRecord],
    config: PipelineConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> list[sfm.Model]:
    if paths.marker("mapping").exists() and paths.scenes.exists():
        return _load_models(paths)
    names = [rec.name for rec in images]
    edges = scenes.verified_edges(str(paths.database), config.matching.min_num_inliers)
    if config.mapping.split_on_triangles:
        edges = scenes.triangle_supported(edges)
    components, leftovers = scenes.split_components(names, edges, config.mapping.min_model_size)
    models = sfm.map_components(
        paths.database, paths.images, paths.models, components, config.mapping, progress, cancel
    )
    record = {
        "components": components,
        "unconnected": leftovers,
        "models": [{"cluster": m.cluster, "index": m.index} for m in models],
    }
    paths.scenes.write_text(json.dumps(record, indent=2))
    paths.marker("mapping").touch()
    return models


def _load_models(paths: JobPaths) -> list[sfm.Model]:
    record = json.loads(paths.scenes.read_text())
    return [
        sfm.Model(
            m["cluster"], m["index"], paths.models / f"cluster{m['cluster']}_model{m['index']}"
        )
        for m in record["models"]
    ]


def run_export(
    paths: JobPaths,
    images: list[ImageRecord],
    models: list[sfm.Model],
    dataset: str,
    job_id: str,
    config: PipelineConfig,
    progress: ProgressCallback,
) -> tuple[list[export.ClusterStats], dict]:
    """Always re-run: it is cheap and deterministic, so a retry gives the same files."""
    paths.ply.mkdir(exist_ok=True)
    for stale in paths.ply.glob("*.ply"):
        stale.unlink()
    recs = [m.load() for m in models]
    stats = []
    for i, (model, rec) in enumerate(zip(models, recs, strict=True)):
        stats.append(export.export_cluster(i, model, rec, paths.ply, job_id[:8], config.export))
        progress("decimating", (i + 1) / max(len(models), 1), f"wrote point cloud {model.name}")
    poses = export.assign_poses(models, recs)
    names = [rec.name for rec in images]
    export.write_submission(paths.submission, dataset, names, models, poses)
    export.write_clusters_json(paths.clusters, stats)
    return stats, poses


def reconstruct(
    source: Path,
    out_dir: Path,
    config: PipelineConfig | None = None,
    *,
    dataset: str = "custom",
    job_id: str | None = None,
    progress: ProgressCallback = null_progress,
    cancel: CancelToken | None = None,
    on_ingested: Callable[[IngestResult], None] | None = None,
) -> ReconstructionResult:
    """Reconstruct every scene in ``source`` (a ZIP or a folder) into ``out_dir``.

    Re-running with the same ``out_dir`` resumes after the last finished step.
    ``on_ingested`` sees the validated images before any matching starts (the
    platform records counts and runs its drift check there).
    """
    config = config or load_preset()
    cancel = cancel or CancelToken()
    job_id = job_id or uuid.uuid4().hex
    paths = JobPaths(Path(out_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    pycolmap.set_random_seed(config.mapping.seed)
    timings: dict[str, float] = {}

    def step(name: str) -> ProgressCallback:
        return step_progress(name, progress)

    with _timed(timings, "ingest"):
        manifest = run_ingest(Path(source), paths, config, step("ingest"), cancel)
    images = manifest.images
    if on_ingested is not None:
        on_ingested(manifest)
    with _timed(timings, "features"):
        run_features(paths, images, config, step("features"), cancel)
    with _timed(timings, "pairs"):
        selected = run_pairs(paths, images, config)
        step("pairs")("pairs", 1.0, f"selected {len(selected)} pairs")
    with _timed(timings, "matching"):
        run_matching(paths, selected, config, step("matching"), cancel)
    with _timed(timings, "mapping"):
        models = run_mapping(paths, images, config, step("mapping"), cancel)
    with _timed(timings, "export"):
        stats, poses = run_export(paths, images, models, dataset, job_id, config, step("export"))
    registered = len(poses)
    result = ReconstructionResult(
        job_id=job_id,
        dataset=dataset,
        preset=config.name,
        n_images=len(images),
        n_registered=registered,
        n_points=sum(s.num_points3D for s in stats),
        clusters=[asdict(s) for s in stats],
        outliers=sorted(rec.name for rec in images if rec.name not in poses),
        skipped=[asdict(s) for s in manifest.skipped],
        timings=timings,
        peak_rss_mb=peak_rss_mb(),
    )
    paths.summary.write_text(json.dumps(result.to_dict(), indent=2))
    if not stats:
        # The files above (a CSV with every image an outlier) stay for inspection.
        raise ReconstructionError(
            f"no scene could be reconstructed: none of the {len(images)} images could be "
            "matched into a model (too few images of one place, or too little texture)"
        )
    return result


__all__ = ["STEPS", "JobPaths", "ReconstructionError", "ReconstructionResult", "reconstruct"]
