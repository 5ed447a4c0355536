"""The learned models are found by their module names, without loading torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline import learned
from pipeline.features import EXTRACTORS, extract_learned


def test_every_model_module_is_registered_under_its_name() -> None:
    assert list(learned.MODELS) == ["aliked", "disk", "xfeat"]
    assert learned.MODELS["xfeat"] == "pipeline.learned.models.xfeat"
    for name in learned.MODELS:
        assert EXTRACTORS[name] is extract_learned  # the feature step dispatches through it


def test_listing_the_models_does_not_load_torch() -> None:
    code = "import sys, pipeline.learned, pipeline.features; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_a_model_module_builds_an_extractor_and_its_matcher() -> None:
    pytest.importorskip("torch")
    model = learned.load_model("disk")
    assert callable(model.build_extractor) and callable(model.build_matcher)


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown learned extractor 'sift'; known: aliked"):
        learned.load_model("sift")
