"""Publish the marts to PostgreSQL for the centre's BI tools (Metabase, Superset, FineBI speak PostgreSQL).

Source is the gated `published.duckdb`, so every target shows the same snapshot. Each schema (`marts`,
`ops`) is loaded in bulk with COPY into a fresh schema `<schema>__incoming`, then swapped in within one
transaction: a BI query running meanwhile sees the old tables or the new ones, never a mix or an error.
Column comments carry the Chinese/English descriptions; the role `bi_reader` may only read.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ingest.warehouse import open_duckdb, sql_identifier, sql_literal
from publish.marts import PUBLISHED

log = logging.getLogger(__name__)

READER_ROLE = "bi_reader"


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


def _load_table(duck, cur, schema: str, table: str, order: str, tmp_dir: Path) -> int:
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
    try:
        duck.execute(
            f"COPY (SELECT * FROM {schema}.{table} ORDER BY {order}) TO '{csv_path}' "
            "(FORMAT csv, HEADER false, NULL '')"
        )
        with open(csv_path, "rb") as fh:
            cur.copy_expert(f"COPY {target} FROM STDIN WITH (FORMAT csv, NULL '')", fh)
    finally:
        csv_path.unlink(missing_ok=True)
    loaded = cur.rowcount
    comment = duck.execute(
        "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
        [schema, table],
    ).fetchone()[0]
    if comment:
        cur.execute(f"COMMENT ON TABLE {target} IS {sql_literal(comment)}")
    for column, _, text in columns:
        if text:
            cur.execute(f"COMMENT ON COLUMN {target}.{sql_identifier(column)} IS {sql_literal(text)}")
    return loaded


def _load_incoming(duck, pg, schemas: list[str], tmp_dir: Path) -> dict[str, int]:
    """Every published table into a fresh `<schema>__incoming`, in one transaction: invisible until committed."""
    counts: dict[str, int] = {}
    with pg, pg.cursor() as cur:
        for schema in schemas:
            cur.execute(f"DROP SCHEMA IF EXISTS {sql_identifier(schema + '__incoming')} CASCADE")
            cur.execute(f"CREATE SCHEMA {sql_identifier(schema + '__incoming')}")
        for (schema, table), order in PUBLISHED.items():
            counts[table] = _load_table(duck, cur, schema, table, order, tmp_dir)
    return counts


def _swap_in(pg, schemas: list[str]) -> None:
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
