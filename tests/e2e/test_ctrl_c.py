"""`scene3d up` in the foreground: Ctrl-C (SIGINT) stops every service it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from scene3d.services import marked
from tests.e2e.platform import SCENE3D, free_ports

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.mark.parametrize("stop", ["ctrl-c", "down elsewhere"])
def test_ctrl_c_or_down_elsewhere_ends_up_and_everything(tmp_path, stop) -> None:
    """Ctrl-C stops the platform; `scene3d down` from another terminal does too, and the
    foreground `up` notices, collects its children and exits."""
    api, airflow, mlflow, ray = free_ports(4)
    env = {
        **os.environ,
        "SCENE3D_HOME": str(tmp_path),
        "SCENE3D_ADMIN_PASSWORD": "x" * 16,
        "SCENE3D_API_PORT": str(api),
        "SCENE3D_AIRFLOW_PORT": str(airflow),
        "SCENE3D_MLFLOW_PORT": str(mlflow),
        "SCENE3D_RAY_PORT": str(ray),
    }
    env.pop("SCENE3D_DATABASE_URL", None)
    proc = subprocess.Popen(
        [SCENE3D, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{api}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        # `up` prints its banner once everything is healthy; give it that moment
        time.sleep(2)
        run_id = json.loads((tmp_path / "run" / "services.json").read_text())["run_id"]
        assert marked(run_id)
        if stop == "ctrl-c":
            proc.send_signal(signal.SIGINT)
        else:
            subprocess.run([SCENE3D, "down"], env=env, timeout=300, check=True)
        output, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run([SCENE3D, "down"], env=env, timeout=120, check=False)
    assert proc.returncode == 0, output
    assert ("stopping" if stop == "ctrl-c" else "stopped by `scene3d down`") in output
    assert marked(run_id) == []
    assert not (tmp_path / "run" / "services.json").exists()
