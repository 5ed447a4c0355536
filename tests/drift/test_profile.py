"""Reference profiles (drift.profile)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drift.features import FEATURES
from drift.profile import ReferenceProfile
from tests.drift.conftest import MakeImages


def test_from_images(make_images: MakeImages) -> None:
    profile = ReferenceProfile.from_images(make_images("ref", range(4)), "baseline")
    assert profile.name == "baseline"
    assert profile.n_images == 4
    assert set(profile.samples) == set(FEATURES)
    assert all(len(v) == 4 for v in profile.samples.values())
    assert profile.created_at.endswith("+00:00")


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


@pytest.mark.parametrize(
    "content",
    [
        {"name": "x"},
        {"version": 1, "name": "x"},
        {"version": 1, "samples": {"brightness": "high"}},
        {"version": 1, "samples": {"brightness": [0.5, "x"]}},
    ],
)
def test_load_rejects_bad_files(tmp_path: Path, content: dict) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError):
        ReferenceProfile.load(path)


def test_load_ignores_unknown_features(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    content = {"version": 1, "name": "x", "samples": {"brightness": [0.5], "future": [1.0]}}
    path.write_text(json.dumps(content))
    assert ReferenceProfile.load(path).samples == {"brightness": [0.5]}
