"""Helpers the store tests share: the PostgreSQL test server, a fake clock, sample data."""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("SCENE3D_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class PgServer:
    engine: Engine
    prefix: str
    counter: itertools.count

    def new_schema(self) -> tuple[str, str]:
        """Create an empty schema; return (name, URL whose search_path selects it)."""
        name = f"{self.prefix}{next(self.counter)}"
        with self.engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={name}"})
        return name, url.render_as_string(hide_password=False)

    def drop_schema(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


class FakeClock:
    """Epoch seconds that advance by one per reading, so stamps are predictable."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.now += 1.0
            return self.now


def new_id() -> str:
    return str(uuid.uuid4())


def cluster(i: int, **extra: object) -> dict[str, Any]:
    """A cluster description as the pipeline reports it."""
    return {
        "cluster_id": i,
        "name": f"cluster_{i}",
        "num_points3D": 100 * (i + 1),
        "num_images": 10 + i,
        "filename": f"cluster_{i}.ply",
        "raw_filename": f"cluster_{i}_raw.ply",
        "mean_reprojection_error": 0.5,
        "mean_track_length": 3.2,
        **extra,
    }
