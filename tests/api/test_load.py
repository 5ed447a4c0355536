"""Keeps the load-check script working: a small bounded run against a real uvicorn."""

from __future__ import annotations

import pytest

from tests.api.load_check import run

pytestmark = pytest.mark.slow


def test_small_load_check_all_requests_answer() -> None:
    summary = run(total=200, concurrency=10)
    assert summary["/health"]["n"] == 100 and summary["/status/{job_id}"]["n"] == 100
    assert summary["/health"]["p99_ms"] > 0
