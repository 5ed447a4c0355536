"""Where retraining finds the benchmark pipeline: the checkout's ``dvc.yaml`` and
``params.yaml``, or the folder ``SCENE3D_PIPELINE_DIR`` names (the image's ``/app``, since
an installed package has no checkout around it)."""

from __future__ import annotations

from pathlib import Path

import yaml

from scene3d import experiments
from scene3d.airflow import REPO_ROOT
from scene3d.settings import Settings


def test_the_checkout_is_the_default(tmp_path) -> None:
    settings = Settings(home=tmp_path)
    assert experiments.pipeline_dir(settings) == REPO_ROOT
    params = experiments.base_params(settings)
    assert set(params["benchmarks"]) == {"bench", "bench_imc"}
    assert all(Path(folder).is_absolute() for folder in params["benchmarks"].values())


def test_a_pipeline_folder_apart_from_the_package(tmp_path, monkeypatch) -> None:
    spec = tmp_path / "app"
    spec.mkdir()
    shipped = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    shipped["benchmarks"] = {"photos": "data/photos"}
    (spec / "params.yaml").write_text(yaml.safe_dump(shipped))
    monkeypatch.setenv("SCENE3D_PIPELINE_DIR", str(spec))
    monkeypatch.setenv("SCENE3D_HOME", str(tmp_path / "home"))
    settings = Settings.from_env()
    assert experiments.pipeline_dir(settings) == spec
    # relative benchmark folders are relative to the params file that names them
    assert experiments.base_params(settings)["benchmarks"] == {"photos": str(spec / "data/photos")}


def test_the_overlay_replaces_the_benchmarks(tmp_path) -> None:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"benchmarks": {"mine": "bench"}}))
    settings = Settings(home=tmp_path, experiment_params=str(overlay))
    assert experiments.base_params(settings)["benchmarks"] == {"mine": str(tmp_path / "bench")}
