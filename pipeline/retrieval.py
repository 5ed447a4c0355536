"""Image retrieval without downloaded weights: VLAD over the images' own local descriptors.

A small codebook is learnt per collection (k-means on a sample of its descriptors),
each image becomes one vector (residuals to the words, intra-normalised, square-rooted,
L2-normalised), and cosine similarity ranks the other images. Good enough to find the
few images worth matching, which is what keeps matching linear in the collection size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.sparse.csgraph import minimum_spanning_tree

# Descriptors sampled per image to learn the codebook; the codebook needs a few
# thousand samples, not all of them.
_SAMPLE_PER_IMAGE = 256


def _normalise(desc: np.ndarray) -> np.ndarray:
    """Float32, rows L2-normalised (square-rooted first for SIFT's uint8 histograms)."""
    out = desc.astype(np.float32)
    if desc.dtype == np.uint8:  # RootSIFT: Hellinger kernel instead of Euclidean
        out = np.sqrt(out / np.maximum(out.sum(axis=1, keepdims=True), 1e-6))
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-6)


def learn_codebook(locals_: Sequence[np.ndarray], num_words: int, seed: int = 0) -> np.ndarray:
    """(num_words, D) cluster centres from a seeded sample of every image's descriptors."""
    rng = np.random.default_rng(seed)
    sample = []
    for desc in locals_:
        if len(desc) > _SAMPLE_PER_IMAGE:
            desc = desc[rng.choice(len(desc), _SAMPLE_PER_IMAGE, replace=False)]
        sample.append(desc)
    data = np.concatenate(sample).astype(np.float64)
    words = min(num_words, len(data))
    centres, _ = kmeans2(data, words, minit="++", seed=seed, iter=20)
    return centres.astype(np.float32)


def vlad(desc: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """One image's VLAD vector (length num_words * D), L2-normalised."""
    words, dim = codebook.shape
    out = np.zeros((words, dim), dtype=np.float32)
    if len(desc):
        dists = (desc**2).sum(1)[:, None] - 2 * desc @ codebook.T + (codebook**2).sum(1)[None]
        nearest = dists.argmin(axis=1)
        np.add.at(out, nearest, desc - codebook[nearest])
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)  # intra-normalisation
    flat = (np.sign(out) * np.sqrt(np.abs(out))).ravel()  # power law: tames bursty words
    return flat / max(float(np.linalg.norm(flat)), 1e-6)


def global_descriptors(
    locals_: Sequence[np.ndarray], num_words: int = 32, seed: int = 0
) -> np.ndarray:
    """(N, num_words * D) global descriptors of N images from their local descriptors."""
    normed = [_normalise(d) for d in locals_]
    codebook = learn_codebook([d for d in normed if len(d)], num_words, seed)
    return np.stack([vlad(d, codebook) for d in normed])


def retrieval_pairs(
    names: Sequence[str], globals_: np.ndarray, num_neighbors: int
) -> list[tuple[str, str]]:
    """Each image with its ``num_neighbors`` most similar others, plus the maximum
    spanning tree of the similarity graph.

    The tree adds N-1 pairs and guarantees that no group of images is cut off from the
    rest by the top-k choice alone (pairs across real scenes then fail verification,
    which is what splits scenes). Returns sorted unordered pairs of sorted names.
    """
    n = len(names)
    if n < 2:
        return []
    sim = globals_ @ globals_.T
    np.fill_diagonal(sim, -np.inf)
    k = min(num_neighbors, n - 1)
    chosen: set[tuple[int, int]] = set()
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    for i in range(n):
        for j in top[i]:
            chosen.add((min(i, int(j)), max(i, int(j))))
    # Maximum spanning tree = minimum spanning tree of (2 - similarity), all positive.
    cost = 2.0 - np.where(np.isfinite(sim), sim, 1.0)
    np.fill_diagonal(cost, 0.0)
    tree = minimum_spanning_tree(cost).tocoo()
    for i, j in zip(tree.row, tree.col, strict=True):
        chosen.add((min(int(i), int(j)), max(int(i), int(j))))
    pairs = [tuple(sorted((names[i], names[j]))) for i, j in chosen]
    return sorted(pairs)  # type: ignore[arg-type]
