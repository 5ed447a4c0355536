"""One started platform for the e2e modules that can share it (test_postgres starts its
own on PostgreSQL): starting one takes minutes."""

from __future__ import annotations

import pytest

from tests.e2e.platform import ADMIN_PASSWORD, running_platform


@pytest.fixture(scope="package")
def platform(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    # Until a retraining test writes its own: the repository's params (the first start builds
    # the drift reference from their benchmark folders).
    (home / "experiment-params.yaml").write_text("{}\n")
    env = {
        # The drift check runs when a test triggers it, never on its own: a scheduled run
        # on high drift would start a retraining in the middle of other tests.
        "SCENE3D_DRIFT_SCHEDULE": "@yearly",
        # The model worker looks at the champion alias every 2 s instead of 30.
        "SCENE3D_MODEL_POLL_SECONDS": "2",
        # What retraining runs measure on (written by the tests that trigger one).
        "SCENE3D_EXPERIMENT_PARAMS": str(home / "experiment-params.yaml"),
    }
    with running_platform(home, ADMIN_PASSWORD, env) as running:
        yield running
