"""Step 3: which image pairs to match, written as a COLMAP match list (one pair a line)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pipeline import retrieval
from pipeline.config import PairsConfig
from pipeline.registry import lookup


def exhaustive_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Every unordered pair, in a fixed order (sorted names)."""
    return list(itertools.combinations(sorted(names), 2))


DescriptorLoader = Callable[[str], np.ndarray]


def retrieval_pairs(
    names: Sequence[str], cfg: PairsConfig, descriptors: DescriptorLoader
) -> list[tuple[str, str]]:
    """Exhaustive below ``cfg.exhaustive_below`` images, else top-k by VLAD similarity
    plus a spanning tree: about ``num_neighbors`` pairs per image, linear in N."""
    if len(names) < cfg.exhaustive_below:
        return exhaustive_pairs(names)
    ordered = sorted(names)
    globals_ = retrieval.global_descriptors([descriptors(n) for n in ordered], cfg.num_words)
    return retrieval.retrieval_pairs(ordered, globals_, cfg.num_neighbors)


PAIR_METHODS = {"exhaustive": exhaustive_pairs, "retrieval": retrieval_pairs}


def select_pairs(
    names: Sequence[str], cfg: PairsConfig, descriptors: DescriptorLoader | None = None
) -> list[tuple[str, str]]:
    """Pairs by ``cfg.method``; ``descriptors(name)`` gives an image's local descriptors
    to the methods that need them (retrieval)."""
    method = lookup(PAIR_METHODS, cfg.method, "pair method")
    if method is exhaustive_pairs:
        return exhaustive_pairs(names)
    if descriptors is None:
        raise ValueError(f"pair method {cfg.method!r} needs the images' descriptors")
    return method(names, cfg, descriptors)


def write_pairs(pairs: Sequence[tuple[str, str]], path: Path) -> None:
    path.write_text("".join(f"{a} {b}\n" for a, b in pairs))


def read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text().splitlines():
        if line.strip():
            a, b = line.split()
            pairs.append((a, b))
    return pairs
