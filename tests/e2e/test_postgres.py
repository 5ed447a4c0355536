"""The production configuration of the platform on the real PostgreSQL server of this
machine: the job store, Airflow's metadata database and MLflow's backend store in three
databases made by docker-compose's own init script; the temple job succeeds end to end and
each component's rows are in its own database."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

from tests.deploy.postgres import compose_databases
from tests.e2e.platform import (
    airflow_run,
    follow,
    mlflow_job_runs,
    running_platform,
    token,
    upload_temple,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ADMIN_PASSWORD = "e2e-admin-" + os.urandom(6).hex()


@pytest.fixture(scope="module")
def databases(tmp_path_factory):
    with compose_databases(tmp_path_factory.mktemp("pg-secrets")) as dbs:
        yield dbs


@pytest.fixture(scope="module")
def platform(tmp_path_factory, databases):
    env = {
        "SCENE3D_DATABASE_URL": databases.url("scene3d"),
        "SCENE3D_AIRFLOW_DATABASE_URL": databases.url("airflow"),
        "SCENE3D_MLFLOW_BACKEND_URI": databases.url("mlflow"),
    }
    with running_platform(tmp_path_factory.mktemp("home"), ADMIN_PASSWORD, env) as running:
        yield running


def _scalar(url: str, sql: str, **params):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()
    finally:
        engine.dispose()


def test_temple_job_on_postgresql(platform, databases, bench_dir) -> None:
    base = platform["api"]
    headers = token(base, "admin", ADMIN_PASSWORD)
    job_id = upload_temple(base, headers, bench_dir)
    status, _ = follow(base, headers, job_id)
    assert status["stage"] == "success", status
    assert airflow_run(platform, job_id)["state"] == "success"
    assert len(mlflow_job_runs(platform, job_id)) == 1

    # Each component wrote to its own PostgreSQL database, and nothing to SQLite.
    jobs = databases.url("scene3d")
    assert _scalar(jobs, "select stage from jobs where id = :id", id=job_id) == "success"
    assert _scalar(jobs, "select count(*) from clusters where job_id = :id", id=job_id) >= 1
    airflow = databases.url("airflow")
    run_id = f"job_{job_id}"
    assert _scalar(airflow, "select state from dag_run where run_id = :r", r=run_id) == "success"
    mlflow = databases.url("mlflow")
    tagged = "select count(*) from tags where key = 'job_id' and value = :id"
    assert _scalar(mlflow, tagged, id=job_id) == 1
    home = platform["home"]
    assert not (home / "scene3d.db").exists()
    assert not (home / "airflow" / "airflow.db").exists()
    assert not (home / "mlflow" / "mlflow.db").exists()
