"""pipeline.membership in the engine: pair features from a real database, and a learned
model in the configuration deciding which verified pairs split scenes."""

from __future__ import annotations

import functools
import shutil

import numpy as np
import pytest

from pipeline import membership, scenes
from pipeline.errors import ReconstructionError
from pipeline.eval.synthetic import make_collection
from pipeline.ingest import load_manifest
from pipeline.layout import RunPaths
from pipeline.presets import load_preset
from pipeline.reconstruct import read_descriptors, reconstruct

pytestmark = pytest.mark.slow

KEEP_ALL = [0.0, 0.0, 0.0, 0.0, 50.0]
KEEP_NONE = [0.0, 0.0, 0.0, 0.0, -50.0]


def _config(weights: list[float]):
    one_thread = {"num_threads": 1}
    return load_preset(
        "sift",
        {
            "features": one_thread,
            "matching": one_thread,
            "mapping": {**one_thread, "membership_weights": weights},
        },
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("membership")
    images, _, _ = make_collection(root / "photos", n_views=8, n_scenes=2, n_outliers=1, seed=3)
    out = root / "run"
    return images, out, reconstruct(images, out, _config(KEEP_ALL), dataset="synthetic")


def test_a_model_that_keeps_every_pair_splits_like_the_graph(run) -> None:
    _, _, result = run
    assert len(result.clusters) == 2 and result.outliers == ["outlier_000.png"]


def test_pair_features_from_the_runs_database(run) -> None:
    _, out, _ = run
    paths = RunPaths(out)
    names = [rec.name for rec in load_manifest(paths.images).images]
    edges = scenes.verified_edges(str(paths.database), 15)
    reader = functools.partial(read_descriptors, paths)
    features = membership.edge_features(paths.database, names, edges, reader)
    assert features.shape == (len(edges), len(membership.FEATURES)) and len(edges) > 0
    log_inliers, ratio, similarity, log_triangles = features.T
    assert np.allclose(log_inliers, np.log1p([n for _, _, n in edges]))
    assert ((ratio > 0) & (ratio <= 1)).all() and ((similarity > -1.01) & (similarity < 1.01)).all()
    assert (log_triangles > 0).any()


def test_a_model_that_rejects_every_pair_leaves_no_scene(run, tmp_path) -> None:
    images, out, _ = run
    again = tmp_path / "again"
    # Same features and matches, mapping again with the other model.
    shutil.copytree(out, again, ignore=shutil.ignore_patterns("models", "ply", ".mapping.done",
                                                              "scenes.json"))  # fmt: skip
    with pytest.raises(ReconstructionError, match="no scene could be reconstructed"):
        reconstruct(images, again, _config(KEEP_NONE), dataset="synthetic")
