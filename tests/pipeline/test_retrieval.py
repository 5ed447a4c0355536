"""Pair selection by retrieval: linear in the collection, connected, and mostly right."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pipeline import pairs, retrieval
from pipeline.config import PairsConfig


def _collection(n_scenes: int, per_scene: int, seed: int = 0) -> tuple[list[str], dict]:
    """Images whose local descriptors are noisy copies of their scene's own 'landmarks'."""
    rng = np.random.default_rng(seed)
    names, desc = [], {}
    for s in range(n_scenes):
        landmarks = rng.normal(size=(300, 32)).astype(np.float32)
        for v in range(per_scene):
            seen = landmarks[rng.choice(300, 150, replace=False)]
            name = f"s{s}_v{v:03d}.jpg"
            names.append(name)
            desc[name] = seen + 0.3 * rng.normal(size=seen.shape).astype(np.float32)
    return names, desc


def _connected(names: list[str], selected: list[tuple[str, str]]) -> int:
    index = {n: i for i, n in enumerate(names)}
    rows = [index[a] for a, _ in selected]
    cols = [index[b] for _, b in selected]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(names)))
    return connected_components(graph, directed=False)[0]


def test_small_collections_stay_exhaustive() -> None:
    names, desc = _collection(1, 10)
    cfg = PairsConfig(method="retrieval", exhaustive_below=40)
    assert pairs.select_pairs(names, cfg, desc.__getitem__) == pairs.exhaustive_pairs(names)


@pytest.mark.parametrize("n_scenes", [2, 4])
def test_retrieval_is_linear_connected_and_mostly_within_scenes(n_scenes: int) -> None:
    names, desc = _collection(n_scenes, 25)
    cfg = PairsConfig(method="retrieval", exhaustive_below=10, num_neighbors=5, num_words=8)
    selected = pairs.select_pairs(names, cfg, desc.__getitem__)
    n = len(names)
    assert len(selected) <= n * cfg.num_neighbors + n - 1  # top-k plus one spanning tree
    assert len(selected) < n * (n - 1) / 2 / 2
    assert all(a < b for a, b in selected) and len(set(selected)) == len(selected)
    assert _connected(names, selected) == 1  # the spanning tree keeps everything reachable
    same_scene = sum(a.split("_")[0] == b.split("_")[0] for a, b in selected)
    # Only spanning-tree edges may cross scenes: at most n_scenes - 1 of them.
    assert len(selected) - same_scene <= n_scenes - 1


def test_retrieval_is_deterministic() -> None:
    names, desc = _collection(2, 20)
    cfg = PairsConfig(method="retrieval", exhaustive_below=10, num_neighbors=4, num_words=8)
    first = pairs.select_pairs(names, cfg, desc.__getitem__)
    assert pairs.select_pairs(names, cfg, desc.__getitem__) == first


def test_sift_bytes_are_rootsift_normalised() -> None:
    desc = np.random.default_rng(0).integers(0, 255, size=(10, 128)).astype(np.uint8)
    out = retrieval._normalise(desc)
    assert out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_pair_count_grows_linearly() -> None:
    counts = {}
    cfg = PairsConfig(method="retrieval", exhaustive_below=10, num_neighbors=5, num_words=8)
    for n_scenes in (2, 4, 8):
        names, desc = _collection(n_scenes, 25, seed=n_scenes)
        counts[len(names)] = len(pairs.select_pairs(names, cfg, desc.__getitem__))
    sizes = np.array(sorted(counts))
    exponent = np.polyfit(np.log(sizes), np.log([counts[s] for s in sizes]), 1)[0]
    assert exponent < 1.15, counts


def test_retrieval_needs_descriptors() -> None:
    names = [f"{i}.jpg" for i in range(50)]
    with pytest.raises(ValueError, match="needs the images' descriptors"):
        pairs.select_pairs(names, PairsConfig(method="retrieval", exhaustive_below=10))


def test_exhaustive_count() -> None:
    names = [f"{i}.jpg" for i in range(7)]
    assert pairs.exhaustive_pairs(names) == list(itertools.combinations(sorted(names), 2))


@pytest.mark.slow
def test_engine_uses_retrieval_on_sift_descriptors(tmp_path: Path) -> None:
    from pipeline.eval.scoring import score_submission
    from pipeline.eval.synthetic import make_collection
    from pipeline.presets import load_preset
    from pipeline.reconstruct import reconstruct

    image_dir, labels, thresholds = make_collection(tmp_path / "data", n_views=8, n_scenes=2)
    overrides = {"pairs": {"exhaustive_below": 4, "num_neighbors": 3, "num_words": 8}}
    out = tmp_path / "out"
    reconstruct(image_dir, out, load_preset("sift", overrides), dataset="synthetic")
    selected = pairs.read_pairs(out / "pairs.txt")
    assert len(selected) <= 16 * 3 + 15 < 120  # top-3 plus a spanning tree, not all 120
    report = score_submission(out / "submission.csv", labels, thresholds)
    assert report.final > 80, report
