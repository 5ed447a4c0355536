"""Step 2: local features. Images are registered in the COLMAP database with their
camera priors, then keypoints and descriptors are written next to them.

Extractors are looked up by name (``FeatureConfig.extractor``): SIFT, or any learned
model of :data:`pipeline.learned.MODELS`, so a new learned extractor needs no change here.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path

import pycolmap

from pipeline import descriptor_store, learned
from pipeline.config import FeatureConfig, check_camera_mode
from pipeline.ingest import ImageRecord
from pipeline.progress import CancelToken, ProgressCallback
from pipeline.registry import lookup

log = logging.getLogger(__name__)

Extractor = Callable[
    [Path, Path, Sequence[ImageRecord], FeatureConfig, ProgressCallback, CancelToken], None
]

# Images per pycolmap call: small enough for steady progress, large enough that
# the per-call overhead (opening the database, spawning threads) stays negligible.
_CHUNK = 8


def _sift_options(cfg: FeatureConfig, thorough: bool = False) -> pycolmap.FeatureExtractionOptions:
    """The preset's SIFT settings, or with ``thorough`` the second pass for weak images:
    a lower peak threshold on the doubled image."""
    opts = pycolmap.FeatureExtractionOptions()
    opts.max_image_size = cfg.max_image_size
    opts.num_threads = cfg.num_threads
    opts.sift.max_num_features = cfg.max_num_features
    opts.sift.peak_threshold = cfg.low_texture_peak_threshold if thorough else cfg.peak_threshold
    opts.sift.first_octave = -1 if thorough else cfg.first_octave
    return opts


def _sift_pass(
    image_dir: Path,
    database: Path,
    names: Sequence[str],
    opts: pycolmap.FeatureExtractionOptions,
    report: Callable[[int], None],
    cancel: CancelToken,
) -> None:
    """Extract SIFT for ``names`` in chunks; images that have keypoints are skipped."""
    for start in range(0, len(names), _CHUNK):
        cancel.check()
        chunk = list(names[start : start + _CHUNK])
        pycolmap.extract_features(
            database,
            image_dir,
            image_names=chunk,
            camera_mode=pycolmap.CameraMode.PER_IMAGE,
            extraction_options=opts,
            device=pycolmap.Device.cpu,
        )
        report(start + len(chunk))


def _keypoint_counts(database: Path, ids: dict[str, int]) -> dict[str, int]:
    db = pycolmap.Database.open(database)
    try:
        return {name: db.num_keypoints_for_image(image_id) for name, image_id in ids.items()}
    finally:
        db.close()


def _forget_features(database: Path, image_ids: Sequence[int]) -> None:
    """Drop the keypoints and descriptors of some images (pycolmap can only clear all)."""
    with closing(sqlite3.connect(database)) as con, con:
        for table in ("keypoints", "descriptors"):
            con.executemany(f"DELETE FROM {table} WHERE image_id = ?", [(i,) for i in image_ids])


def extract_sift(
    image_dir: Path,
    database: Path,
    images: Sequence[ImageRecord],
    cfg: FeatureConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    """SIFT through pycolmap (weight-free), in chunks so progress rises per image.

    Images are registered first so that they carry their shared cameras; extraction
    then fills in keypoints and skips images that already have them. Images left
    with fewer than ``min_num_features`` keypoints (dark, textureless objects, small
    images) are extracted once more at ``low_texture_peak_threshold`` on the doubled
    image: doing that for every image would only add weak features, and time, to
    photos that have plenty.
    """
    ids = _import_images(image_dir, database, images, cfg.camera_mode)
    names = [rec.name for rec in images if rec.name in ids]

    def report(done: int) -> None:
        progress("features", done / len(names), f"extracted features of {done}/{len(names)} images")

    _sift_pass(image_dir, database, names, _sift_options(cfg), report, cancel)
    # A keypoint cap below the threshold would mark every image as weak.
    threshold = min(cfg.min_num_features, cfg.max_num_features)
    if threshold <= 0:
        return
    counts = _keypoint_counts(database, ids)
    weak = [name for name in names if counts[name] < threshold]
    if not weak:
        return
    _forget_features(database, [ids[name] for name in weak])

    def report_weak(done: int) -> None:
        progress("features", 1.0, f"re-extracted {done}/{len(weak)} low-texture images")

    _sift_pass(image_dir, database, weak, _sift_options(cfg, thorough=True), report_weak, cancel)


def camera_groups(images: Sequence[ImageRecord], mode: str) -> list[list[str]]:
    """Image names that share one camera (intrinsics), per ``FeatureConfig.camera_mode``.

    ``auto`` groups images of the same size and the same EXIF focal length (or
    none): frames of one video or one camera then refine a single focal length
    from every view, which keeps sparse, narrow-field scenes (Middlebury's rings)
    from drifting to a different focal per image.
    """
    if mode == "per_image":
        return [[rec.name] for rec in images]
    check_camera_mode(mode)
    groups: dict[tuple, list[str]] = {}
    for rec in images:
        # ``single`` still needs one camera per size: intrinsics are in pixels.
        focal = round(rec.focal_px, 1) if rec.focal_px and mode == "auto" else None
        groups.setdefault((rec.width, rec.height, focal), []).append(rec.name)
    return list(groups.values())


def _image_ids(database: Path) -> dict[str, int]:
    db = pycolmap.Database.open(database)
    try:
        return {img.name: img.image_id for img in db.read_all_images()}
    finally:
        db.close()


def _import_images(
    image_dir: Path, database: Path, images: Sequence[ImageRecord], camera_mode: str
) -> dict[str, int]:
    """Register images with their cameras (COLMAP's focal guess) without extracting.

    Images already in the database keep theirs, so a resumed run only adds the rest.
    Returns the database ids of the images COLMAP could register; one it cannot read
    is left out (logged) and ends up among the unregistered images, as it would in COLMAP.
    """
    known = _image_ids(database)
    missing = [rec for rec in images if rec.name not in known]
    if missing:
        for group in camera_groups(missing, camera_mode):
            pycolmap.import_images(
                database, image_dir, camera_mode=pycolmap.CameraMode.SINGLE, image_names=group
            )
        known = _image_ids(database)
    left_out = [rec.name for rec in images if rec.name not in known]
    if left_out:
        log.warning("COLMAP could not read %d image(s), left out: %s", len(left_out), left_out)
    return {rec.name: known[rec.name] for rec in images if rec.name in known}


def extract_learned(
    image_dir: Path,
    database: Path,
    images: Sequence[ImageRecord],
    cfg: FeatureConfig,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    """A learned extractor in torch; resumes per image (keypoints already written are kept)."""
    # torch loads only when a learned preset runs
    from pipeline.learned.device import select_device, set_threads
    from pipeline.learned.extract import extract_image

    device = select_device(cfg.device)
    set_threads(cfg.num_threads)
    ids = _import_images(image_dir, database, images, cfg.camera_mode)
    images = [rec for rec in images if rec.name in ids]
    descriptor_store.write_meta(database, cfg.extractor, cfg.weights_dir)
    total = len(images)
    db = pycolmap.Database.open(database)
    try:
        for done, rec in enumerate(images, start=1):
            cancel.check()
            image_id = ids[rec.name]
            if not descriptor_store.has_descriptors(database, image_id):
                feats = extract_image(
                    image_dir / rec.name,
                    cfg.extractor,
                    cfg.max_image_size,
                    cfg.max_num_features,
                    device,
                    cfg.weights_dir,
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
    **dict.fromkeys(learned.MODELS, extract_learned),
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
