"""Clusters: replaced as a whole (idempotent), accepted in the pipeline's shape, cascaded."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from scene3d.store import JobStore, UnknownJobError
from tests.scene3d.store.support import cluster, new_id


def test_replace_clusters_is_idempotent(store: JobStore, owner: int) -> None:
    job = store.create_job(new_id(), owner, "ds", "s")
    clusters = [cluster(2), cluster(0), cluster(1)]
    store.replace_clusters(job.id, clusters)
    store.replace_clusters(job.id, clusters)  # a retried task
    got = store.get_clusters(job.id)
    assert [c.cluster_id for c in got] == [0, 1, 2]
    assert (got[1].name, got[1].num_points3D, got[1].num_images) == ("cluster_1", 200, 11)
    assert got[1].raw_filename == "cluster_1_raw.ply" and got[1].mean_track_length == 3.2

    # the pipeline's asdict(ClusterStats): "id" instead of "cluster_id", extra keys, NaN
    pipeline_style = cluster(0, images=["a.jpg"], model_dir="m", mean_reprojection_error=np.nan)
    pipeline_style["id"] = pipeline_style.pop("cluster_id")
    store.replace_clusters(job.id, [pipeline_style])
    (only,) = store.get_clusters(job.id)
    assert only.cluster_id == 0 and only.mean_reprojection_error is None

    store.replace_clusters(job.id, [])
    assert store.get_clusters(job.id) == []
    with pytest.raises(ValueError):
        store.replace_clusters(job.id, [cluster(0), cluster(0)])
    with pytest.raises(ValueError):
        store.replace_clusters(job.id, [{"cluster_id": 0}])
    with pytest.raises(UnknownJobError):
        store.replace_clusters(new_id(), [cluster(0)])
    with pytest.raises(UnknownJobError):
        store.replace_clusters(new_id(), [])


def test_removing_a_job_row_removes_its_clusters(store: JobStore, owner: int) -> None:
    # Jobs are removed only with their user today; the ON DELETE CASCADE from clusters to
    # jobs is what makes that (and any later job removal) leave no orphan clusters.
    gone = store.create_job(new_id(), owner, "ds", "s")
    kept = store.create_job(new_id(), owner, "ds", "s")
    store.replace_clusters(gone.id, [cluster(0), cluster(1)])
    store.replace_clusters(kept.id, [cluster(0)])
    with store._engine.begin() as conn:
        conn.execute(text("DELETE FROM jobs WHERE id = :id"), {"id": gone.id})
    assert store.get_job(gone.id) is None and store.get_clusters(gone.id) == []
    assert len(store.get_clusters(kept.id)) == 1
