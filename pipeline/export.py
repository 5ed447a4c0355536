"""Step 6: outputs a client downloads.

- ``submission.csv`` in IMC2025 format. Row order is fixed and documented:
  clusters in (cluster, model) order, which is also the order of their names
  ``cluster<i>_model<j>``; images by name inside a cluster; then ``outliers``
  by name. The official metric breaks ties by row order, so rows are never
  reordered to gain score.
- One raw and one voxel-decimated binary PLY per cluster (open3d).
- ``clusters.json`` with per-cluster statistics.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import open3d as o3d
import pycolmap

from pipeline.config import ExportConfig
from pipeline.sfm import Model

CSV_COLUMNS = ("dataset", "scene", "image", "rotation_matrix", "translation_vector")
OUTLIERS = "outliers"
_NAN_R = ";".join(["nan"] * 9)
_NAN_T = ";".join(["nan"] * 3)


@dataclass
class ClusterStats:
    """What ``clusters.json`` and the API report for one model."""

    id: int
    name: str
    images: list[str]
    num_images: int
    num_points3D: int
    num_points_decimated: int
    mean_reprojection_error: float
    mean_track_length: float
    voxel_size: float
    filename: str
    raw_filename: str
    model_dir: str
    extra: dict = field(default_factory=dict)


def _fmt(values: np.ndarray) -> str:
    return ";".join(repr(float(v)) for v in np.asarray(values).ravel())


def assign_poses(
    models: Sequence[Model], recs: Sequence[pycolmap.Reconstruction]
) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """image name -> (cluster name, R, t). An image registered in several models keeps
    the pose of the first (largest) one, so each image has exactly one row."""
    poses: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    for model, rec in zip(models, recs, strict=True):
        for image in rec.images.values():
            if not image.has_pose or image.name in poses:
                continue
            pose = image.cam_from_world()
            poses[image.name] = (model.name, pose.rotation.matrix(), np.asarray(pose.translation))
    return poses


def write_submission(
    path: Path,
    dataset: str,
    names: Sequence[str],
    models: Sequence[Model],
    poses: dict[str, tuple[str, np.ndarray, np.ndarray]],
) -> None:
    """Rows: clusters in model order, images sorted by name; then outliers sorted by name."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for model in models:
            for name in sorted(n for n, p in poses.items() if p[0] == model.name):
                _, rot, trans = poses[name]
                writer.writerow([dataset, model.name, name, _fmt(rot), _fmt(trans)])
        for name in sorted(n for n in names if n not in poses):
            writer.writerow([dataset, OUTLIERS, name, _NAN_R, _NAN_T])
    tmp.replace(path)


def point_cloud(rec: pycolmap.Reconstruction) -> o3d.geometry.PointCloud:
    pts = rec.points3D
    xyz = np.array([p.xyz for p in pts.values()], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([p.color for p in pts.values()], dtype=np.float64).reshape(-1, 3) / 255.0
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
    cloud.colors = o3d.utility.Vector3dVector(rgb)
    return cloud


def robust_extent(xyz: np.ndarray) -> float:
    """Diagonal of the 2nd-98th percentile box: stray far points do not inflate it."""
    if len(xyz) < 2:
        return 0.0
    lo, hi = np.percentile(xyz, [2, 98], axis=0)
    return float(np.linalg.norm(hi - lo))


def decimate(
    cloud: o3d.geometry.PointCloud, cfg: ExportConfig
) -> tuple[o3d.geometry.PointCloud, float]:
    """Voxel-downsample with a voxel relative to the extent, grown until under the cap."""
    extent = robust_extent(np.asarray(cloud.points))
    if extent <= 0:
        return cloud, 0.0
    voxel = extent * cfg.voxel_fraction
    down = cloud.voxel_down_sample(voxel)
    while len(down.points) > cfg.max_points:
        voxel *= 1.5
        down = cloud.voxel_down_sample(voxel)
    return down, voxel


def _write_ply(path: Path, cloud: o3d.geometry.PointCloud) -> None:
    if not o3d.io.write_point_cloud(str(path), cloud, write_ascii=False, compressed=False):
        raise OSError(f"could not write {path.name}")


def export_cluster(
    cluster_id: int,
    model: Model,
    rec: pycolmap.Reconstruction,
    ply_dir: Path,
    job8: str,
    cfg: ExportConfig,
) -> ClusterStats:
    """Write the raw and decimated PLY of one model and return its statistics."""
    raw_name = f"cluster{model.cluster}_raw_model{model.index}_{job8}.ply"
    dec_name = f"cluster{model.cluster}_decimated_model{model.index}_{job8}.ply"
    cloud = point_cloud(rec)
    down, voxel = decimate(cloud, cfg)
    _write_ply(ply_dir / raw_name, cloud)
    _write_ply(ply_dir / dec_name, down)
    images = sorted(img.name for img in rec.images.values() if img.has_pose)
    return ClusterStats(
        id=cluster_id,
        name=model.name,
        images=images,
        num_images=len(images),
        num_points3D=rec.num_points3D(),
        num_points_decimated=len(down.points),
        mean_reprojection_error=float(rec.compute_mean_reprojection_error()),
        mean_track_length=float(rec.compute_mean_track_length()),
        voxel_size=voxel,
        filename=dec_name,
        raw_filename=raw_name,
        model_dir=f"models/{model.name}",
    )


def write_clusters_json(path: Path, clusters: Sequence[ClusterStats]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"clusters": [asdict(c) for c in clusters]}, indent=2))
    tmp.replace(path)
