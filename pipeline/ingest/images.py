"""Image decoding: every staged image is opened by Pillow under a pixel cap, decoded in full,
turned upright by its EXIF orientation (COLMAP ignores the tag) and stored in a format
COLMAP reads (WebP becomes PNG); its EXIF focal length becomes a prior in pixels.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, BinaryIO

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from pipeline.config import IngestConfig
from pipeline.ingest.manifest import ImageRecord
from pipeline.ingest.plan import SkipImage

# Pillow is only allowed to parse these formats: a ``.jpg`` that is really an EPS or
# another exotic format must not reach a less hardened decoder. (Multi-picture JPEGs
# from cameras come back through the JPEG opener with format "MPO".)
_PIL_FORMATS = ("JPEG", "PNG", "TIFF", "BMP", "WEBP")
_STORED_AS = {"WEBP": "PNG"}
"""Formats re-encoded (losslessly, from the decoded pixels) for the working copy: COLMAP's
image reader in the pycolmap wheels has no WebP decoder. It and Pillow detect the format
from the content, so the file keeps its uploaded name and the outputs name it as sent."""
_ORIENTATION_TAG = 0x0112
# FocalPlaneResolutionUnit -> millimetres per unit (EXIF: 2 inch, 3 cm, 4 mm, 5 um).
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}


def _positive(value: Any) -> float | None:
    """EXIF number (int, IFDRational, tuple) as a positive finite float, else None."""
    if isinstance(value, tuple) and len(value) == 2:
        value = value[0] / value[1] if value[1] else None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def focal_prior(exif: Image.Exif, raw_size: tuple[int, int]) -> float | None:
    """Focal length prior in pixels from EXIF, or ``None``.

    ``raw_size`` is the stored (not yet rotated) ``(width, height)``. The 35 mm
    equivalent is preferred: a 36 mm wide frame maps to the long image side. Otherwise
    the focal length in mm times the focal-plane resolution (pixels per unit) is used,
    rescaled when the image was resized after capture (``ExifImageWidth``).
    """
    tags: dict[int, Any] = dict(exif)
    try:
        tags.update(exif.get_ifd(ExifTags.IFD.Exif))  # the sub-IFD is where cameras write
    except Exception:  # a broken sub-IFD only costs the prior, not the photo
        return None
    base = ExifTags.Base
    f35 = _positive(tags.get(base.FocalLengthIn35mmFilm))
    if f35:
        return f35 / 36.0 * max(raw_size)
    f_mm = _positive(tags.get(base.FocalLength))
    xres = _positive(tags.get(base.FocalPlaneXResolution))
    unit_mm = _UNIT_MM.get(tags.get(base.FocalPlaneResolutionUnit, 2))
    if not (f_mm and xres and unit_mm):
        return None
    f_px = f_mm * xres / unit_mm
    exif_width = _positive(tags.get(base.ExifImageWidth))
    if exif_width:
        f_px *= raw_size[0] / exif_width
    return f_px if math.isfinite(f_px) and f_px > 0 else None


def _save_oriented(img: Image.Image, target: Path, fmt: str) -> None:
    """Re-encode a rotated image in its own format, keeping EXIF (minus orientation)."""
    fmt = "JPEG" if fmt == "MPO" else fmt
    params: dict[str, Any] = {}
    if fmt in ("JPEG", "PNG", "WEBP"):
        params["exif"] = img.getexif().tobytes()
    if icc := img.info.get("icc_profile"):
        params["icc_profile"] = icc
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = 95
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    target.write_bytes(buf.getvalue())


def open_image(target: Path | BinaryIO, cfg: IngestConfig) -> Image.Image:
    """Open an image from its header only (a path or a readable, seekable file), refusing
    other formats, oversized and tiny ones unread."""
    # Image.open with ``formats`` fails on plugins not yet registered (TIFF, WEBP...);
    # init() registers them all and is a no-op after the first call.
    Image.init()
    try:
        img = Image.open(target, formats=_PIL_FORMATS)
    except UnidentifiedImageError:
        raise SkipImage("not a JPEG, PNG, TIFF, BMP or WebP image") from None
    except Image.DecompressionBombError:
        raise SkipImage(f"too many pixels (limit {cfg.max_image_pixels})") from None
    except Exception:  # hostile headers trip plugins in many ways; same verdict
        raise SkipImage("image header is corrupt") from None
    width, height = img.size
    reason = None
    if width * height > cfg.max_image_pixels:
        reason = f"{width}x{height} is more pixels than the limit ({cfg.max_image_pixels})"
    elif min(width, height) < cfg.min_image_side:
        reason = f"{width}x{height} is smaller than {cfg.min_image_side} px a side"
    if reason:
        img.close()
        raise SkipImage(reason)
    return img


def process_image(target: Path, name: str, final: Path, cfg: IngestConfig) -> ImageRecord:
    """Decode a staged image fully, apply EXIF orientation in place, read its focal prior."""
    with open_image(target, cfg) as img:
        raw_size = img.size
        try:
            # EXIF before decoding: Pillow's TIFF loader applies the orientation while
            # decoding and drops the tag, which would hide that the file needs rotating.
            exif = img.getexif()
            orientation = exif.get(_ORIENTATION_TAG, 1)
            img.load()
        # Pillow's decoders raise many exception types on hostile data (OSError,
        # SyntaxError, struct.error, IndexError...); all mean "unreadable image".
        except Exception:
            raise SkipImage("image data is corrupt or truncated") from None
        focal = focal_prior(exif, raw_size)
        fmt = img.format or "JPEG"
        stored = _STORED_AS.get(fmt, fmt)
        if orientation not in range(2, 9) and stored == fmt:
            # Nothing to rotate: the staged file keeps its exact bytes.
            return ImageRecord(name, final, raw_size[0], raw_size[1], focal)
        # A rotation, a format change (_STORED_AS), or both; for TIFF the pixels are
        # already upright (load() turned them), so only the orientation tag goes.
        with ImageOps.exif_transpose(img) as upright:
            _save_oriented(upright, target, stored)
            return ImageRecord(name, final, upright.width, upright.height, focal)
