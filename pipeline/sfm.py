"""Step 5: structure from motion with pycolmap, one scene (component) at a time.

Every model the mapper returns is kept: a component may yield several models
when it cannot be connected into one. Models are written as COLMAP binaries to
``models/cluster<i>_model<j>/`` so later steps (and people) can reopen them.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pycolmap

from pipeline.config import MappingConfig
from pipeline.progress import CancelToken, ProgressCallback
from pipeline.registry import lookup


@dataclass
class Model:
    """One reconstructed model: a cluster of the upload."""

    cluster: int
    index: int
    path: Path

    @classmethod
    def in_dir(cls, models_dir: Path, cluster: int, index: int) -> Model:
        """The model stored in ``models_dir``, in the folder named after it."""
        model = cls(cluster, index, Path())
        return dataclasses.replace(model, path=models_dir / model.name)

    @property
    def name(self) -> str:
        """``cluster<i>_model<j>``: the name of its folder, its PLY files and its CSV scene."""
        return f"cluster{self.cluster}_model{self.index}"

    def load(self) -> pycolmap.Reconstruction:
        return pycolmap.Reconstruction(self.path)


def _incremental_options(
    cfg: MappingConfig, names: Sequence[str]
) -> pycolmap.IncrementalPipelineOptions:
    opts = pycolmap.IncrementalPipelineOptions()
    opts.image_names = list(names)
    opts.min_model_size = cfg.min_model_size
    opts.num_threads = cfg.num_threads
    opts.random_seed = cfg.seed
    opts.mapper.random_seed = cfg.seed
    opts.mapper.num_threads = cfg.num_threads
    opts.mapper.init_min_num_inliers = cfg.init_min_num_inliers
    opts.mapper.init_min_tri_angle = cfg.init_min_tri_angle
    opts.mapper.abs_pose_min_num_inliers = cfg.abs_pose_min_num_inliers
    opts.mapper.abs_pose_min_inlier_ratio = cfg.abs_pose_min_inlier_ratio
    opts.triangulation.ignore_two_view_tracks = cfg.ignore_two_view_tracks
    return opts


def _map_incremental(
    database: Path,
    image_dir: Path,
    work: Path,
    names: Sequence[str],
    cfg: MappingConfig,
    on_image: ProgressCallback,
) -> list[pycolmap.Reconstruction]:
    registered = 0

    def next_image() -> None:
        nonlocal registered
        registered += 1
        on_image("mapping", min(registered / len(names), 1.0), f"registered {registered}")

    recs = pycolmap.incremental_mapping(
        database,
        image_dir,
        work,
        options=_incremental_options(cfg, names),
        next_image_callback=next_image,
    )
    return list(recs.values())


def _map_global(
    database: Path,
    image_dir: Path,
    work: Path,
    names: Sequence[str],
    cfg: MappingConfig,
    on_image: ProgressCallback,
) -> list[pycolmap.Reconstruction]:
    opts = pycolmap.GlobalPipelineOptions()
    opts.image_names = list(names)
    opts.min_model_size = cfg.min_model_size
    opts.num_threads = cfg.num_threads
    opts.random_seed = cfg.seed
    recs = pycolmap.global_mapping(database, image_dir, work, options=opts)
    return list(recs.values())


MAPPERS = {"incremental": _map_incremental, "global": _map_global}

# COLMAP's own bounds for a plausible focal length (IncrementalMapperOptions defaults).
_CAMERA_BOUNDS = pycolmap.IncrementalMapperOptions()


def has_bogus_camera(rec: pycolmap.Reconstruction) -> bool:
    """True when a camera of ``rec`` has a focal length outside COLMAP's plausible bounds
    (under 0.1x or over 10x the long side).

    Three nearly coplanar views of a textureless object can be "explained" by a fisheye-like
    focal length of a few dozen pixels; such a model has wrong poses, so it is dropped and
    its images stay outliers unless another model registers them. COLMAP's third bound, on
    the distortion parameter, is not applied: with a long lens (Middlebury's dino: 3300 px at
    640x480) a coefficient of 2 moves the corners by about 3% and is harmless.
    """
    return any(
        camera.has_bogus_params(
            _CAMERA_BOUNDS.min_focal_length_ratio,
            _CAMERA_BOUNDS.max_focal_length_ratio,
            math.inf,
        )
        for camera in rec.cameras.values()
    )


def _component_progress(
    progress: ProgressCallback, base: int, size: int, total: int, cluster: int
) -> ProgressCallback:
    """Scale one component's per-image progress into the whole mapping step."""

    def report(step: str, fraction: float, message: str) -> None:
        progress(step, (base + fraction * size) / total, f"cluster {cluster}: {message} of {size}")

    return report


def map_components(
    database: Path,
    image_dir: Path,
    models_dir: Path,
    components: Sequence[Sequence[str]],
    cfg: MappingConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> list[Model]:
    """Map each component; returns the kept models in (cluster, model) order.

    Models of one component are ordered by registered images (most first), so
    ``model0`` is always the largest model of its cluster.
    """
    mapper = lookup(MAPPERS, cfg.mapper, "mapper")
    pycolmap.set_random_seed(cfg.seed)
    if models_dir.exists():
        shutil.rmtree(models_dir)
    models_dir.mkdir(parents=True)
    total = sum(len(c) for c in components)
    done = 0
    models: list[Model] = []
    next_cluster = 0  # clusters are numbered densely: components with no model get none
    for cluster, names in enumerate(components):
        cancel.check()

        on_image = _component_progress(progress, done, len(names), total, cluster)
        with tempfile.TemporaryDirectory(prefix=".sfm-", dir=models_dir.parent) as work:
            recs = mapper(database, image_dir, Path(work), names, cfg, on_image)
            recs = [
                r
                for r in recs
                if r.num_reg_images() >= cfg.min_model_size and not has_bogus_camera(r)
            ]
            recs.sort(key=lambda r: -r.num_reg_images())
            for index, rec in enumerate(recs):
                model = Model.in_dir(models_dir, next_cluster, index)
                model.path.mkdir()
                rec.write_binary(model.path)
                models.append(model)
            next_cluster += bool(recs)
        done += len(names)
        progress("mapping", done / total, f"mapped cluster {cluster}")
    return models
