"""Scene splitting on the verified-pair graph."""

from __future__ import annotations

from pipeline.pairs import exhaustive_pairs, read_pairs, write_pairs
from pipeline.scenes import split_components


def test_components_largest_first_and_small_ones_left_over() -> None:
    names = ["a", "b", "c", "d", "e", "f", "g", "x"]
    edges = [("a", "b", 50), ("b", "c", 40), ("d", "e", 30), ("e", "f", 30), ("f", "g", 20)]
    components, leftovers = split_components(names, edges, min_size=3)
    assert components == [["d", "e", "f", "g"], ["a", "b", "c"]]
    assert leftovers == ["x"]


def test_equal_sizes_are_ordered_by_first_name() -> None:
    names = ["p", "q", "r", "a", "b", "c"]
    edges = [("p", "q", 20), ("q", "r", 20), ("a", "b", 20), ("b", "c", 20)]
    components, _ = split_components(names, edges, min_size=2)
    assert components == [["a", "b", "c"], ["p", "q", "r"]]


def test_exhaustive_pairs_round_trip(tmp_path) -> None:
    pairs = exhaustive_pairs(["c.jpg", "a.jpg", "b.jpg"])
    assert pairs == [("a.jpg", "b.jpg"), ("a.jpg", "c.jpg"), ("b.jpg", "c.jpg")]
    write_pairs(pairs, tmp_path / "pairs.txt")
    assert read_pairs(tmp_path / "pairs.txt") == pairs
