"""Conversions between Python values and column values that hold on both backends.

JSON that PostgreSQL and SQLite both accept, floats that are never NaN, and telling which
constraint an ``IntegrityError`` broke without parsing backend-specific messages twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError


def json_safe(value: Any) -> Any:
    """Make ``value`` storable as JSON on both backends.

    PostgreSQL refuses ``NaN`` in JSON and SQLite would store it as invalid JSON, so
    non-finite floats become null; NumPy scalars and arrays become plain Python values.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return json_safe(value.tolist())
    return value


def dumps_json(value: Any) -> str:
    """The engines' JSON serializer: :func:`json_safe`, then strict ``json.dumps``."""
    return json.dumps(json_safe(value), allow_nan=False)


def finite(value: Any) -> float | None:
    """A float column value: None for missing or non-finite (SQLite stores NaN as NULL)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def violation(exc: IntegrityError) -> Literal["unique", "foreign_key", "other"]:
    """Which constraint an insert broke: ``unique``, ``foreign_key`` or ``other``."""
    code = getattr(exc.orig, "sqlstate", None)  # psycopg
    message = str(exc.orig).upper()
    if code == "23505" or "UNIQUE" in message:
        return "unique"
    if code == "23503" or "FOREIGN KEY" in message:
        return "foreign_key"
    return "other"
