"""Step 4: descriptor matching and two-view geometric verification.

Pairs are matched in blocks through pycolmap so that progress rises as pairs
finish and a cancel request is honoured between blocks. Verified two-view
geometries land in the COLMAP database, where the mapper reads them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pycolmap

from pipeline.config import MatchingConfig
from pipeline.pairs import write_pairs
from pipeline.progress import CancelToken, ProgressCallback
from pipeline.registry import lookup

Matcher = Callable[
    [Path, Sequence[tuple[str, str]], MatchingConfig, ProgressCallback, CancelToken], None
]

# Pairs per pycolmap call; a block of SIFT pairs takes well under a second on 2 cores.
_BLOCK = 48


def _verification_options(cfg: MatchingConfig) -> pycolmap.TwoViewGeometryOptions:
    opts = pycolmap.TwoViewGeometryOptions()
    opts.min_num_inliers = cfg.min_num_inliers
    return opts


def match_sift(
    database: Path,
    pairs: Sequence[tuple[str, str]],
    cfg: MatchingConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    """Nearest-neighbour SIFT matching (ratio test, cross check) plus verification."""
    opts = pycolmap.FeatureMatchingOptions()
    opts.num_threads = cfg.num_threads
    opts.sift.max_ratio = cfg.max_ratio
    opts.sift.cross_check = cfg.cross_check
    verification = _verification_options(cfg)
    total = len(pairs)
    with tempfile.TemporaryDirectory(prefix="scene3d-pairs-") as tmp:
        block_file = Path(tmp) / "block.txt"
        for start in range(0, total, _BLOCK):
            cancel.check()
            block = pairs[start : start + _BLOCK]
            write_pairs(block, block_file)
            pycolmap.match_image_pairs(
                database,
                matching_options=opts,
                pairing_options=pycolmap.ImportedPairingOptions(match_list_path=str(block_file)),
                verification_options=verification,
                device=pycolmap.Device.cpu,
            )
            done = min(start + _BLOCK, total)
            progress("matching", done / total, f"matched {done}/{total} pairs")


MATCHERS: dict[str, Matcher] = {"sift-nn": match_sift}


def match_pairs(
    database: Path,
    pairs: Sequence[tuple[str, str]],
    cfg: MatchingConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    matcher = lookup(MATCHERS, cfg.matcher, "matcher")
    if pairs:
        matcher(database, pairs, cfg, progress, cancel)


def count_verified_pairs(database: Path) -> int:
    db = pycolmap.Database.open(database)
    try:
        return db.num_verified_image_pairs()
    finally:
        db.close()
