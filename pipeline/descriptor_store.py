"""Learned descriptors on disk, next to the COLMAP database (whose descriptor table holds
SIFT bytes only): ``descriptors/<image_id>.npy`` plus ``meta.json`` naming the extractor.
Kept free of torch so that pair selection can read them cheaply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

DESCRIPTOR_DIR = "descriptors"


def descriptor_dir(database: Path) -> Path:
    return database.parent / DESCRIPTOR_DIR


def write_meta(database: Path, extractor: str, weights_dir: str = "") -> None:
    """Which extractor (and copies of its weights, if any) wrote the descriptors: the
    matching step loads the matcher trained on them from the same place."""
    folder = descriptor_dir(database)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"extractor": extractor, "weights_dir": weights_dir}
    (folder / "meta.json").write_text(json.dumps(meta))


def read_meta(database: Path) -> dict[str, Any]:
    path = descriptor_dir(database) / "meta.json"
    if not path.exists():
        raise RuntimeError(f"no learned descriptors next to {database}: run a learned extractor")
    return json.loads(path.read_text())


def save_descriptors(database: Path, image_id: int, descriptors: np.ndarray) -> None:
    folder = descriptor_dir(database)
    tmp = folder / f"{image_id}.tmp.npy"
    np.save(tmp, descriptors)
    tmp.replace(folder / f"{image_id}.npy")  # a crash never leaves a half-written file


def load_descriptors(database: Path, image_id: int) -> np.ndarray:
    return np.load(descriptor_dir(database) / f"{image_id}.npy")


def has_descriptors(database: Path, image_id: int) -> bool:
    return (descriptor_dir(database) / f"{image_id}.npy").exists()
