"""Shared fixtures: where the shared benchmark lives."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_bench_dir(variable: str = "SCENE3D_BENCH_DIR", name: str = "bench") -> Path | None:
    """An IMC2025-layout benchmark: ``$variable`` or ``../shared/data/<name>``."""
    env = os.environ.get(variable)
    candidate = Path(env) if env else REPO_ROOT.parent / "shared" / "data" / name
    return candidate if (candidate / "train_labels.csv").is_file() else None


def find_bench_dirs() -> list[Path]:
    """Both shared benchmarks that are present (``SCENE3D_BENCH_IMC_DIR`` names the other)."""
    found = (find_bench_dir(), find_bench_dir("SCENE3D_BENCH_IMC_DIR", "bench_imc"))
    return [path for path in found if path is not None]


@pytest.fixture(scope="session")
def bench_dir() -> Path:
    path = find_bench_dir()
    if path is None:
        pytest.skip(
            "shared benchmark not found: set SCENE3D_BENCH_DIR or place it at ../shared/data/bench"
        )
    return path


@pytest.fixture(autouse=True)
def no_leaked_tracking_uri() -> Iterator[None]:
    """``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the process
    environment, so a test that talked to its own short-lived MLflow would point every later
    test at a server that is gone; each test starts from the environment it was given."""
    given = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if "mlflow" in sys.modules:
        sys.modules["mlflow"].set_tracking_uri(None)  # the module global, and the variable
    if given is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = given
