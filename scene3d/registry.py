"""The model registry: MLflow's registered model ``scene3d-reconstruction`` and its alias.

- :func:`register_version` logs an engine configuration as a new pyfunc version
  (:class:`scene3d.pyfunc.ReconstructionModel`), its settings as run parameters;
- :func:`ensure_champion` gives a registry without a ``champion`` its first version: the
  default preset, so a fresh platform serves a registered model from its first job;
- :func:`champion_version` resolves the alias, :func:`load_version` loads one version
  by its number as the :class:`~scene3d.served.ServedModel` a job runs with.

MLflow is imported inside the functions: the job tasks and the API import this module
without paying for it until they talk to the registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.config import PipelineConfig, merge_config
from pipeline.presets import load_preset
from scene3d import __version__
from scene3d.names import CHAMPION_ALIAS, MODEL_NAME, MODELS_EXPERIMENT
from scene3d.served import ServedModel, config_from_artifacts
from scene3d.settings import Settings


class RegistryError(RuntimeError):
    """The registry could not answer (unreachable, or a version that does not load)."""


class NoChampion(RegistryError):
    """The registered model, or its ``champion`` alias, does not exist yet."""


_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
"""MLflow's error codes for an unknown model or alias (as opposed to a failed request)."""


def _client(settings: Settings) -> Any:
    if not settings.mlflow_tracking_uri:
        raise RegistryError("no MLflow tracking server is configured (MLFLOW_TRACKING_URI)")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


def flat_params(config: PipelineConfig) -> dict[str, str]:
    """Every setting as ``section.key -> value``: what a version's run shows in the UI."""
    params: dict[str, str] = {"name": config.name}
    for section, values in config.to_dict().items():
        if isinstance(values, dict):
            params.update({f"{section}.{key}": json.dumps(val) for key, val in values.items()})
    return params


def register_version(
    settings: Settings,
    config: PipelineConfig,
    *,
    metrics: dict[str, float] | None = None,
    tags: dict[str, str] | None = None,
    artifacts: dict[str, Path] | None = None,
) -> str:
    """Log ``config`` as a new version of :data:`MODEL_NAME`; its version number.
    ``artifacts`` go into the version too (the drift reference it was chosen on, the
    scene-membership model's training report)."""
    import mlflow
    from scene3d.pyfunc import CONFIG_ARTIFACT, SIGNATURE, ReconstructionModel

    _client(settings)  # the clear error when no server is configured
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    experiment = mlflow.set_experiment(MODELS_EXPERIMENT)
    with tempfile.TemporaryDirectory(prefix="scene3d-model-") as tmp:
        config_file = Path(tmp) / "config.json"
        # Where the weights lie is the loading machine's business (see load_version).
        portable = merge_config(config, {"features": {"weights_dir": ""}})
        config_file.write_text(json.dumps(portable.to_dict(), indent=2))
        artifacts = {**(artifacts or {}), **_weight_copies(config, Path(tmp) / "weights")}
        # A fresh run: a stray MLFLOW_RUN_ID in the environment would make start_run
        # resume that run, whatever experiment it is given.
        with (
            _no_run_id_env(),
            mlflow.start_run(
                experiment_id=experiment.experiment_id, run_name=f"model-{config.name}"
            ),
        ):
            mlflow.log_params(flat_params(config))
            if metrics:
                mlflow.log_metrics(metrics)
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=ReconstructionModel(),
                artifacts={
                    CONFIG_ARTIFACT: str(config_file),
                    **{key: str(path) for key, path in artifacts.items()},
                },
                # Given, not inferred: inference runs the model in a subprocess for minutes.
                pip_requirements=[f"scene3d=={__version__}"],
                signature=SIGNATURE,
            )
    # Registered with its tags in one call: a retry that looks a version up by its tags
    # (experiments.promote) never misses one a crash left untagged.
    registered = mlflow.register_model(
        info.model_uri, MODEL_NAME, tags={"preset": config.name, **(tags or {})}
    )
    return str(registered.version)


@contextlib.contextmanager
def _no_run_id_env() -> Iterator[None]:
    stray = os.environ.pop("MLFLOW_RUN_ID", None)
    try:
        yield
    finally:
        if stray is not None:
            os.environ["MLFLOW_RUN_ID"] = stray


def _weight_copies(config: PipelineConfig, folder: Path) -> dict[str, Path]:
    """Copies of the weight files a learned extractor loads (none for SIFT): a version
    must not depend on the packages installed when it is loaded."""
    from pipeline import learned
    from pipeline.learned.weights import chosen
    from scene3d.pyfunc import WEIGHTS_ARTIFACT

    if config.features.extractor not in learned.MODELS:
        return {}
    folder.mkdir()
    for path in learned.load_model(config.features.extractor).weight_files():
        shutil.copy2(chosen(path, config.features.weights_dir), folder / path.name)
    return {WEIGHTS_ARTIFACT: folder}


def champion_version(settings: Settings) -> str:
    """The version ``champion`` names; :class:`NoChampion` when there is none yet,
    :class:`RegistryError` when MLflow does not answer."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client(settings).get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version)
    except MlflowException as exc:
        if exc.error_code in _MISSING:
            raise NoChampion(f"{MODEL_NAME} has no {CHAMPION_ALIAS!r} version yet") from None
        raise RegistryError(f"MLflow did not answer: {exc.message}") from None
    except OSError as exc:  # requests' connection errors
        raise RegistryError(f"MLflow did not answer: {exc}") from None


def set_champion(settings: Settings, version: str) -> None:
    _client(settings).set_registered_model_alias(MODEL_NAME, CHAMPION_ALIAS, version)


def ensure_champion(
    settings: Settings, preset: str | None = None, artifacts: dict[str, Path] | None = None
) -> str:
    """The champion's version; a registry without one gets ``preset`` (the default
    preset) registered as a new version, with ``artifacts`` (its drift reference), and
    ``champion`` pointed at it."""
    try:
        return champion_version(settings)
    except NoChampion:
        pass
    config = load_preset(preset or settings.default_preset)
    version = register_version(
        settings, config, tags={"origin": "default preset"}, artifacts=artifacts
    )
    set_champion(settings, version)
    return version


def version_files(settings: Settings, version: str) -> Path:
    """The version's files in ``home/models/<version>-<run>`` (fetched once: a version
    never changes); kept, since its weight copies are loaded from there by every job's
    tasks. The run that logged it is part of the name: a registry created anew numbers
    its versions from 1 again, and must not be served an old version 1's files."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    try:
        run_id = client.get_model_version(MODEL_NAME, version).run_id
        # Resolved here, by this settings' server: a models:/ URI would be resolved by
        # whatever registry the process last set globally.
        source = client.get_model_version_download_uri(MODEL_NAME, version)
    except MlflowException as exc:
        raise RegistryError(f"{MODEL_NAME}/{version}: {exc.message}") from None
    target = settings.home / "models" / f"{version}-{run_id}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(tmp), tracking_uri=settings.mlflow_tracking_uri
        )
        Path(local).rename(target)  # whole or not at all; another loader may have won
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def artifact_paths(files: Path) -> dict[str, Path]:
    """A downloaded version's artifacts by key: the MLmodel file maps each key to the
    file it kept (under the file's own name). Paths that leave ``files`` are refused."""
    import yaml

    try:
        flavor = yaml.safe_load((files / "MLmodel").read_text())["flavors"]["python_function"]
        entries = flavor.get("artifacts") or {}
        paths = {str(key): (files / entry["path"]).resolve() for key, entry in entries.items()}
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
        raise RegistryError(f"{files.name} is not a pyfunc model: {exc}") from None
    root = files.resolve()
    if any(not path.is_relative_to(root) for path in paths.values()):
        raise RegistryError(f"{files.name} names artifacts outside its folder")
    return paths


def load_version(settings: Settings, version: str) -> ServedModel:
    """Version ``version`` as the model a job runs with: its configuration and weight
    copies read as files. Nothing of it is unpickled: a version comes from a tracking
    server anyone on its network may write to, and its code is the installed package's
    anyway (``mlflow.pyfunc.load_model`` of the same version gives the same configuration)."""
    from scene3d.pyfunc import CONFIG_ARTIFACT, WEIGHTS_ARTIFACT

    try:
        artifacts = artifact_paths(version_files(settings, version))
        if CONFIG_ARTIFACT not in artifacts:
            raise RegistryError(f"{MODEL_NAME}/{version} is not a scene3d reconstruction model")
        config = config_from_artifacts(artifacts[CONFIG_ARTIFACT], artifacts.get(WEIGHTS_ARTIFACT))
    except RegistryError:
        raise
    except Exception as exc:  # unreachable, deleted, or artifacts that do not parse
        raise RegistryError(f"{MODEL_NAME}/{version} did not load: {exc}") from None
    return ServedModel(MODEL_NAME, version, config)
