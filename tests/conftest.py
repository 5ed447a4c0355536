"""Shared fixtures: where the shared benchmark lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_bench_dir() -> Path | None:
    """The IMC2025-layout benchmark: ``SCENE3D_BENCH_DIR`` or ``../shared/data/bench``."""
    env = os.environ.get("SCENE3D_BENCH_DIR")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "bench"
    return candidate if (candidate / "train_labels.csv").is_file() else None


@pytest.fixture(scope="session")
def bench_dir() -> Path:
    path = find_bench_dir()
    if path is None:
        pytest.skip(
            "shared benchmark not found: set SCENE3D_BENCH_DIR or place it at ../shared/data/bench"
        )
    return path
