"""The ``train`` stage: fit the scene-membership model on a sweep's verified pairs.

Each verified pair of a swept dataset is one example: its :data:`pipeline.membership.FEATURES`
and the label "both photos belong to the same ground-truth scene" (outliers never do).
scikit-learn fits a class-balanced logistic regression on standardised features; the
standardisation is folded into the weights, so the engine needs only the weights.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import membership, scenes
from pipeline.config import PipelineConfig
from pipeline.eval.candidates import ExperimentParams
from pipeline.eval.scoring import OUTLIERS
from pipeline.ingest import load_manifest
from pipeline.layout import RunPaths
from pipeline.reconstruct import read_descriptors


def training_pairs(
    params: ExperimentParams, sweep_dir: Path, config: PipelineConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of every verified pair the sweep in ``sweep_dir`` found."""
    features, labels = [], []
    for bench in params.benchmarks:
        with (bench.root / "train_labels.csv").open(newline="") as fh:
            scene = {(r["dataset"], r["image"]): r["scene"] for r in csv.DictReader(fh)}
        for dataset in bench.datasets:
            run = RunPaths(sweep_dir / bench.name / params.membership_base / dataset)
            if not run.database.exists():
                continue  # the dataset failed before matching; nothing to learn from
            names = [rec.name for rec in load_manifest(run.images).images]
            edges = scenes.verified_edges(str(run.database), config.matching.min_num_inliers)
            reader = functools.partial(read_descriptors, run)
            features.append(membership.edge_features(run.database, names, edges, reader))
            for a, b, _ in edges:
                sa, sb = scene.get((dataset, a), OUTLIERS), scene.get((dataset, b), OUTLIERS)
                labels.append(sa == sb and sa != OUTLIERS)
    if not features:
        return np.zeros((0, len(membership.FEATURES))), np.zeros(0, dtype=bool)
    return np.concatenate(features), np.asarray(labels, dtype=bool)


def fit(features: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """The model as JSON: weights (one per feature, then the bias) or, where the pairs
    cannot teach anything, no weights and the reason (the engine keeps the fixed rule)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    model: dict[str, Any] = {
        "features": list(membership.FEATURES),
        "threshold": threshold,
        "n_pairs": len(labels),
        "n_same_scene": int(labels.sum()),
        "weights": [],
    }
    if len(set(labels.tolist())) < 2:
        model["reason"] = "the verified pairs are all of one kind: nothing to learn"
        return model
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    clf = LogisticRegression(class_weight="balanced", max_iter=1000)
    clf.fit((features - mean) / scale, labels)
    coef = clf.coef_[0] / scale
    bias = float(clf.intercept_[0] - (clf.coef_[0] * mean / scale).sum())
    weights = [*map(float, coef), bias]
    prob = membership.probabilities(features, weights)
    model.update(
        weights=weights,
        train_auc=float(roc_auc_score(labels, prob)),
        train_balanced_accuracy=float(balanced_accuracy_score(labels, prob >= threshold)),
    )
    return model
