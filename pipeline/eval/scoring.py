"""The Image Matching Challenge 2025 metric, reimplemented from its published definition.

The reference is Kaggle's ``imc25-utils`` (version 6), run with the settings the challenge used:
harmonic combination, ``skip_top_thresholds=2``, ``inl_cf=0``, ``strict_cf=-1``. Matching it
exactly lets a local run be compared with leaderboard numbers, so its quirks are kept on purpose:

* Each ground-truth (GT) scene is paired with the submitted cluster that holds the most of its
  images, then (among equals) the one with the most accurately registered cameras, then the
  cluster that appears **first in the submission's rows**. Row order therefore changes scores
  when a GT scene shares no image with any cluster: pairing it with a cluster adds that cluster's
  size to the clusterness denominator and the GT scene's size to the mAA denominator, pairing it
  with ``outliers`` (which counts as empty) adds nothing.
* Submitted clusters are registered to the GT by similarity transforms of the camera centres:
  every camera triplet gives a Horn (quaternion) alignment; every distinct set of at least three
  inliers it yields is refit with an SVD (Kabsch) rotation; the best model is kept separately for
  each of the scene's thresholds (most inliers, then lowest squared error summed over *all*
  cameras). Scale is the ratio of RMS spreads, not the least-squares scale.
* All thresholds drive the search, but only the last ``n - 2`` count. For each counted threshold a
  scene earns ``max(0, cameras within it - 3)``: three cameras can always be aligned for free.
* Per dataset, ``mAA = sum(earned) / (counted * (sum(GT sizes) - 3 * scenes))`` and
  ``clusterness = sum(shared images) / sum(paired cluster sizes)``, over the non-``outliers`` GT
  scenes; the score is their harmonic mean and the final score the mean over datasets. A GT
  scene paired with ``outliers`` adds 0 to ``sum(GT sizes)`` but still deducts 3, so (as in the
  reference) mAA, and with it the score, can exceed 100 % for such submissions.

Missing submission rows count as unregistered images that belong to no cluster. This module
reads the files, pairs scenes with clusters and combines the counts; the alignment of camera
centres is :mod:`pipeline.eval.registration`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipeline.eval.registration import FREE_CAMERAS, register_centres

OUTLIERS = "outliers"
"""Scene label of images that belong to no scene; they never count as a cluster."""
SKIP_TOP_THRESHOLDS = 2
"""Leading (tightest) thresholds that steer registration but are not counted in mAA."""

_POSE_COLUMNS = ("dataset", "scene", "image", "rotation_matrix", "translation_vector")
_THRESHOLD_COLUMNS = ("dataset", "scene", "thresholds")

Cluster = dict[str, np.ndarray]
"""Image name -> camera centre (world coordinates; NaN when unregistered)."""
Scenes = dict[str, Cluster]
Poses = dict[str, Scenes]


@dataclass
class DatasetScore:
    """Scores of one dataset, in percent, at full precision."""

    score: float
    mAA: float
    clusterness: float


@dataclass
class ScoreReport:
    """Scores of a submission: the final score and each dataset's, in percent."""

    final: float
    datasets: dict[str, DatasetScore]

    def to_dict(self) -> dict:
        """Plain JSON-ready form: ``{"final": ..., "datasets": {name: {score, mAA, ...}}}``."""
        return {
            "final": self.final,
            "datasets": {name: asdict(score) for name, score in self.datasets.items()},
        }


# --------------------------------------------------------------------------- public entry points


def score_submission(
    submission: Path | str,
    labels: Path | str,
    thresholds: Path | str,
    datasets: Iterable[str] | None = None,
) -> ScoreReport:
    """Score a submission CSV against GT labels and thresholds with the official IMC2025 metric.

    ``datasets`` restricts scoring (and the final mean) to those datasets, for runs that
    reconstructed only some of them; the report keeps the labels' dataset order either way.
    Raises ``ValueError`` for malformed files, unknown datasets or images, and duplicate rows.
    """
    truth = read_poses(labels)
    limits = read_thresholds(thresholds)
    selected = _select_datasets(truth, datasets)
    submitted = read_poses(submission)
    _check_submission(submitted, truth, selected)
    results = {
        name: score_dataset(truth[name], submitted.get(name, {}), _dataset_thresholds(limits, name))
        for name in selected
    }
    final = float(np.mean([result.score for result in results.values()]))
    return ScoreReport(final=final, datasets=results)


def score_dataset(
    gt_scenes: Scenes, clusters: Scenes, thresholds: dict[str, np.ndarray]
) -> DatasetScore:
    """Score one dataset: pair each GT scene with a cluster, then combine mAA and clusterness.

    ``thresholds`` maps each GT scene to its distance thresholds (all the same length).
    """
    scenes = {name: cams for name, cams in gt_scenes.items() if name != OUTLIERS}
    missing = sorted(set(scenes) - set(thresholds))
    if missing:
        raise ValueError(f"no thresholds for scene(s) {', '.join(missing)}")
    pairings = [_best_pairing(cams, clusters, thresholds[name]) for name, cams in scenes.items()]
    counted = len(thresholds[next(iter(scenes))]) - SKIP_TOP_THRESHOLDS if scenes else 0
    shared = sum(p.shared for p in pairings)
    earned = sum(p.earned for p in pairings)
    clusterness = _ratio(shared, sum(p.cluster_size for p in pairings))
    gt_cameras = sum(p.scene_size for p in pairings)
    maa = _ratio(earned, counted * (gt_cameras - FREE_CAMERAS * len(pairings)))
    score = _harmonic_mean(maa, clusterness)
    return DatasetScore(score=100 * score, mAA=100 * maa, clusterness=100 * clusterness)


# ------------------------------------------------------------------------------------ reading


def read_poses(path: Path | str) -> Poses:
    """Read a labels or submission CSV into dataset -> scene -> image -> camera centre.

    Scenes keep the order of their first row, which the metric uses to break ties. An image may
    appear only once per dataset.
    """
    path = Path(path)
    poses: Poses = {}
    seen: set[tuple[str, str]] = set()
    for where, row in _read_rows(path, _POSE_COLUMNS):
        dataset, scene, image = row["dataset"], row["scene"], row["image"]
        if (dataset, image) in seen:
            raise ValueError(f"{where}: image {image!r} of dataset {dataset!r} appears twice")
        seen.add((dataset, image))
        rotation = _parse_numbers(row["rotation_matrix"], 9, "rotation_matrix", where)
        translation = _parse_numbers(row["translation_vector"], 3, "translation_vector", where)
        centre = -rotation.reshape(3, 3).T @ translation
        poses.setdefault(dataset, {}).setdefault(scene, {})[image] = centre
    return poses


def read_thresholds(path: Path | str) -> dict[tuple[str, str], np.ndarray]:
    """Read the per-scene distance thresholds, keyed by (dataset, scene).

    Every scene must have the same number of thresholds, more than the skipped ones, because the
    mAA denominator uses one count for the whole benchmark.
    """
    path = Path(path)
    limits: dict[tuple[str, str], np.ndarray] = {}
    for where, row in _read_rows(path, _THRESHOLD_COLUMNS):
        values = row["thresholds"].split(";")
        limits[(row["dataset"], row["scene"])] = _parse_numbers(
            row["thresholds"], len(values), "thresholds", where
        )
    counts = {len(values) for values in limits.values()}
    if len(counts) > 1:
        raise ValueError(f"{path.name}: scenes have different numbers of thresholds {counts}")
    if counts and min(counts) <= SKIP_TOP_THRESHOLDS:
        raise ValueError(f"{path.name}: need more than {SKIP_TOP_THRESHOLDS} thresholds per scene")
    return limits


def _read_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ("file line N", {column: value}) for each non-blank row, checking the header."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [column for column in columns if column not in header]
        if missing:
            raise ValueError(f"{path.name}: missing column(s) {', '.join(missing)}")
        index = {column: header.index(column) for column in columns}
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path.name} line {reader.line_num}"
            if len(row) != len(header):
                raise ValueError(f"{where}: expected {len(header)} fields, found {len(row)}")
            yield where, {column: row[i].strip() for column, i in index.items()}


def _parse_numbers(text: str, size: int, what: str, where: str) -> np.ndarray:
    """Parse ``size`` ';'-joined floats ('nan' allowed), with an error naming the row."""
    parts = text.split(";")
    if len(parts) != size:
        raise ValueError(f"{where}: {what} needs {size} ';'-joined numbers, found {len(parts)}")
    try:
        return np.array([float(part) for part in parts], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{where}: {what} holds a value that is not a number: {text!r}") from None


def _select_datasets(truth: Poses, datasets: Iterable[str] | None) -> list[str]:
    """GT datasets to score, in GT order; unknown names are errors, not silent zeros."""
    if datasets is None:
        selected = list(truth)
    else:
        wanted = set(datasets)
        unknown = sorted(wanted - set(truth))
        if unknown:
            raise ValueError(f"dataset(s) not in the labels: {', '.join(unknown)}")
        selected = [name for name in truth if name in wanted]
    if not selected:
        raise ValueError("no dataset to score")
    return selected


def _check_submission(submitted: Poses, truth: Poses, selected: Sequence[str]) -> None:
    """Reject submissions that name datasets or images the labels do not know."""
    unknown = sorted(set(submitted) - set(truth))
    if unknown:
        raise ValueError(f"submission has dataset(s) not in the labels: {', '.join(unknown)}")
    for dataset in selected:
        known = {image for cams in truth[dataset].values() for image in cams}
        for cams in submitted.get(dataset, {}).values():
            extra = sorted(set(cams) - known)
            if extra:
                raise ValueError(
                    f"submission dataset {dataset!r} has image(s) not in the labels: "
                    f"{', '.join(extra[:5])}"
                )


def _dataset_thresholds(
    limits: dict[tuple[str, str], np.ndarray], dataset: str
) -> dict[str, np.ndarray]:
    """Thresholds of one dataset's scenes, keyed by scene."""
    return {scene: values for (name, scene), values in limits.items() if name == dataset}


# ------------------------------------------------------------------------- scene/cluster pairing


@dataclass(frozen=True)
class _Pairing:
    """What the metric keeps of one GT scene paired with one cluster (all zero for outliers)."""

    shared: int = 0
    """GT-scene images the cluster holds, registered or not."""
    earned: int = 0
    """Sum over counted thresholds of max(0, cameras within the threshold - 3)."""
    scene_size: int = 0
    """Images in the GT scene."""
    cluster_size: int = 0
    """Images in the cluster, from any GT scene."""


def _best_pairing(scene: Cluster, clusters: Scenes, thresholds: np.ndarray) -> _Pairing:
    """Pair a GT scene with the cluster sharing most images, then most accurate, then first.

    Only the clusters tied on shared images are registered: the ranking never needs the others.
    """
    if not clusters:
        return _Pairing()
    shared = [_shared_count(scene, name, cams) for name, cams in clusters.items()]
    most = max(shared)
    best: _Pairing | None = None
    for (name, cams), count in zip(clusters.items(), shared, strict=True):
        if count != most:
            continue
        pairing = _pair(scene, name, cams, thresholds)
        if best is None or pairing.earned > best.earned:
            best = pairing
    assert best is not None
    return best


def _shared_count(scene: Cluster, name: str, cams: Cluster) -> int:
    """GT-scene images in the cluster; the outliers cluster counts as empty."""
    return 0 if name == OUTLIERS else sum(image in cams for image in scene)


def _pair(scene: Cluster, name: str, cams: Cluster, thresholds: np.ndarray) -> _Pairing:
    """Register a cluster to a GT scene and count its accurate cameras."""
    if name == OUTLIERS:
        return _Pairing()
    common = [image for image in scene if image in cams]  # GT order: it fixes the triplet order
    submitted = np.array([cams[image] for image in common]).reshape(-1, 3)
    truth = np.array([scene[image] for image in common]).reshape(-1, 3)
    return _Pairing(
        shared=len(common),
        earned=_earned(submitted, truth, thresholds),
        scene_size=len(scene),
        cluster_size=len(cams),
    )


def _earned(submitted: np.ndarray, truth: np.ndarray, thresholds: np.ndarray) -> int:
    """mAA numerator of one pairing: per counted threshold, registered cameras beyond three."""
    valid = np.all(np.isfinite(submitted), axis=1)
    if valid.sum() < FREE_CAMERAS:
        return 0
    errors = register_centres(submitted[valid], truth[valid], thresholds)
    counted = slice(SKIP_TOP_THRESHOLDS, None)
    within = np.sum(errors[:, counted] < thresholds[counted], axis=0)
    return int(np.sum(np.maximum(within - FREE_CAMERAS, 0)))


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, or 0 where the denominator is not positive (as the reference)."""
    return float(numerator / denominator) if denominator > 0 else 0.0


def _harmonic_mean(a: float, b: float) -> float:
    """F1-style combination: zero as soon as either part is zero."""
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)
