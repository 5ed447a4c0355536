"""Fixtures of the ingest tests: where the upload and the destination folder go."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def upload(tmp_path: Path) -> Path:
    return tmp_path / "upload.zip"


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "images"
