"""Learned extractors on the CPU: weights load offline, keypoints come back in COLMAP's
convention and in the original image's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pipeline import learned  # noqa: E402
from pipeline.learned.extract import extract_image  # noqa: E402


@pytest.mark.parametrize("name", list(learned.MODELS))
def test_extractors_load_offline_and_find_keypoints(
    name: str, views: list[Path], offline: None
) -> None:
    feats = extract_image(views[0], name, 320, 512, torch.device("cpu"))
    n = len(feats.keypoints)
    assert 50 < n <= 512
    assert feats.descriptors.shape[0] == n and feats.descriptors.dtype == np.float16
    assert feats.size == (320, 240)
    # COLMAP convention: pixel centres at +0.5, all inside the image.
    assert (feats.keypoints >= 0).all()
    assert (feats.keypoints[:, 0] <= 320).all() and (feats.keypoints[:, 1] <= 240).all()


def test_resized_keypoints_come_back_in_original_pixels(views: list[Path]) -> None:
    full = extract_image(views[0], "xfeat", -1, 256, torch.device("cpu"))
    half = extract_image(views[0], "xfeat", 160, 256, torch.device("cpu"))
    assert half.size == full.size
    assert half.keypoints[:, 0].max() > 200  # scaled back up, not left in the 160 px frame
