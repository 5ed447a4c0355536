"""docker/postgres-init.sh against the real PostgreSQL server: one role and one database per
component, each role confined to its own database."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.deploy.postgres import COMPONENTS, compose_databases, psql


def test_init_script_creates_one_private_database_per_component(tmp_path):
    with compose_databases(tmp_path / "secrets") as dbs:
        for component in COMPONENTS:
            engine = create_engine(dbs.url(component))
            with engine.connect() as conn:
                assert conn.execute(text("select current_user")).scalar() == dbs.prefix + component
            engine.dispose()
        # Each role owns its database and may not even connect to another one.
        other = psql("select 1", user=dbs.prefix + "mlflow", database=dbs.prefix + "scene3d")
        assert other.returncode != 0 and "permission denied" in other.stderr
        owner = psql(
            f"select pg_get_userbyid(datdba) from pg_database where datname='{dbs.prefix}airflow'"
        )
        assert owner.stdout.strip() == dbs.prefix + "airflow"
