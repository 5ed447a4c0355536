"""Scene membership learned from labelled pairs: which verified pairs join two photos of
one place.

The fixed rule (:func:`pipeline.scenes.triangle_supported`) keeps the pairs that close a
triangle. A learned rule scores each verified pair from :data:`FEATURES` with a logistic
model and keeps those scored at least ``threshold``. The model is a handful of numbers in
the configuration (:attr:`pipeline.config.MappingConfig.membership_weights`), so a
registered version carries it and the engine applies it with numpy alone; scikit-learn
fits it (``scene3d experiment train``) on pairs whose photos' ground-truth scenes are known.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pycolmap

from pipeline.retrieval import global_descriptors

FEATURES = ("log_inliers", "inlier_ratio", "global_similarity", "log_triangles")
"""Per verified pair: log(1 + inliers); inliers over raw matches; cosine similarity of the
two photos' global (VLAD) descriptors; log(1 + matched photos the two have in common)."""

Edge = tuple[str, str, int]


def edge_features(
    database: Path,
    names: Sequence[str],
    edges: Sequence[Edge],
    read_descriptors: Callable[[str], np.ndarray],
) -> np.ndarray:
    """(len(edges), len(FEATURES)) features of verified ``edges`` among photos ``names``."""
    if not edges:
        return np.zeros((0, len(FEATURES)))
    db = pycolmap.Database.open(str(database))
    try:
        ids = {img.name: img.image_id for img in db.read_all_images()}
        pair_ids, counts = db.read_num_matches()
    finally:
        db.close()
    raw = dict(zip(pair_ids, counts, strict=True))
    globals_ = global_descriptors([read_descriptors(name) for name in names])
    row = {name: i for i, name in enumerate(names)}
    neighbours: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    features = []
    for a, b, inliers in edges:
        matches = raw.get(pycolmap.image_pair_to_pair_id(ids[a], ids[b]), 0)
        features.append(
            (
                math.log1p(inliers),
                inliers / matches if matches else 0.0,
                float(globals_[row[a]] @ globals_[row[b]]),
                math.log1p(len(neighbours[a] & neighbours[b])),
            )
        )
    return np.asarray(features, dtype=np.float64)


def probabilities(features: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """P(same scene) of each row: ``weights`` are one per feature, then the bias."""
    if len(weights) != len(FEATURES) + 1:
        raise ValueError(
            f"a membership model has {len(FEATURES) + 1} weights ({', '.join(FEATURES)}, "
            f"bias); this one has {len(weights)}"
        )
    w = np.asarray(weights, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-(features @ w[:-1] + w[-1])))


def member_edges(
    edges: Sequence[Edge], features: np.ndarray, weights: Sequence[float], threshold: float
) -> list[Edge]:
    """The edges the model scores at least ``threshold``."""
    keep = probabilities(features, weights) >= threshold
    return [edge for edge, kept in zip(edges, keep, strict=True) if kept]
