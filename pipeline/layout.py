"""The layout of one engine run folder: every file a run writes lives under its root.

The steps of :mod:`pipeline.reconstruct` find their inputs and leave their outputs here,
which is what lets a run resume after a crash. Kept free of heavy imports so that anything
that only needs the paths (the platform's job folder, say) stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class RunPaths:
    """Every file a run writes lives under ``root``; nothing is written elsewhere."""

    root: Path

    @property
    def images(self) -> Path:
        """The validated images and their manifest (the ingest step's output)."""
        return self.root / "images"

    @property
    def manifest(self) -> Path:
        """``manifest.json`` of the images (the name :mod:`pipeline.ingest` writes)."""
        return self.images / "manifest.json"

    @property
    def database(self) -> Path:
        """The COLMAP database: cameras, keypoints, matches, verified geometries."""
        return self.root / "database.db"

    @property
    def pairs(self) -> Path:
        """The selected image pairs, one ``a b`` a line."""
        return self.root / "pairs.txt"

    @property
    def models(self) -> Path:
        """One COLMAP model folder per reconstructed model."""
        return self.root / "models"

    @property
    def scenes(self) -> Path:
        """How the images split into scenes and which models mapping kept."""
        return self.root / "scenes.json"

    @property
    def ply(self) -> Path:
        """Raw and decimated point clouds."""
        return self.root / "ply"

    @property
    def submission(self) -> Path:
        """Every image's pose in the IMC2025 CSV format."""
        return self.root / "submission.csv"

    @property
    def clusters(self) -> Path:
        """Statistics of every exported model."""
        return self.root / "clusters.json"

    @property
    def summary(self) -> Path:
        """What :func:`pipeline.reconstruct.reconstruct` returned, as JSON."""
        return self.root / "summary.json"

    def marker(self, step: str) -> Path:
        """Left when ``step`` finished, so a resumed run skips it."""
        return self.root / f".{step}.done"
