"""``scene3d``: one parser assembled from the command groups, in a fixed order."""

from __future__ import annotations

import subprocess
import sys

from scene3d.cli import build_parser

COMMANDS = [
    "reconstruct",
    "evaluate",
    "bench",
    "bench-scaling",
    "bench-throughput",
    "experiment",
    "demo",
    "users",
    "drift",
    "up",
    "down",
    "watch",
    "status",
    "serve",
    "prepare",
    "deploy",
    "presets",
]


def test_every_command_group_is_assembled_in_order() -> None:
    sub = build_parser()._subparsers._group_actions[0]
    assert list(sub.choices) == COMMANDS


def test_the_package_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scene3d.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "bench-throughput" in result.stdout
