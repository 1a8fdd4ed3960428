#!/bin/sh
# First start of the marts database: the read-only role BI tools use (publish_postgres grants it SELECT on
# every swap, and a row-level security policy that shows it every centre's rows: it is the province's), and
# an empty database for Metabase's own settings. The city centres' roles (bi_centre_350100 …, each seeing only
# its centre's rows) come with each publication, from marts.centres; README "Connecting a BI tool" says how to
# give a centre a login.
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE bi_reader NOLOGIN;
CREATE ROLE bi_metabase LOGIN PASSWORD '${BI_PASSWORD}' IN ROLE bi_reader;
ALTER ROLE bi_reader SET default_transaction_read_only = on;
ALTER ROLE bi_metabase SET default_transaction_read_only = on;
CREATE DATABASE metabase;
SQL
