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


def test_lone_false_match_does_not_merge_two_scenes() -> None:
    from pipeline.scenes import split_components, triangle_supported

    temple = [("t1", "t2", 90), ("t2", "t3", 80), ("t1", "t3", 70)]
    temple += [("t3", "t4", 60), ("t2", "t4", 50)]
    dino = [("d1", "d2", 60), ("d2", "d3", 55), ("d1", "d3", 40)]
    bridge = [("t4", "d1", 37)]  # confident, but no third image agrees
    names = ["t1", "t2", "t3", "t4", "d1", "d2", "d3"]
    merged, _ = split_components(names, temple + dino + bridge, 3)
    assert len(merged) == 1
    kept = triangle_supported(temple + dino + bridge)
    assert ("t4", "d1", 37) not in kept and len(kept) == len(temple) + len(dino)
    split, leftovers = split_components(names, kept, 3)
    assert split == [["t1", "t2", "t3", "t4"], ["d1", "d2", "d3"]] and leftovers == []
