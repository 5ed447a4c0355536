"""Step 2: local features. Images are registered in the COLMAP database with their
camera priors, then keypoints and descriptors are written next to them.

Extractors are looked up by name (``FeatureConfig.extractor``) so that learned
features can be added as presets without touching the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pycolmap

from pipeline.config import FeatureConfig
from pipeline.ingest import ImageRecord
from pipeline.progress import CancelToken, ProgressCallback
from pipeline.registry import lookup

Extractor = Callable[
    [Path, Path, Sequence[ImageRecord], FeatureConfig, ProgressCallback, CancelToken], None
]

# Images per pycolmap call: small enough for steady progress, large enough that
# the per-call overhead (opening the database, spawning threads) stays negligible.
_CHUNK = 8


def _sift_options(cfg: FeatureConfig) -> pycolmap.FeatureExtractionOptions:
    opts = pycolmap.FeatureExtractionOptions()
    opts.max_image_size = cfg.max_image_size
    opts.num_threads = cfg.num_threads
    opts.sift.max_num_features = cfg.max_num_features
    return opts


def extract_sift(
    image_dir: Path,
    database: Path,
    images: Sequence[ImageRecord],
    cfg: FeatureConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    """SIFT through pycolmap (weight-free), in chunks so progress rises per image."""
    names = [rec.name for rec in images]
    done = 0
    for start in range(0, len(names), _CHUNK):
        cancel.check()
        chunk = names[start : start + _CHUNK]
        pycolmap.extract_features(
            database,
            image_dir,
            image_names=chunk,
            camera_mode=pycolmap.CameraMode.PER_IMAGE,
            extraction_options=_sift_options(cfg),
            device=pycolmap.Device.cpu,
        )
        done += len(chunk)
        progress("features", done / len(names), f"extracted features of {done}/{len(names)} images")


EXTRACTORS: dict[str, Extractor] = {"sift": extract_sift}


def apply_camera_priors(database: Path, images: Sequence[ImageRecord]) -> int:
    """Write EXIF focal lengths (in pixels) into the database as camera priors.

    COLMAP guesses 1.2 x the long side when it has no prior; a real focal length
    from EXIF makes initialisation and registration markedly more reliable.
    Returns how many cameras received a prior.
    """
    priors = {rec.name: rec.focal_px for rec in images if rec.focal_px}
    if not priors:
        return 0
    db = pycolmap.Database.open(database)
    try:
        updated = 0
        for image in db.read_all_images():
            focal = priors.get(image.name)
            if not focal:
                continue
            camera = db.read_camera(image.camera_id)
            for idx in camera.focal_length_idxs():
                camera.params[idx] = focal
            camera.has_prior_focal_length = True
            db.update_camera(camera)
            updated += 1
        return updated
    finally:
        db.close()


def extract_features(
    image_dir: Path,
    database: Path,
    images: Sequence[ImageRecord],
    cfg: FeatureConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    """Run the configured extractor, then apply EXIF camera priors."""
    extractor = lookup(EXTRACTORS, cfg.extractor, "extractor")
    extractor(image_dir, database, images, cfg, progress, cancel)
    apply_camera_priors(database, images)
