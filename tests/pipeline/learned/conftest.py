"""Fixtures of the learned-feature tests: three small rendered views, and no network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipeline.eval.synthetic import render_scene


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("views")
    render_scene(root, 3, 320, 240, seed=5, layout=0, prefix="v")
    return sorted(root.glob("v_*.png"))


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("network access during a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
