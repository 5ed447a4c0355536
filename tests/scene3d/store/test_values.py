"""Column-value conversions: JSON both backends accept, finite floats."""

from __future__ import annotations

import json

import numpy as np

from scene3d.store.values import dumps_json, finite, json_safe


def test_json_safe_turns_numpy_and_non_finite_values_into_plain_json() -> None:
    value = {1: (np.float32(0.5), float("inf")), "a": np.arange(2), "n": None}
    assert json_safe(value) == {"1": [0.5, None], "a": [0, 1], "n": None}
    assert json.loads(dumps_json({"x": float("nan")})) == {"x": None}


def test_finite() -> None:
    assert finite(None) is None and finite(float("nan")) is None
    assert finite(np.float64(0.25)) == 0.25 and finite("1") == 1.0
