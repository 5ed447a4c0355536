"""Step 4: descriptor matching and two-view geometric verification.

Pairs are matched in blocks through pycolmap so that progress rises as pairs
finish and a cancel request is honoured between blocks. Verified two-view
geometries land in the COLMAP database, where the mapper reads them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pycolmap

from pipeline import descriptor_store
from pipeline.config import MatchingConfig
from pipeline.pairs import write_pairs
from pipeline.progress import CancelToken, ProgressCallback
from pipeline.registry import lookup

if TYPE_CHECKING:  # torch loads only when a learned preset runs
    from pipeline.learned.lightglue import PairInput

Matcher = Callable[
    [Path, Sequence[tuple[str, str]], MatchingConfig, ProgressCallback, CancelToken], None
]

# SIFT pairs per pycolmap call: about five calls per run, so progress still moves, but
# each call rebuilds the matcher state of every image it touches (measured on fox, 630
# pairs: 57 s in blocks of 48, 40 s in blocks of 126 or in one call).
_MIN_BLOCK, _MAX_BLOCK, _BLOCKS = 48, 500, 5
# Learned pairs per block: LightGlue matches pair by pair (or batch by batch) anyway, and
# on a CPU a pair can take a second, so blocks stay small for progress and resume.
_LEARNED_BLOCK = 48


def block_size(total: int) -> int:
    """SIFT pairs per matching call for a run of ``total`` pairs."""
    return min(max(-(-total // _BLOCKS), _MIN_BLOCK), _MAX_BLOCK)


def _verification_options(cfg: MatchingConfig) -> pycolmap.TwoViewGeometryOptions:
    opts = pycolmap.TwoViewGeometryOptions()
    opts.min_num_inliers = cfg.min_num_inliers
    return opts


def _in_blocks(
    pairs: Sequence[tuple[str, str]],
    progress: ProgressCallback,
    cancel: CancelToken,
    run_block: Callable[[Sequence[tuple[str, str]], Path], None],
    size: int,
) -> None:
    """Call ``run_block(block, block_file)`` per block of pairs (the block also written as a
    COLMAP match list), honouring cancel between blocks and reporting progress after each."""
    total = len(pairs)
    with tempfile.TemporaryDirectory(prefix="scene3d-pairs-") as tmp:
        block_file = Path(tmp) / "block.txt"
        for start in range(0, total, size):
            cancel.check()
            block = pairs[start : start + size]
            write_pairs(block, block_file)
            run_block(block, block_file)
            done = min(start + size, total)
            progress("matching", done / total, f"matched {done}/{total} pairs")


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

    def run_block(_block: Sequence[tuple[str, str]], block_file: Path) -> None:
        pycolmap.match_image_pairs(
            database,
            matching_options=opts,
            pairing_options=pycolmap.ImportedPairingOptions(match_list_path=str(block_file)),
            verification_options=verification,
            device=pycolmap.Device.cpu,
        )

    _in_blocks(pairs, progress, cancel, run_block, block_size(len(pairs)))


class _LearnedInputs:
    """Keypoints, descriptors and sizes of the images of a block, loaded once each."""

    def __init__(self, database: Path, device: object, half: bool) -> None:
        self._database = database
        self._device = device
        self._half = half
        self._cache: dict[str, PairInput] = {}
        db = pycolmap.Database.open(database)
        try:
            images = db.read_all_images()
            self.ids = {img.name: img.image_id for img in images}
            self._camera_of = {img.name: img.camera_id for img in images}
            self.max_keypoints = max(
                (db.num_keypoints_for_image(img.image_id) for img in images), default=0
            )
        finally:
            db.close()

    def get(self, db: pycolmap.Database, name: str) -> PairInput:
        import torch

        from pipeline.learned.lightglue import PairInput

        if name not in self._cache:
            if len(self._cache) >= 256:  # bounded: retrieval pairs revisit images at random
                self._cache.pop(next(iter(self._cache)))
            image_id = self.ids[name]
            camera = db.read_camera(self._camera_of[name])
            # COLMAP's pixel centres are at +0.5; the models' at integer coordinates.
            kpts = db.read_keypoints(image_id)[:, :2] - 0.5
            desc = descriptor_store.load_descriptors(self._database, image_id)
            dtype = torch.float16 if self._half else torch.float32
            self._cache[name] = PairInput(
                keypoints=torch.from_numpy(kpts).float().to(self._device),
                descriptors=torch.from_numpy(desc).to(self._device, dtype),
                size=torch.tensor([camera.width, camera.height], dtype=torch.float32).to(
                    self._device
                ),
            )
        return self._cache[name]


def match_learned(
    database: Path,
    pairs: Sequence[tuple[str, str]],
    cfg: MatchingConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    """LightGlue on learned features, then pycolmap's two-view verification.

    Works block by block: matches of a block are written, then verified, so an
    interrupted run resumes at the first block with pairs that have no matches yet.
    """
    import torch

    from pipeline.learned.device import select_device, set_threads
    from pipeline.learned.lightglue import batch_size_for, load_matcher, match_batch, match_one

    meta = descriptor_store.read_meta(database)
    extractor, weights_dir = meta["extractor"], meta.get("weights_dir", "")
    device = select_device(cfg.device)
    set_threads(cfg.num_threads)
    on_gpu = device.type == "cuda"
    net = load_matcher(extractor, str(device), cfg.adaptive and not on_gpu, weights_dir)
    net.conf.filter_threshold = cfg.filter_threshold
    inputs = _LearnedInputs(database, device, half=on_gpu)
    step = batch_size_for(device, inputs.max_keypoints) if on_gpu else 1
    verification = _verification_options(cfg)

    def run_block(block: Sequence[tuple[str, str]], block_file: Path) -> None:
        db = pycolmap.Database.open(database)
        try:
            ids = inputs.ids
            todo = [(a, b) for a, b in block if not db.exists_matches(ids[a], ids[b])]
            for i in range(0, len(todo), step):
                cancel.check()  # a CPU pair can take a second: stop within one
                chunk = todo[i : i + step]
                feats = [(inputs.get(db, a), inputs.get(db, b)) for a, b in chunk]
                with torch.autocast(device.type, dtype=torch.float16, enabled=on_gpu):
                    found = match_batch(net, feats) if on_gpu else [match_one(net, *feats[0])]
                for (a, b), matches in zip(chunk, found, strict=True):
                    db.write_matches(ids[a], ids[b], matches)
        finally:
            db.close()
        pycolmap.verify_matches(database, block_file, options=verification)

    _in_blocks(pairs, progress, cancel, run_block, _LEARNED_BLOCK)


MATCHERS: dict[str, Matcher] = {"sift-nn": match_sift, "lightglue": match_learned}


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
