"""Matching runs in a few large blocks: every pair once, progress after each block."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import Cancelled
from pipeline.matching import _in_blocks, block_size
from pipeline.pairs import read_pairs
from pipeline.progress import CancelToken


@pytest.mark.parametrize(("total", "size"), [(10, 48), (630, 126), (1150, 230), (20_000, 500)])
def test_block_size_keeps_calls_few_but_progress_moving(total: int, size: int) -> None:
    assert block_size(total) == size


def test_every_pair_is_matched_once_with_progress_per_block() -> None:
    pairs = [(f"{i}.jpg", f"{j}.jpg") for i in range(40) for j in range(i + 1, 40)]  # 780
    seen: list[tuple[str, str]] = []
    fractions: list[float] = []

    def run_block(block, block_file: Path) -> None:
        assert read_pairs(block_file) == list(block)  # the match list COLMAP reads
        seen.extend(block)

    _in_blocks(
        pairs,
        lambda _s, f, _m: fractions.append(f),
        CancelToken(),
        run_block,
        block_size(len(pairs)),
    )
    assert seen == pairs
    assert len(fractions) == 5 and fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cancel_stops_between_blocks() -> None:
    pairs = [(f"{i}.jpg", f"{i + 1}.jpg") for i in range(300)]
    token = CancelToken()
    blocks: list[int] = []

    def run_block(block, _file: Path) -> None:
        blocks.append(len(block))
        token.cancel()

    with pytest.raises(Cancelled):
        _in_blocks(pairs, lambda *_: None, token, run_block, block_size(300))
    assert blocks == [block_size(300)]
