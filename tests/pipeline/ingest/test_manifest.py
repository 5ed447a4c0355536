"""The manifest records exactly what ingest produced and reads back to the same result."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.ingest import MANIFEST_NAME, IngestResult, ingest, load_manifest
from tests.pipeline.ingest.support import JPG, image_bytes, make_zip


def test_manifest_written_and_round_trips(upload: Path, dest: Path) -> None:
    make_zip(upload, {"a/x.jpg": JPG, "b/y.jpg": image_bytes(seed=1), "bad.jpg": b"junk"})
    result = ingest(upload, dest)
    data = json.loads((dest / MANIFEST_NAME).read_text())
    assert data == result.to_dict()
    assert [img["path"] for img in data["images"]] == ["a/x.jpg", "b/y.jpg"]
    assert str(dest) not in json.dumps(data)
    assert IngestResult.from_dict(data, dest) == result == load_manifest(dest)
