"""Presets merge over typed defaults and refuse what they do not know."""

from __future__ import annotations

import json

import pytest

from pipeline.config import PipelineConfig, merge_config, parse_overrides
from pipeline.presets import DEFAULT_PRESET, PRESETS, list_presets, load_preset


def test_default_preset_is_plain_defaults() -> None:
    config = load_preset()
    assert config.name == DEFAULT_PRESET
    assert config.features.extractor == "sift"
    assert config.pairs.method == "retrieval" and config.pairs.exhaustive_below == 40
    assert config.mapping.mapper == "incremental"


def test_preset_only_changes_what_it_names() -> None:
    config = load_preset("sift-global")
    assert config.mapping.mapper == "global"
    assert config.mapping.min_model_size == PipelineConfig().mapping.min_model_size
    assert config.features == PipelineConfig().features


def test_overrides_merge_into_nested_sections() -> None:
    config = load_preset("colmap", {"features": {"max_num_features": 1024}})
    assert config.features.max_num_features == 1024
    assert config.features.max_image_size == -1  # from the preset, kept


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads_and_round_trips(name: str) -> None:
    config = load_preset(name)
    again = PipelineConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_unknown_preset_and_setting_are_clear_errors() -> None:
    with pytest.raises(KeyError, match="unknown preset 'nope'"):
        load_preset("nope")
    with pytest.raises(KeyError, match="unknown setting 'colour'"):
        merge_config(PipelineConfig(), {"features": {"colour": 1}})
    with pytest.raises(ValueError, match="expects a mapping"):
        merge_config(PipelineConfig(), {"features": 3})


def test_presets_are_plain_data() -> None:
    assert json.loads(json.dumps(PRESETS)) == PRESETS


def test_unknown_step_implementation_is_a_clear_error() -> None:
    from pipeline.pairs import select_pairs

    config = load_preset("sift", {"pairs": {"method": "psychic"}})
    known = "unknown pair method 'psychic'; known: exhaustive, retrieval"
    with pytest.raises(ValueError, match=known):
        select_pairs(["a.jpg", "b.jpg"], config.pairs)


def test_presets_load_offline_without_torch_until_used() -> None:
    """Loading any preset is pure configuration: torch loads only when a learned step runs."""
    import subprocess
    import sys

    code = (
        "import sys; from pipeline.presets import list_presets, load_preset;"
        "[load_preset(n) for n in list_presets()];"
        "import pipeline.reconstruct, pipeline.pairs;"
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("features.max_num_features.x=1", "max_num_features expects int, got dict"),
        ("features.max_num_features=4k", "max_num_features expects int, got str '4k'"),
        ("features.max_num_features=true", "expects int, got bool"),
        ("mapping.ignore_two_view_tracks=yes", "ignore_two_view_tracks expects bool"),
        ("features.camera_mode=Auto", "unknown camera_mode 'Auto'"),
        ("features=1", "'features' expects a mapping"),
    ],
)
def test_overrides_of_the_wrong_type_are_refused_when_the_preset_loads(
    override: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_preset("sift", parse_overrides([override]))


def test_an_int_is_taken_for_a_float_setting() -> None:
    config = load_preset("sift", parse_overrides(["features.peak_threshold=1"]))
    assert config.features.peak_threshold == 1.0
    assert isinstance(config.features.peak_threshold, float)
