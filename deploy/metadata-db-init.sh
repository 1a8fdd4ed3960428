#!/bin/sh
# First start of the metadata database (airflow-db): a database and login of Superset's own beside Airflow's,
# so that Superset's users, roles and dashboards live in PostgreSQL, not in a SQLite file.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE superset LOGIN PASSWORD '${SUPERSET_DB_PASSWORD}';
CREATE DATABASE superset OWNER superset;
SQL
