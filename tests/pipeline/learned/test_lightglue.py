"""LightGlue on learned features: batched matching agrees with single pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pipeline.learned.extract import ImageFeatures, extract_image  # noqa: E402
from pipeline.learned.lightglue import PairInput, load_matcher, match_batch, match_one  # noqa: E402


def _inputs(feats: ImageFeatures) -> PairInput:
    return PairInput(
        keypoints=torch.from_numpy(feats.keypoints - 0.5),
        descriptors=torch.from_numpy(feats.descriptors.astype(np.float32)),
        size=torch.tensor(feats.size, dtype=torch.float32),
    )


@pytest.mark.parametrize("name", ["aliked", "xfeat"])
def test_batched_lightglue_matches_single_pairs(name: str, views: list[Path]) -> None:
    feats = [_inputs(extract_image(p, name, 320, 384, torch.device("cpu"))) for p in views]
    net = load_matcher(name, "cpu", adaptive=False)
    pairs = [(feats[0], feats[1]), (feats[1], feats[2]), (feats[0], feats[2])]
    batched = match_batch(net, pairs)
    for (a, b), got in zip(pairs, batched, strict=True):
        single = match_one(net, a, b)
        assert len(single) > 20
        assert np.array_equal(np.sort(got, axis=0), np.sort(single, axis=0))
