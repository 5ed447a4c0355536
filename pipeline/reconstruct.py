"""The engine's runner: ingest -> features -> pairs -> matching -> scenes + mapping -> export.

Each step is a function of the run folder (:class:`~pipeline.layout.RunPaths`) and resumes
from its files: a finished step leaves a marker and is skipped when the run goes again, so
a retry after a crash redoes only what was not finished. :func:`reconstruct` runs them in
order; the platform's tasks and the command line call these same functions. Every step
reports ``progress(step, fraction, message)`` under its own name in :data:`STEPS` (the
contract is in :mod:`pipeline.progress`).
"""

from __future__ import annotations

import csv
import functools
import json
import resource
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pycolmap

from pipeline import descriptor_store, export, matching, membership, pairs, scenes, sfm
from pipeline.config import PipelineConfig
from pipeline.errors import ReconstructionError
from pipeline.features import extract_features
from pipeline.ingest import ImageRecord, IngestResult, ingest, load_manifest
from pipeline.layout import RunPaths
from pipeline.presets import load_preset
from pipeline.progress import CancelToken, ProgressCallback, null_progress

STEPS = ("ingest", "features", "pairs", "matching", "mapping", "export")
"""The engine's steps, in the order they run; each reports progress under its name."""


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

    def require_models(self) -> None:
        """Raise the user's explanation when the run reconstructed no scene at all."""
        if not self.clusters:
            raise ReconstructionError(
                f"no scene could be reconstructed: none of the {self.n_images} images could be "
                "matched into a model (too few images of one place, or too little texture)"
            )


def set_colmap_logging(verbose: bool) -> None:
    """COLMAP logs every registered image at INFO; keep warnings and errors only unless asked."""
    pycolmap.logging.minloglevel = 0 if verbose else 1


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[step] = timings.get(step, 0.0) + time.perf_counter() - start


def run_ingest(
    source: Path,
    paths: RunPaths,
    config: PipelineConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> IngestResult:
    if paths.marker("ingest").exists() and paths.manifest.exists():
        return load_manifest(paths.images)
    result = ingest(source, paths.images, config.ingest, progress=progress, cancel=cancel)
    paths.marker("ingest").touch()
    return result


def run_features(
    paths: RunPaths,
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


def read_descriptors(paths: RunPaths, name: str) -> np.ndarray:
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


def run_pairs(
    paths: RunPaths,
    images: list[ImageRecord],
    config: PipelineConfig,
    progress: ProgressCallback = null_progress,
) -> list:
    if not paths.pairs.exists():
        selected = pairs.select_pairs(
            [rec.name for rec in images], config.pairs, functools.partial(read_descriptors, paths)
        )
        tmp = paths.pairs.with_suffix(".tmp")
        pairs.write_pairs(selected, tmp)
        tmp.replace(paths.pairs)
    selected = pairs.read_pairs(paths.pairs)
    progress("pairs", 1.0, f"selected {len(selected)} pairs")
    return selected


def run_matching(
    paths: RunPaths,
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


def _mapped(paths: RunPaths) -> bool:
    return paths.marker("mapping").exists() and paths.scenes.exists()


def run_mapping(
    paths: RunPaths,
    images: list[ImageRecord],
    config: PipelineConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> list[sfm.Model]:
    if _mapped(paths):
        return load_models(paths)
    names = [rec.name for rec in images]
    edges = scenes.verified_edges(str(paths.database), config.matching.min_num_inliers)
    if config.mapping.membership_weights:
        reader = functools.partial(read_descriptors, paths)
        features = membership.edge_features(paths.database, names, edges, reader)
        edges = membership.member_edges(
            edges, features, config.mapping.membership_weights, config.mapping.membership_threshold
        )
    elif config.mapping.split_on_triangles:
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


def load_models(paths: RunPaths) -> list[sfm.Model]:
    """The models a finished mapping step left, in (cluster, model) order (``scenes.json``)."""
    if not _mapped(paths):
        raise ReconstructionError("mapping has not finished in this run: there are no models yet")
    record = json.loads(paths.scenes.read_text())
    return [sfm.Model.in_dir(paths.models, m["cluster"], m["index"]) for m in record["models"]]


def run_export(
    paths: RunPaths,
    images: list[ImageRecord],
    models: list[sfm.Model],
    dataset: str,
    job_id: str,
    config: PipelineConfig,
    progress: ProgressCallback,
) -> None:
    """Always re-run: it is cheap and deterministic, so a retry gives the same files."""
    paths.ply.mkdir(exist_ok=True)
    for stale in paths.ply.glob("*.ply"):
        stale.unlink()
    recs = [m.load() for m in models]
    stats = []
    for i, (model, rec) in enumerate(zip(models, recs, strict=True)):
        stats.append(export.export_cluster(i, model, rec, paths.ply, job_id[:8], config.export))
        progress("export", (i + 1) / max(len(models), 1), f"wrote point cloud {model.name}")
    poses = export.assign_poses(models, recs)
    names = [rec.name for rec in images]
    export.write_submission(paths.submission, dataset, names, models, poses)
    export.write_clusters_json(paths.clusters, stats)


def summarize_run(
    paths: RunPaths,
    *,
    job_id: str,
    dataset: str,
    preset: str,
    timings: dict[str, float] | None = None,
) -> ReconstructionResult:
    """A finished run's summary, read back from the files its steps wrote: the manifest,
    ``clusters.json`` and the submission CSV (one row per image, registered ones under
    their model, the rest as outliers). ``peak_rss_mb`` stays 0: only the process that
    ran the steps knows it."""
    if not (paths.submission.exists() and paths.clusters.exists()):
        raise ReconstructionError("export has not finished in this run: there is no result yet")
    manifest = load_manifest(paths.images)
    clusters = json.loads(paths.clusters.read_text())["clusters"]
    with paths.submission.open(newline="") as fh:
        scene_of = [(row["image"], row["scene"]) for row in csv.DictReader(fh)]
    return ReconstructionResult(
        job_id=job_id,
        dataset=dataset,
        preset=preset,
        n_images=len(manifest.images),
        n_registered=sum(scene != export.OUTLIERS for _, scene in scene_of),
        n_points=sum(c["num_points3D"] for c in clusters),
        clusters=clusters,
        outliers=sorted(name for name, scene in scene_of if scene == export.OUTLIERS),
        skipped=[asdict(s) for s in manifest.skipped],
        timings=dict(timings or {}),
    )


def reconstruct(
    source: Path,
    out_dir: Path,
    config: PipelineConfig | None = None,
    *,
    dataset: str = "custom",
    job_id: str | None = None,
    progress: ProgressCallback = null_progress,
    cancel: CancelToken | None = None,
) -> ReconstructionResult:
    """Reconstruct every scene in ``source`` (a ZIP or a folder) into ``out_dir``.

    Re-running with the same ``out_dir`` resumes after the last finished step. Every step
    reports to ``progress`` under its own name (:data:`STEPS`).
    """
    config = config or load_preset()
    cancel = cancel or CancelToken()
    job_id = job_id or uuid.uuid4().hex
    paths = RunPaths(Path(out_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    pycolmap.set_random_seed(config.mapping.seed)
    timings: dict[str, float] = {}

    with _timed(timings, "ingest"):
        images = run_ingest(Path(source), paths, config, progress, cancel).images
    with _timed(timings, "features"):
        run_features(paths, images, config, progress, cancel)
    with _timed(timings, "pairs"):
        selected = run_pairs(paths, images, config, progress)
    with _timed(timings, "matching"):
        run_matching(paths, selected, config, progress, cancel)
    with _timed(timings, "mapping"):
        models = run_mapping(paths, images, config, progress, cancel)
    with _timed(timings, "export"):
        run_export(paths, images, models, dataset, job_id, config, progress)
    result = summarize_run(
        paths, job_id=job_id, dataset=dataset, preset=config.name, timings=timings
    )
    result.peak_rss_mb = peak_rss_mb()
    paths.summary.write_text(json.dumps(result.to_dict(), indent=2))
    # The files above (a CSV with every image an outlier) stay for inspection.
    result.require_models()
    return result


__all__ = [
    "STEPS",
    "ReconstructionResult",
    "load_models",
    "reconstruct",
    "summarize_run",
]
