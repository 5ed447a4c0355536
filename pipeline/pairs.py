"""Step 3: which image pairs to match, written as a COLMAP match list (one pair a line)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import PairsConfig
from pipeline.registry import lookup


def exhaustive_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Every unordered pair, in a fixed order (sorted names)."""
    return list(itertools.combinations(sorted(names), 2))


PAIR_METHODS = {"exhaustive": exhaustive_pairs}


def select_pairs(names: Sequence[str], cfg: PairsConfig) -> list[tuple[str, str]]:
    method = lookup(PAIR_METHODS, cfg.method, "pair method")
    return method(names)


def write_pairs(pairs: Sequence[tuple[str, str]], path: Path) -> None:
    path.write_text("".join(f"{a} {b}\n" for a, b in pairs))


def read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text().splitlines():
        if line.strip():
            a, b = line.split()
            pairs.append((a, b))
    return pairs
