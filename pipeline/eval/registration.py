"""Registration of submitted camera centres to the ground truth, as the IMC2025 metric does it.

Exhaustive RANSAC over camera triplets: every triplet gives a Horn (quaternion) similarity;
every distinct inlier set of at least three cameras it yields is refit with an SVD (Kabsch)
rotation and offered to each threshold, which keeps its best model (most inliers, then lowest
squared error summed over all cameras). Scale is the ratio of RMS spreads, not the
least-squares scale. :mod:`pipeline.eval.scoring` counts the cameras these alignments bring
within each threshold.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

FREE_CAMERAS = 3
"""Cameras any similarity transform aligns for free; deducted from every count (``to_dec``)."""

_CHUNK_ELEMENTS = 250_000
"""Models x cameras evaluated at once; bounds memory for large scenes."""

Rotations = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class _BestModels:
    """Best model so far for each threshold: inliers, summed squared error, per-camera errors."""

    inliers: np.ndarray
    total: np.ndarray
    squared: np.ndarray

    @classmethod
    def empty(cls, cameras: int, thresholds: int) -> _BestModels:
        return cls(
            inliers=np.zeros(thresholds, dtype=np.int64),
            total=np.full(thresholds, np.inf),
            squared=np.full((cameras, thresholds), np.inf),
        )

    def offer(self, squared: np.ndarray, limits: np.ndarray) -> None:
        """Offer models (rows of squared errors, in search order) to every threshold.

        The reference offers them one by one and adopts a model where it has more inliers, or as
        many and a lower total error, so the first best model wins ties. Picking, per threshold,
        the first model with most inliers and lowest total and applying the same test once is
        equivalent. A NaN total (degenerate fit, no inliers) is read as infinity: it never wins.
        """
        inliers = np.sum(squared[:, :, None] < limits, axis=1)  # models x thresholds
        total = np.nan_to_num(np.sum(squared, axis=1), nan=np.inf)
        first = np.arange(len(total))
        for column in range(len(limits)):
            pick = np.lexsort((first, total, -inliers[:, column]))[0]
            count, error = inliers[pick, column], total[pick]
            current = self.inliers[column]
            if count > current or (count == current and error < self.total[column]):
                self.inliers[column] = count
                self.total[column] = error
                self.squared[:, column] = squared[pick]


def register_centres(
    submitted: np.ndarray, truth: np.ndarray, thresholds: np.ndarray
) -> np.ndarray:
    """Distances (cameras x thresholds) of submitted centres to the GT after the best alignment.

    Exhaustive RANSAC over camera triplets, as the reference: each triplet is aligned by Horn's
    method; each inlier set (>= 3 cameras, at any threshold) not met before is refit by SVD and
    offered to every threshold. Refitting a set already seen gives the same model, which can never
    win again, so skipping it changes nothing. ``submitted`` and ``truth`` are (n, 3), finite.
    """
    count = len(submitted)
    limits = np.asarray(thresholds, dtype=np.float64) ** 2
    best = _BestModels.empty(count, len(limits))
    seen: set[bytes] = set()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for triplets in _triplets(count):
            inliers = _triplet_inliers(submitted, truth, triplets, limits)
            for subsets in _chunks(_new_inlier_sets(inliers, seen), count):
                shape = (len(subsets), count, 3)
                scaled, shift = _fit_similarities(
                    np.broadcast_to(submitted, shape),
                    np.broadcast_to(truth, shape),
                    subsets.astype(np.float64),
                    _svd_rotations,
                )
                best.offer(_squared_errors(scaled, shift, submitted, truth), limits)
    return np.sqrt(best.squared)


def _triplets(count: int) -> Iterator[np.ndarray]:
    """All index triplets i < j < k in lexicographic order (the reference's loop order), as
    (T, 3) blocks sized so that triplets x cameras stays within the memory budget."""
    size = max(1, _CHUNK_ELEMENTS // max(count, 1))
    combos = itertools.combinations(range(count), 3)
    while block := list(itertools.islice(combos, size)):
        yield np.array(block, dtype=np.intp)


def _chunks(rows: np.ndarray, count: int) -> Iterator[np.ndarray]:
    """Consecutive blocks of rows, sized so that rows x cameras stays within the memory budget."""
    size = max(1, _CHUNK_ELEMENTS // max(count, 1))
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _triplet_inliers(
    submitted: np.ndarray, truth: np.ndarray, triplets: np.ndarray, limits: np.ndarray
) -> np.ndarray:
    """Inlier masks (triplets x thresholds x cameras) of the Horn alignment of each triplet."""
    weight = np.ones(triplets.shape)
    scaled, shift = _fit_similarities(submitted[triplets], truth[triplets], weight, _horn_rotations)
    squared = _squared_errors(scaled, shift, submitted, truth)
    return squared[:, None, :] < limits[None, :, None]


def _new_inlier_sets(inliers: np.ndarray, seen: set[bytes]) -> np.ndarray:
    """Inlier masks with at least three cameras not seen before, in first-occurrence order
    (triplet by triplet, tightest threshold first), recording them in ``seen``."""
    flat = inliers.reshape(-1, inliers.shape[-1])
    rows = np.flatnonzero(flat.sum(axis=1) >= FREE_CAMERAS)
    packed = np.packbits(flat[rows], axis=1)
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first = np.unique(keys, return_index=True)
    fresh = []
    for position in np.sort(first):
        key = keys[position].tobytes()
        if key not in seen:
            seen.add(key)
            fresh.append(rows[position])
    return flat[np.asarray(fresh, dtype=np.intp)]


def _fit_similarities(
    source: np.ndarray, target: np.ndarray, weight: np.ndarray, rotations: Rotations
) -> tuple[np.ndarray, np.ndarray]:
    """Similarities (s*R, t) mapping each weighted point set of ``source`` onto ``target``.

    ``source`` and ``target`` are (T, m, 3); ``weight`` is (T, m) of 0/1, selecting the points
    of each of the T sets. Scale is the ratio of RMS spreads about the centroids, as in the
    reference, not the least-squares optimum.
    """
    size = weight.sum(axis=1)[:, None]
    source_mean = np.einsum("tm,tmi->ti", weight, source) / size
    target_mean = np.einsum("tm,tmi->ti", weight, target) / size
    p = (source - source_mean[:, None, :]) * weight[:, :, None]
    q = (target - target_mean[:, None, :]) * weight[:, :, None]
    scale = np.sqrt(np.einsum("tmi,tmi->t", q, q) / np.einsum("tmi,tmi->t", p, p))
    scaled = scale[:, None, None] * rotations(p, q)
    shift = target_mean - np.einsum("tij,tj->ti", scaled, source_mean)
    return scaled, shift


def _squared_errors(
    scaled: np.ndarray, shift: np.ndarray, submitted: np.ndarray, truth: np.ndarray
) -> np.ndarray:
    """Squared distances (models x cameras) between transformed submitted centres and the GT."""
    moved = np.tensordot(scaled, submitted, axes=([2], [1])) + shift[:, :, None]  # (T, 3, n)
    offset = moved - truth.T
    return np.einsum("tin,tin->tn", offset, offset)


def _horn_rotations(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Best rotations taking centred sets p onto q, by Horn's unit-quaternion method (1987).

    The reference uses it for minimal triplets; it differs from SVD only for (near) collinear
    sets, where the rotation about the line is arbitrary, so keeping it matters for fidelity.
    """
    s = np.sum(p[:, :, :, None] * q[:, :, None, :], axis=1)  # s[t, a, b] = sum p_a q_b
    (sxx, sxy, sxz), (syx, syy, syz), (szx, szy, szz) = s.transpose(1, 2, 0)
    n = np.zeros((len(s), 4, 4))  # lower triangle is enough for eigh
    n[:, 0, 0] = sxx + syy + szz
    n[:, 1, 0], n[:, 1, 1] = syz - szy, sxx - syy - szz
    n[:, 2, 0], n[:, 2, 1], n[:, 2, 2] = szx - sxz, sxy + syx, syy - sxx - szz
    n[:, 3, 0], n[:, 3, 1], n[:, 3, 2], n[:, 3, 3] = (
        sxy - syx,
        szx + sxz,
        syz + szy,
        szz - sxx - syy,
    )
    values, vectors = np.linalg.eigh(n)
    largest = np.argmax(values, axis=1)
    quaternion = np.take_along_axis(vectors, largest[:, None, None], axis=2)[:, :, 0]
    return _quaternion_matrices(quaternion)


def _quaternion_matrices(quaternion: np.ndarray) -> np.ndarray:
    """Rotation matrices of (w, x, y, z) quaternions (normalised here)."""
    w, x, y, z = (quaternion / np.linalg.norm(quaternion, axis=1, keepdims=True)).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def _svd_rotations(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Best proper rotations taking centred sets p onto q, by SVD (Kabsch), reflections removed."""
    u, _, vh = np.linalg.svd(q.transpose(0, 2, 1) @ p)
    flip = np.linalg.det(u @ vh) < 0
    u[flip, :, 2] *= -1
    return u @ vh
