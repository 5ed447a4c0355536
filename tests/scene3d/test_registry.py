"""scene3d.registry with a real MLflow registry (a local SQLite store): the first champion,
versions as pyfunc models that load and reconstruct, an unreachable server as a clear error."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from pipeline.eval.synthetic import make_collection
from pipeline.presets import load_preset
from scene3d import registry
from scene3d.names import CHAMPION_ALIAS, MODEL_NAME
from scene3d.settings import Settings

pytestmark = pytest.mark.slow  # MLflow's first import and store creation take seconds


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # a sqlite:/// store keeps artifacts under ./mlruns
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    return Settings(home=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_a_registry_without_champion_gets_the_default_preset_once(settings) -> None:
    from mlflow import MlflowClient

    assert registry.ensure_champion(settings) == "1"
    assert registry.ensure_champion(settings) == "1"  # a second start registers nothing
    client = MlflowClient(settings.mlflow_tracking_uri)
    versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version) == "1"
    assert versions[0].tags["preset"] == settings.default_preset
    run = client.get_run(versions[0].run_id)
    # Every setting is visible in the UI, not only the preset's name.
    assert run.data.params["features.camera_mode"] == json.dumps(
        load_preset(settings.default_preset).features.camera_mode
    )


def test_a_version_loads_back_as_the_whole_configuration_it_was_given(settings) -> None:
    config = load_preset("fast", {"mapping": {"min_model_size": 4}})
    version = registry.register_version(settings, config, metrics={"score": 0.5})
    model = registry.load_version(settings, version)
    assert (model.name, model.version, model.config) == (MODEL_NAME, version, config)


def test_the_champion_loads_by_alias_to_a_working_reconstructor(settings, tmp_path) -> None:
    import mlflow.pyfunc

    registry.set_champion(
        settings,
        registry.register_version(settings, load_preset("sift", {"features": {"num_threads": 1}})),
    )
    images, _, _ = make_collection(tmp_path / "photos", n_views=8, n_scenes=1, seed=5)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}")
    out = model.predict(pd.DataFrame([{"source": str(images), "out_dir": str(tmp_path / "out")}]))
    row = out.iloc[0]
    assert row["n_images"] == 8 and row["n_clusters"] == 1
    assert row["registration_rate"] >= 0.75
    assert (tmp_path / "out" / "submission.csv").is_file()


def test_an_unknown_alias_and_an_unreachable_server_are_told_apart(settings, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with pytest.raises(registry.NoChampion, match="no 'champion' version yet"):
        registry.champion_version(settings)
    gone = Settings(home=settings.home, mlflow_tracking_uri="http://127.0.0.1:9")
    with pytest.raises(registry.RegistryError, match="MLflow did not answer") as caught:
        registry.champion_version(gone)
    assert not isinstance(caught.value, registry.NoChampion)


def test_without_a_tracking_server_the_registry_says_so(tmp_path) -> None:
    with pytest.raises(registry.RegistryError, match="MLFLOW_TRACKING_URI"):
        registry.champion_version(Settings(home=tmp_path))


def test_a_learned_version_carries_copies_of_its_weights(settings) -> None:
    import hashlib

    from pipeline import learned

    version = registry.register_version(settings, load_preset("aliked-lightglue"))
    model = registry.load_version(settings, version)
    weights = Path(model.config.features.weights_dir)
    files = registry.version_files(settings, version)
    assert weights.is_dir() and weights.is_relative_to(files)

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    for installed in learned.load_model("aliked").weight_files():
        assert digest(weights / installed.name) == digest(installed)
    # What the version stores names no machine's folder: each loader sets its own.
    stored = next(files.rglob("config.json"))
    assert json.loads(stored.read_text())["features"]["weights_dir"] == ""
    assert model.config == load_preset(
        "aliked-lightglue", {"features": {"weights_dir": str(weights)}}
    )


def test_a_version_is_read_not_unpickled(settings) -> None:
    """The worker loads a version from a tracking server anyone on its network may write
    to: its configuration is read as a file, its pickle never runs."""
    version = registry.register_version(settings, load_preset("fast"))
    files = registry.version_files(settings, version)
    (files / "python_model.pkl").write_bytes(b"not a pickle: loading it would fail")
    assert registry.load_version(settings, version).config == load_preset("fast")


def test_a_registry_created_anew_is_not_served_an_old_versions_files(settings, tmp_path) -> None:
    from dataclasses import replace

    first = registry.register_version(settings, load_preset("fast"))
    fresh = replace(settings, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'other.db'}")
    again = registry.register_version(fresh, load_preset("sift"))
    assert first == again == "1"
    assert registry.load_version(settings, "1").config == load_preset("fast")
    assert registry.load_version(fresh, "1").config == load_preset("sift")


def test_a_stray_run_id_in_the_environment_is_not_resumed(settings, monkeypatch) -> None:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    experiment = mlflow.set_experiment("another")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as other:
        pass
    monkeypatch.setenv("MLFLOW_RUN_ID", other.info.run_id)
    version = registry.register_version(settings, load_preset("fast"))
    client = MlflowClient(settings.mlflow_tracking_uri)
    run_id = client.get_model_version(MODEL_NAME, version).run_id
    assert run_id != other.info.run_id
    assert "features.camera_mode" not in client.get_run(other.info.run_id).data.params
    assert os.environ["MLFLOW_RUN_ID"] == other.info.run_id  # given back as it was


def test_artifacts_outside_the_version_folder_are_refused(tmp_path) -> None:
    files = tmp_path / "v"
    files.mkdir()
    (files / "MLmodel").write_text(
        "flavors:\n  python_function:\n    artifacts:\n      config:\n"
        "        path: ../../etc/passwd\n"
    )
    with pytest.raises(registry.RegistryError, match="outside"):
        registry.artifact_paths(files)
