"""The reconstructed models (clusters) of a job: replaced as a whole, read in order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select

from scene3d.store.engine import Database
from scene3d.store.errors import UnknownJobError
from scene3d.store.models import Cluster, Job
from scene3d.store.records import ClusterRecord
from scene3d.store.values import finite


def _cluster(row: Any) -> ClusterRecord:
    m = row._mapping
    return ClusterRecord(
        job_id=m["job_id"],
        cluster_id=m["cluster_id"],
        name=m["name"],
        num_points3D=m["num_points3d"],
        num_images=m["num_images"],
        filename=m["filename"],
        raw_filename=m["raw_filename"],
        mean_reprojection_error=m["mean_reprojection_error"],
        mean_track_length=m["mean_track_length"],
    )


def _cluster_row(job_id: str, cluster: Mapping[str, Any]) -> dict[str, Any]:
    """Column values of one cluster; ``id`` is accepted for ``cluster_id`` and unknown keys
    are ignored, so ``dataclasses.asdict(ClusterStats)`` from the pipeline fits as is."""
    try:
        cluster_id = cluster["cluster_id"] if "cluster_id" in cluster else cluster["id"]
        return {
            "job_id": job_id,
            "cluster_id": int(cluster_id),
            "name": str(cluster["name"]),
            "num_points3d": int(cluster["num_points3D"]),
            "num_images": int(cluster["num_images"]),
            "filename": str(cluster["filename"]),
            "raw_filename": cluster.get("raw_filename") or None,
            "mean_reprojection_error": finite(cluster.get("mean_reprojection_error")),
            "mean_track_length": finite(cluster.get("mean_track_length")),
        }
    except KeyError as exc:
        raise ValueError(f"cluster description lacks {exc.args[0]!r}") from None


class ClusterStore(Database):
    """The ``clusters`` table, one row per model of a job."""

    def replace_clusters(self, job_id: str, clusters: Sequence[Mapping[str, Any]]) -> None:
        """Set the clusters of a job to exactly ``clusters`` in one transaction.

        Idempotent: a retried task rewrites the same rows instead of adding duplicates.
        """
        rows = [_cluster_row(job_id, c) for c in clusters]
        ids = [r["cluster_id"] for r in rows]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate cluster ids in {ids}")
        with self._write() as conn:
            # Checked explicitly: with no rows to insert, no foreign key would catch it.
            if conn.execute(select(Job.id).where(Job.id == job_id)).first() is None:
                raise UnknownJobError(f"no job {job_id}")
            conn.execute(delete(Cluster).where(Cluster.job_id == job_id))
            if rows:
                conn.execute(insert(Cluster.__table__), rows)

    def get_clusters(self, job_id: str) -> list[ClusterRecord]:
        """The clusters of a job by ``cluster_id``; empty for an unknown job."""
        stmt = (
            select(Cluster.__table__).where(Cluster.job_id == job_id).order_by(Cluster.cluster_id)
        )
        with self._read() as conn:
            return [_cluster(r) for r in conn.execute(stmt)]
