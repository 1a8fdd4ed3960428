#!/bin/sh
# First start of the marts database: the read-only role BI tools use (publish_postgres grants it SELECT on
# every swap), and an empty database for Metabase's own settings.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE bi_reader NOLOGIN;
CREATE ROLE bi_metabase LOGIN PASSWORD '${BI_PASSWORD}' IN ROLE bi_reader;
ALTER ROLE bi_reader SET default_transaction_read_only = on;
ALTER ROLE bi_metabase SET default_transaction_read_only = on;
CREATE DATABASE metabase;
SQL
