"""Airflow in an isolated temporary home, driven through a subprocess.

Airflow reads its configuration at import time and keeps it in module globals, so the
test process never imports it: every Airflow step runs in a child process started
with :func:`scene3d.airflow.airflow_env` (see ``airflow_runner.py``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from scene3d.airflow import airflow_commands, airflow_env
from scene3d.settings import Settings
from tests.conftest import REPO_ROOT
from tests.dags.airflow_runner import MARKER

RunAirflow = Callable[..., dict[str, Any]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_base_env() -> dict[str, str]:
    """The caller's environment without anything that would point at real services."""
    prefixes = ("AIRFLOW", "SCENE3D_", "MLFLOW_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def isolated_settings(home: Path) -> Settings:
    """Settings of a throw-away platform home (not from the environment on purpose)."""
    home.mkdir(parents=True, exist_ok=True)
    return Settings(home=home, database_url=f"sqlite:///{home / 'scene3d.db'}", jwt_secret="t" * 32)


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> tuple[Settings, dict[str, str]]:
    """A scene3d home with its job store migrated, and the Airflow env that goes with it."""
    from scene3d.store import JobStore

    settings = isolated_settings(tmp_path_factory.mktemp("platform") / "home")
    with JobStore(settings.database_url) as store:
        store.migrate()
    env = airflow_env(replace(settings, airflow_port=_free_port()), base_env=clean_base_env())
    return settings, env


def run_airflow(env: dict[str, str], *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``tests.dags.airflow_runner`` with ``env``; return its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.dags.airflow_runner", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stdout + proc.stderr)[-4000:]
        pytest.fail(f"airflow_runner {' '.join(args)} exited {proc.returncode}:\n{tail}")
    return json.loads(lines[-1][len(MARKER) :])


@pytest.fixture(scope="module")
def migrated(platform) -> tuple[Settings, dict[str, str]]:
    """``airflow db migrate`` in the temporary AIRFLOW_HOME (``dag.test()`` needs it)."""
    _, env = platform
    proc = subprocess.run(
        airflow_commands(api_port=0)["migrate"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return platform
