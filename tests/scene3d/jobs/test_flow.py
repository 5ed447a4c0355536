"""scene3d.jobs.flow: the one list of tasks, and it stays light for the DAG files."""

from __future__ import annotations

import subprocess
import sys

from scene3d.jobs.flow import RECONSTRUCTION_TASKS, WORKER_TASKS
from scene3d.jobs.tasks import TASKS
from tests.conftest import REPO_ROOT


def test_every_task_id_has_its_function_in_order() -> None:
    assert tuple(TASKS) == RECONSTRUCTION_TASKS
    assert set(RECONSTRUCTION_TASKS) >= WORKER_TASKS


def test_flow_imports_nothing_heavy() -> None:
    code = (
        "import sys, scene3d.jobs.flow, scene3d.names;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('pipeline', 'sqlalchemy', 'torch', 'pycolmap', 'ray', 'mlflow')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
