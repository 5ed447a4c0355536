"""Ingest: turn an uploaded ZIP (or a local folder) into a clean folder of images.

The output folder holds only validated images, named by their relative POSIX path inside
the upload (``a/img.jpg``), plus ``manifest.json``. That name is the image's identity for
every later step (COLMAP image name, CSV column ``image``).

One module per concern: :mod:`~pipeline.ingest.archive` judges and extracts ZIPs (uploads
are untrusted), :mod:`~pipeline.ingest.folder` plans a local folder the same way,
:mod:`~pipeline.ingest.images` decodes each image (pixel cap, EXIF orientation and focal
length, WebP to PNG), :mod:`~pipeline.ingest.staging` runs it all in a staging folder
that replaces the destination only on success, :mod:`~pipeline.ingest.probe` checks an
upload's images before it is accepted, and :mod:`~pipeline.ingest.manifest` holds the
records and the manifest file; :mod:`~pipeline.ingest.plan` is what the inputs
share. Other packages import the names below from here.
"""

from pipeline.ingest.archive import inspect_zip
from pipeline.ingest.manifest import (
    MANIFEST_NAME,
    ImageRecord,
    IngestResult,
    SkippedFile,
    load_manifest,
)
from pipeline.ingest.plan import IMAGE_EXTENSIONS
from pipeline.ingest.probe import probe_zip
from pipeline.ingest.staging import ingest

__all__ = [
    "IMAGE_EXTENSIONS",
    "MANIFEST_NAME",
    "ImageRecord",
    "IngestResult",
    "SkippedFile",
    "ingest",
    "inspect_zip",
    "load_manifest",
    "probe_zip",
]
