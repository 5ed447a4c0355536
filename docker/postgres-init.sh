#!/bin/sh
# First start of the PostgreSQL volume (the postgres image runs /docker-entrypoint-initdb.d/
# once, as the postgres user): one role and one database per component, each role owning
# only its database, passwords from the compose secrets. The password reaches psql through
# its environment (\getenv), never a command line; psql's :'pw' quotes it.
# The e2e test runs this script against a real server with SCENE3D_DB_PREFIX set.
set -eu
secrets_dir="${SCENE3D_SECRETS_DIR:-/run/secrets}"
prefix="${SCENE3D_DB_PREFIX:-}"
for component in scene3d airflow mlflow; do
    PW=$(cat "$secrets_dir/${component}_db_password") ROLE="$prefix$component" \
        psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" \
        --dbname postgres <<'SQL'
\getenv pw PW
\getenv role ROLE
CREATE ROLE :"role" LOGIN PASSWORD :'pw';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
