"""``scene3d bench-throughput``: extraction images/s and LightGlue pairs/s per learned
extractor on one device, single pairs against padded batches, in one process.

This is the script to run on a GPU machine (``--device cuda``); on the CPU it gives the
baseline the GPU numbers are compared with.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Throughput:
    extractor: str
    device: str
    max_size: int
    keypoints: int
    images_per_s: float
    single_pairs_per_s: float
    batched_pairs_per_s: float
    batch: int


def _median_seconds(fn: Callable[[], None], repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    images: Sequence[Path],
    extractor: str,
    device_name: str = "auto",
    max_size: int = 1024,
    keypoints: int = 2048,
    num_pairs: int = 16,
    batch: int | None = None,
    repeats: int = 3,
) -> Throughput:
    """Throughput of one extractor and its matcher; models load before timing starts."""
    import torch

    from pipeline.learned.device import select_device
    from pipeline.learned.extract import extract_image
    from pipeline.learned.lightglue import (
        PairInput,
        batch_size_for,
        load_matcher,
        match_batch,
        match_one,
    )

    device = select_device(device_name)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    extracted = []

    def extract_all() -> None:
        extracted.clear()
        for path in images:
            extracted.append(extract_image(path, extractor, max_size, keypoints, device))
        sync()

    per_image = _median_seconds(extract_all, repeats) / len(images)
    half = device.type == "cuda"
    inputs = [
        PairInput(
            keypoints=torch.from_numpy(f.keypoints - 0.5).to(device),
            descriptors=torch.from_numpy(f.descriptors.astype(np.float32)).to(
                device, torch.float16 if half else torch.float32
            ),
            size=torch.tensor(f.size, dtype=torch.float32, device=device),
        )
        for f in extracted
    ]
    pairs = list(itertools.islice(itertools.combinations(inputs, 2), num_pairs))
    adaptive = load_matcher(extractor, str(device), adaptive=device.type != "cuda")
    full = load_matcher(extractor, str(device), adaptive=False)
    size = batch or max(1, min(len(pairs), batch_size_for(device, keypoints)))

    def single() -> None:
        with torch.autocast(device.type, dtype=torch.float16, enabled=half):
            for a, b in pairs:
                match_one(adaptive, a, b)
        sync()

    def batched() -> None:
        with torch.autocast(device.type, dtype=torch.float16, enabled=half):
            for start in range(0, len(pairs), size):
                match_batch(full, pairs[start : start + size])
        sync()

    return Throughput(
        extractor=extractor,
        device=str(device),
        max_size=max_size,
        keypoints=keypoints,
        images_per_s=1.0 / per_image,
        single_pairs_per_s=len(pairs) / _median_seconds(single, repeats),
        batched_pairs_per_s=len(pairs) / _median_seconds(batched, repeats),
        batch=size,
    )


def throughput_markdown(rows: Sequence[Throughput]) -> str:
    lines = [
        "| extractor | device | max px | keypoints | images/s | pairs/s single "
        "| pairs/s batched | batch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.extractor} | {r.device} | {r.max_size} | {r.keypoints} | {r.images_per_s:.2f} "
            f"| {r.single_pairs_per_s:.2f} | {r.batched_pairs_per_s:.2f} | {r.batch} |"
        )
    return "\n".join(lines) + "\n"
