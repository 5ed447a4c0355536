"""The Airflow environment of docker-compose.yml, through docker/entrypoint.sh, as Airflow
itself reads it: every secret arrives through Airflow's own ``_CMD`` options (so health checks,
which skip the entrypoint, see them too) and none sits in the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from scene3d.deploy import generate
from tests.conftest import REPO_ROOT

ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
READ_CONFIG = """
import json
from airflow.configuration import conf
keys = [("core", "executor"), ("database", "sql_alchemy_conn"),
        ("database", "sql_alchemy_conn_async"), ("celery", "broker_url"),
        ("celery", "result_backend"), ("core", "fernet_key"), ("api_auth", "jwt_secret"),
        ("api", "secret_key"), ("core", "simple_auth_manager_passwords_file")]
print(json.dumps({f"{s}.{k}": conf.get(s, k) for s, k in keys}))
"""


def test_airflow_reads_every_secret_of_the_compose_file(compose, tmp_path):
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    values = generate()
    for name, value in values.items():
        (secrets_dir / name).write_text(value)
    service = compose["services"]["airflow-scheduler"]
    env = {
        key: str(value).replace("/run/secrets/", f"{secrets_dir}/")
        for key, value in service["environment"].items()
    }
    env.update(
        PATH=os.environ["PATH"],
        SCENE3D_SECRETS_DIR=str(secrets_dir),
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        SCENE3D_HOME=str(tmp_path / "home"),
    )
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), sys.executable, "-c", READ_CONFIG],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads(result.stdout.strip().splitlines()[-1])
    assert config["core.executor"] == "CeleryExecutor"
    assert config["database.sql_alchemy_conn"] == values["airflow_database_url"]
    assert config["database.sql_alchemy_conn_async"] == values["airflow_database_url"]
    assert config["celery.broker_url"] == values["airflow_broker_url"]
    assert config["celery.result_backend"] == values["airflow_result_backend"]
    assert config["core.fernet_key"] == values["airflow_fernet_key"]
    assert config["api_auth.jwt_secret"] == values["airflow_jwt_secret"]
    assert config["api.secret_key"] == values["airflow_api_secret_key"]
    # A writable copy (the api-server's command makes it): the auth manager opens it to append.
    assert not config["core.simple_auth_manager_passwords_file"].startswith(str(secrets_dir))
    assert not any(v in value for v in values.values() for value in env.values() if len(v) > 8)
