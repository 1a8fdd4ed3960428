"""Publish the marts to PostgreSQL for the centre's BI tools (Metabase, Superset, FineBI speak PostgreSQL).

Source is the gated `published.duckdb`, so every target shows the same snapshot. Each schema (`marts`,
`ops`) is loaded in bulk with COPY into a fresh schema `<schema>__incoming`, then swapped in within one
transaction: a BI query running meanwhile sees the old tables or the new ones, never a mix or an error.
Column comments carry the Chinese/English descriptions; the role `bi_reader` may only read.

Each city centre reads only its own rows: every published table has row-level security, re-created with the
tables on each swap. `bi_reader` (the province, and the BI tools' login `bi_metabase`) has a policy that shows
every row; each supervising centre of `marts.centres` but the province gets a role `bi_centre_<code>` (no
login: give a person's login that role) whose policy shows the rows with its `supervising_centre`, or, in a
table without that column but with `institution_id`, the rows of its centre's institutions. A table with
neither (`ops.run_metrics`: the pipeline's runs) is the province's alone: no centre role may read it. What every
centre must read about the whole province (`marts.feed_freshness`: whether the feed still changes) is published
as one identical row per centre, so that this one rule covers it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.warehouse import open_duckdb, scalar, sql_identifier, sql_literal
from pipeline.settings import province_code
from publish.marts import PUBLISHED

if TYPE_CHECKING:
    import duckdb
    from psycopg2.extensions import connection, cursor

log = logging.getLogger(__name__)

READER_ROLE = "bi_reader"
CENTRE_ROLE_PREFIX = "bi_centre_"
CENTRE_COLUMN = "supervising_centre"


def centre_role(code: str) -> str:
    """The PostgreSQL role whose members read one supervising centre's rows (bi_centre_350100)."""
    return f"{CENTRE_ROLE_PREFIX}{code.lower()}"


def pg_type(duckdb_type: str) -> str:
    t = duckdb_type.upper()
    simple = {
        "VARCHAR": "text",
        "DATE": "date",
        "BOOLEAN": "boolean",
        "INTEGER": "integer",
        "BIGINT": "bigint",
        "SMALLINT": "smallint",
        "TINYINT": "smallint",
        "DOUBLE": "double precision",
        "FLOAT": "real",
        "TIMESTAMP WITH TIME ZONE": "timestamptz",
        "TIMESTAMP": "timestamp",
        "HUGEINT": "numeric",
        "UBIGINT": "numeric",
        "UINTEGER": "bigint",
        "INTERVAL": "interval",
        "UUID": "uuid",
    }
    if t in simple:
        return simple[t]
    if m := re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", t):
        return f"numeric({m[1]},{m[2]})"
    if t.endswith("[]"):
        return f"{pg_type(t[:-2])}[]" if t[:-2] in simple else "text"
    return "text"


def pg_value(column: str, duckdb_type: str) -> str:
    """The column as PostgreSQL can take it. Its text cannot hold NUL (U+0000), which a hostile feed value may
    carry and which would fail the whole COPY: NUL becomes U+FFFD, as control characters do in the exports."""
    name = sql_identifier(column)
    if duckdb_type.upper() == "VARCHAR":
        return f"replace({name}, chr(0), '\ufffd') AS {name}"
    return name


def _load_table(
    duck: duckdb.DuckDBPyConnection, cur: cursor, schema: str, table: str, order: str, tmp_dir: Path
) -> int:
    """Create `<schema>__incoming.<table>` with the published table's columns, COPY its rows in bulk, and carry
    its table and column comments; returns the rows loaded."""
    target = f"{sql_identifier(schema + '__incoming')}.{sql_identifier(table)}"
    columns = duck.execute(
        """SELECT column_name, data_type, comment FROM duckdb_columns()
           WHERE schema_name = ? AND table_name = ? ORDER BY column_index""",
        [schema, table],
    ).fetchall()
    cur.execute(
        f"CREATE TABLE {target} ("
        + ", ".join(f"{sql_identifier(c)} {pg_type(t)}" for c, t, _ in columns)
        + ")"
    )
    # COPY in bulk: DuckDB writes CSV to a file, PostgreSQL reads it over the connection
    csv_path = tmp_dir / f".{schema}.{table}.csv"
    select = ", ".join(pg_value(c, t) for c, t, _ in columns)
    try:
        duck.execute(
            f"COPY (SELECT {select} FROM {schema}.{table} ORDER BY {order}) TO '{csv_path}' "
            "(FORMAT csv, HEADER false, NULL '')"
        )
        with open(csv_path, "rb") as fh:
            cur.copy_expert(f"COPY {target} FROM STDIN WITH (FORMAT csv, NULL '')", fh)
    finally:
        csv_path.unlink(missing_ok=True)
    loaded = cur.rowcount
    comment = scalar(
        duck,
        "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        [schema, table],
    )
    if comment:
        cur.execute(f"COMMENT ON TABLE {target} IS {sql_literal(comment)}")
    for column, _, text in columns:
        if text:
            cur.execute(f"COMMENT ON COLUMN {target}.{sql_identifier(column)} IS {sql_literal(text)}")
    return loaded


def _load_incoming(
    duck: duckdb.DuckDBPyConnection, pg: connection, schemas: list[str], tmp_dir: Path
) -> dict[str, int]:
    """Every published table into a fresh `<schema>__incoming`, in one transaction: invisible until committed."""
    counts: dict[str, int] = {}
    with pg, pg.cursor() as cur:
        for schema in schemas:
            cur.execute(f"DROP SCHEMA IF EXISTS {sql_identifier(schema + '__incoming')} CASCADE")
            cur.execute(f"CREATE SCHEMA {sql_identifier(schema + '__incoming')}")
        for (schema, table), order in PUBLISHED.items():
            counts[table] = _load_table(duck, cur, schema, table, order, tmp_dir)
    return counts


def _swap_in(pg: connection, schemas: list[str]) -> None:
    """Rename each `<schema>__incoming` to `<schema>` in one short transaction, readable by the role bi_reader."""
    with pg, pg.cursor() as cur:
        cur.execute(f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {sql_literal(READER_ROLE)}) THEN
                CREATE ROLE {READER_ROLE} NOLOGIN;
            END IF; END $$""")
        for schema in schemas:
            old, new = sql_identifier(schema + "__old"), sql_identifier(schema + "__incoming")
            cur.execute(f"DROP SCHEMA IF EXISTS {old} CASCADE")
            cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
            if cur.fetchone():  # not there on the first publication
                cur.execute(f"ALTER SCHEMA {sql_identifier(schema)} RENAME TO {old}")
            cur.execute(f"ALTER SCHEMA {new} RENAME TO {sql_identifier(schema)}")
            cur.execute(f"DROP SCHEMA IF EXISTS {old} CASCADE")
            cur.execute(f"GRANT USAGE ON SCHEMA {sql_identifier(schema)} TO {READER_ROLE}")
            cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {sql_identifier(schema)} TO {READER_ROLE}")
        _restrict_to_centres(cur, schemas)


def _restrict_to_centres(cur: cursor, schemas: list[str]) -> None:
    """Row-level security on every table of the schemas just swapped in, in the swap's transaction: the new
    tables are never readable without it. The policies are permissive, so a login in bi_reader sees every
    row, and a login in two centres' roles sees both centres."""
    cur.execute(
        f"SELECT {CENTRE_COLUMN} FROM marts.centres WHERE {CENTRE_COLUMN} <> %s ORDER BY 1", [province_code()]
    )
    codes = [code for (code,) in cur.fetchall()]
    for code in codes:
        if not code.isalnum():  # it goes into role names and policy SQL
            raise ValueError(f"marts.centres: supervising_centre {code!r} is not letters and digits")
        role = centre_role(code)
        cur.execute(f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {sql_literal(role)}) THEN
                CREATE ROLE {role} NOLOGIN;
            END IF; END $$""")
    cur.execute(
        """SELECT table_schema, table_name, array_agg(column_name::text) FROM information_schema.columns
           WHERE table_schema = ANY(%s) GROUP BY 1, 2 ORDER BY 1, 2""",
        [schemas],
    )
    tables = cur.fetchall()
    for schema in schemas:
        for code in codes:
            cur.execute(f"GRANT USAGE ON SCHEMA {sql_identifier(schema)} TO {centre_role(code)}")
    for schema, table, columns in tables:
        target = f"{sql_identifier(schema)}.{sql_identifier(table)}"
        cur.execute(f"ALTER TABLE {target} ENABLE ROW LEVEL SECURITY")
        cur.execute(f"CREATE POLICY province ON {target} FOR SELECT TO {READER_ROLE} USING (true)")
        for code in codes:
            if CENTRE_COLUMN in columns:
                rows = f"{CENTRE_COLUMN} = {sql_literal(code)}"
            elif "institution_id" in columns:
                rows = (
                    "institution_id IN (SELECT institution_id FROM marts.renewal_eligibility "
                    f"WHERE {CENTRE_COLUMN} = {sql_literal(code)})"
                )
            else:
                continue
            role = centre_role(code)
            cur.execute(f"CREATE POLICY {role} ON {target} FOR SELECT TO {role} USING ({rows})")
            cur.execute(f"GRANT SELECT ON {target} TO {role}")


def publish_postgres(published_db: Path, dsn: str, tmp_dir: Path) -> dict[str, int]:
    """Load the published snapshot into PostgreSQL beside the live schemas, then swap it in; rows per table."""
    import psycopg2

    duck = open_duckdb(published_db, read_only=True)
    pg = psycopg2.connect(dsn)
    try:
        schemas = sorted({schema for schema, _ in PUBLISHED})
        counts = _load_incoming(duck, pg, schemas, tmp_dir)
        _swap_in(pg, schemas)
    finally:
        pg.close()
        duck.close()
    log.info("published to PostgreSQL: %s", ", ".join(f"{n:,} {t}" for t, n in counts.items()))
    return counts
