"""Running a learned extractor on one image: keypoints in COLMAP's convention and their
descriptors. Keypoints go into the COLMAP database, where pycolmap verifies and maps them
as it does SIFT; descriptors stay in ``descriptors/<image_id>.npy`` next to the database
(COLMAP's descriptor table holds SIFT bytes only, see :mod:`pipeline.descriptor_store`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pipeline.learned import ExtractorFn, load_model


@dataclass(frozen=True)
class ImageFeatures:
    """Keypoints of one image in COLMAP's convention (pixel centres at +0.5)."""

    keypoints: np.ndarray
    """(N, 2) float32, in the original image's pixels."""
    descriptors: np.ndarray
    """(N, D) float16, L2-normalised where the model normalises them."""
    size: tuple[int, int]
    """Original (width, height)."""


@functools.lru_cache(maxsize=4)
def load_extractor(
    name: str, max_keypoints: int, device: str, weights_dir: str = ""
) -> ExtractorFn:
    """Build (once per process) the named extractor on ``device``."""
    return load_model(name).build_extractor(max_keypoints, torch.device(device), weights_dir)


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
    path: Path,
    name: str,
    max_size: int,
    max_keypoints: int,
    device: torch.device,
    weights_dir: str = "",
) -> ImageFeatures:
    """Keypoints and descriptors of one image with the named learned extractor."""
    tensor, scale, size = load_image(path, max_size, device)
    model = load_extractor(name, max_keypoints, str(device), weights_dir)
    with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
        kpts, desc = model(tensor)
    # Model pixel centres are at integer coordinates; COLMAP's are at +0.5.
    kpts = (kpts.float().cpu().numpy() + 0.5) * scale
    return ImageFeatures(
        keypoints=kpts.astype(np.float32),
        descriptors=desc.float().cpu().numpy().astype(np.float16),
        size=(int(size[0]), int(size[1])),
    )
