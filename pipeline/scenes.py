"""Scene splitting: verified image pairs form a graph; each connected component is
one candidate scene (a cluster) and is mapped on its own, so unrelated places
never share a model. Images in no component of useful size are outliers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import pycolmap
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def verified_edges(database: str, min_inliers: int) -> list[tuple[str, str, int]]:
    """(name_a, name_b, inliers) for every pair that passed geometric verification."""
    db = pycolmap.Database.open(database)
    try:
        names = {img.image_id: img.name for img in db.read_all_images()}
        pair_ids, geometries = db.read_two_view_geometries()
    finally:
        db.close()
    edges = []
    for pair_id, geom in zip(pair_ids, geometries, strict=True):
        inliers = len(geom.inlier_matches)
        if inliers < min_inliers:
            continue
        a, b = pycolmap.pair_id_to_image_pair(pair_id)
        edges.append((names[a], names[b], inliers))
    return edges


def triangle_supported(edges: Iterable[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Edges whose two images also share a third matched image.

    Photos of one place overlap in groups, so a true edge almost always closes a
    triangle; a confident false match between two places (two objects on the same
    black background, look-alike facades) usually stands alone, and it is exactly
    the kind of edge that would merge two scenes into one component.
    """
    edges = list(edges)
    neighbours: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    return [(a, b, n) for a, b, n in edges if neighbours[a] & neighbours[b]]


def split_components(
    names: Sequence[str], edges: Iterable[tuple[str, str, int]], min_size: int
) -> tuple[list[list[str]], list[str]]:
    """Connected components of size >= ``min_size``, largest first (ties: first name).

    Returns ``(components, leftovers)``; names inside each component are sorted.
    """
    index = {name: i for i, name in enumerate(names)}
    rows, cols = [], []
    for a, b, _ in edges:
        rows.append(index[a])
        cols.append(index[b])
    graph = coo_matrix(([1] * len(rows), (rows, cols)), shape=(len(names), len(names)))
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[str]] = defaultdict(list)
    for name, label in zip(names, labels, strict=True):
        groups[int(label)].append(name)
    ordered = sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g[0]))
    components = [g for g in ordered if len(g) >= min_size]
    leftovers = sorted(n for g in ordered if len(g) < min_size for n in g)
    return components, leftovers
