"""Reference profiles (drift.profile)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drift.features import DESCRIPTOR_DIM, FEATURES
from drift.profile import ReferenceProfile
from tests.drift.conftest import MakeImages


def test_from_images(make_images: MakeImages) -> None:
    profile = ReferenceProfile.from_images(make_images("ref", range(4)), "baseline")
    assert profile.name == "baseline"
    assert profile.n_images == 4
    assert set(profile.samples) == set(FEATURES)
    assert all(len(v) == 4 for v in profile.samples.values())
    assert len(profile.descriptors) == 4
    assert profile.created_at.endswith("+00:00")
    assert profile.label == "baseline (4 images)"


def test_save_load_round_trip(tmp_path: Path, make_images: MakeImages) -> None:
    profile = ReferenceProfile.from_images(make_images("ref", range(3)), "baseline")
    path = tmp_path / "profiles" / "baseline.json"
    profile.save(path)
    assert ReferenceProfile.load(path) == profile
    assert not list(path.parent.glob(".*.tmp"))


def test_no_readable_images(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.raises(ValueError, match="no readable images"):
        ReferenceProfile.from_images([bad], "empty")


def _valid() -> dict:
    return {
        "version": 2,
        "name": "x",
        "samples": {name: [0.5, 0.6] for name in FEATURES},
        "descriptors": [[0.1] * DESCRIPTOR_DIM, [0.2] * DESCRIPTOR_DIM],
    }


@pytest.mark.parametrize(
    "change",
    [
        {"version": None},
        {"version": 1},  # the former format, without descriptors: rebuilt, not guessed
        {"samples": {"brightness": "high"}},
        {"samples": {**_valid()["samples"], "brightness": [0.5, "x"]}},
        {"samples": {**_valid()["samples"], "noise": [float("nan")]}},
        {"descriptors": [[0.1] * 3]},
        {"descriptors": None},
        {"descriptors": [[0.1] * DESCRIPTOR_DIM]},  # one descriptor for two images
    ],
)
def test_load_rejects_bad_files(tmp_path: Path, change: dict) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**_valid(), **change}))
    with pytest.raises(ValueError):
        ReferenceProfile.load(path)


def test_load_ignores_unknown_features(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    content = _valid()
    content["samples"]["future"] = [1.0]
    path.write_text(json.dumps(content))
    profile = ReferenceProfile.load(path)
    assert set(profile.samples) == set(FEATURES) and profile.n_images == 2
