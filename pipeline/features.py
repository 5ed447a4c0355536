"""Step 2: local features. Images are registered in the COLMAP database with their
camera priors, then keypoints and descriptors are written next to them.

Extractors are looked up by name (``FeatureConfig.extractor``) so that learned
features can be added as presets without touching the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pycolmap

from pipeline import descriptor_store
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


def _import_images(image_dir: Path, database: Path, names: Sequence[str]) -> dict[str, int]:
    """Register images (camera per image, COLMAP's focal guess) without extracting SIFT."""
    db = pycolmap.Database.open(database)
    try:
        known = {img.name: img.image_id for img in db.read_all_images()}
    finally:
        db.close()
    missing = [n for n in names if n not in known]
    if missing:
        pycolmap.import_images(
            database, image_dir, camera_mode=pycolmap.CameraMode.PER_IMAGE, image_names=missing
        )
        db = pycolmap.Database.open(database)
        try:
            known = {img.name: img.image_id for img in db.read_all_images()}
        finally:
            db.close()
    return {n: known[n] for n in names}


def extract_learned(
    image_dir: Path,
    database: Path,
    images: Sequence[ImageRecord],
    cfg: FeatureConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    """A learned extractor in torch; resumes per image (keypoints already written are kept)."""
    from pipeline import learned  # torch loads only when a learned preset runs

    device = learned.select_device(cfg.device)
    learned.set_threads(cfg.num_threads)
    ids = _import_images(image_dir, database, [rec.name for rec in images])
    descriptor_store.write_meta(database, cfg.extractor)
    total = len(images)
    db = pycolmap.Database.open(database)
    try:
        for done, rec in enumerate(images, start=1):
            cancel.check()
            image_id = ids[rec.name]
            if not descriptor_store.has_descriptors(database, image_id):
                feats = learned.extract_image(
                    image_dir / rec.name,
                    cfg.extractor,
                    cfg.max_image_size,
                    cfg.max_num_features,
                    device,
                )
                if db.exists_keypoints(image_id):
                    db.update_keypoints(image_id, feats.keypoints)
                else:
                    db.write_keypoints(image_id, feats.keypoints)
                # Descriptors last: their file is the per-image "done" marker.
                descriptor_store.save_descriptors(database, image_id, feats.descriptors)
            progress("features", done / total, f"extracted features of {done}/{total} images")
    finally:
        db.close()


EXTRACTORS: dict[str, Extractor] = {
    "sift": extract_sift,
    "aliked": extract_learned,
    "disk": extract_learned,
    "xfeat": extract_learned,
}


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
