"""Registration of camera centres: an exact similarity is recovered to machine precision."""

from __future__ import annotations

import numpy as np

from pipeline.eval.registration import register_centres

THRESHOLDS = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5)


def _rotation(angle: float, axis: tuple[float, float, float]) -> np.ndarray:
    """Rodrigues rotation, so poses are realistic without extra dependencies."""
    k = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def test_register_centres_recovers_exact_similarity() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(7, 3))
    rotation = _rotation(0.7, (0.3, 1.0, -0.4))
    submitted = (truth - 1.5) @ rotation.T / 2.0
    errors = register_centres(submitted, truth, np.array(THRESHOLDS))
    assert errors.shape == (7, len(THRESHOLDS))
    assert np.all(errors < 1e-9)
