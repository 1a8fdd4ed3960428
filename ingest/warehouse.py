"""The DuckDB files of the warehouse: the one way to open them, SQL quoting, and the raw layer (append-only)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from ingest import clock

FEED_RESOURCES = {
    # feed resource -> raw table
    "institutions": "institutions",
    "registered-occupations": "registered_occupations",
    "plans": "plans",
    "certificates": "certificates",
}

# each raw table's key: staging keeps the latest version of each, so repeats collapse there
FEED_KEYS = {
    "institutions": ("institution_id",),
    "registered_occupations": ("institution_id", "occupation_code"),
    "plans": ("plan_no",),
    "certificates": ("certificate_no",),
}

# Each resource's documented fields (docs/contract.md §3), landed as typed columns: (field, DuckDB type,
# required). A record missing a required field, or carrying a value that does not cast to its type, is
# quarantined with the reason (ingest/land.py). Fields not listed here (an upstream addition) are kept as they
# came, in `extra` (JSON).
FEED_FIELDS: dict[str, list[tuple[str, str, bool]]] = {
    "institutions": [
        ("institution_id", "VARCHAR", True),
        ("name", "VARCHAR", True),
        ("institution_type", "VARCHAR", True),
        ("registration_no", "VARCHAR", False),
        ("supervising_centre", "VARCHAR", True),
        ("region_code", "VARCHAR", False),
        ("registered_on", "DATE", True),
        ("expires_on", "DATE", True),
        ("cohort", "VARCHAR", False),
        ("status", "VARCHAR", True),
        ("responsible_person", "VARCHAR", False),
        ("responsible_phone", "VARCHAR", False),
        ("contact_person", "VARCHAR", False),
        ("contact_phone", "VARCHAR", False),
        ("email", "VARCHAR", False),
        ("address", "VARCHAR", False),
        ("updated_at", "TIMESTAMPTZ", True),
    ],
    "registered_occupations": [
        ("institution_id", "VARCHAR", True),
        ("occupation_code", "VARCHAR", True),
        ("occupation_name", "VARCHAR", False),
        ("work_type", "VARCHAR", False),
        ("registered_on", "DATE", True),
        ("updated_at", "TIMESTAMPTZ", True),
    ],
    "plans": [
        ("plan_no", "VARCHAR", True),
        ("institution_id", "VARCHAR", True),
        ("occupation_code", "VARCHAR", True),
        ("occupation_name", "VARCHAR", False),
        ("work_type", "VARCHAR", False),
        ("level", "INTEGER", True),
        ("assessment_date", "DATE", True),
        ("status", "VARCHAR", True),
        ("candidates", "INTEGER", False),
        ("passed", "INTEGER", False),
        ("certificates_online", "BOOLEAN", False),
        ("updated_at", "TIMESTAMPTZ", True),
    ],
    "certificates": [
        ("certificate_no", "VARCHAR", True),
        ("plan_no", "VARCHAR", True),
        ("institution_id", "VARCHAR", True),
        ("occupation_code", "VARCHAR", False),
        ("level", "INTEGER", False),
        ("issued_on", "DATE", True),
        ("holder_name", "VARCHAR", False),
        ("holder_id_no", "VARCHAR", False),
        ("updated_at", "TIMESTAMPTZ", True),
    ],
}

# An institution_id, from any feed resource or centre spreadsheet, is this whole pattern (documented as
# ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$): every id the feed uses does (35 and a six-digit serial, 35000001), and tests'
# ids (A, REV-OVERDUE) too. The id ends up in file and folder names and in cells of the exports, so a record whose id
# is anything else (../../x, =cmd|…, a control character) is quarantined with its reason, like a missing field; as
# the plans, certificates and occupations of such an institution carry the same id, they are quarantined with it.
INSTITUTION_ID_PATTERN = "[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
# fields checked against a pattern at landing, wherever they occur (the whole text must match)
FEED_PATTERNS = {"institution_id": INSTITUTION_ID_PATTERN}

# Personal data never lands as it came (ingest/land.py, PSEUDONYMISE): each personal field and the column it lands
# in. The resident ID number is replaced by its HMAC, under another name; the holder's name is masked to the surname.
PERSONAL_FIELDS = {"holder_id_no": "holder_id_hash", "holder_name": "holder_name"}


def raw_columns(table: str) -> list[tuple[str, str]]:
    """The typed columns of a raw feed table, in the order of its fields: (column, DuckDB type)."""
    return [(PERSONAL_FIELDS.get(field, field), type_) for field, type_, _ in FEED_FIELDS[table]]


def typed_sql(text: str, type_: str) -> str:
    """A field's text (a SQL expression) as its column's type; NULL where it does not cast (landing quarantines
    such an item, land.reason_sql; the one-time conversion of JSON items keeps the NULL)."""
    return text if type_ == "VARCHAR" else f"try_cast({text} AS {type_})"


# Columns DuckDB should store as they are, as the compression that DuckDB tries on each column saves little there
# and costs much: an HMAC is random (trying took a third of the certificates' landing time), and certificate
# numbers are all distinct (dictionary and FSST took ~1.5 core-s per 4.9 M rows, for ~25 % of the column's size).
UNCOMPRESSED_COLUMNS = {"holder_id_hash", "certificate_no"}


def raw_feed_ddl(table: str, name: str | None = None) -> str:
    columns = "".join(
        f", {column} {type_}" + (" USING COMPRESSION uncompressed" if column in UNCOMPRESSED_COLUMNS else "")
        for column, type_ in raw_columns(table)
    )
    return (
        f"CREATE TABLE IF NOT EXISTS raw.{name or table} "
        f"(load_id VARCHAR NOT NULL, page_no INTEGER NOT NULL{columns}, extra JSON)"
    )


RAW_DDL = [
    "CREATE SCHEMA IF NOT EXISTS raw",
    *[raw_feed_ddl(table) for table in FEED_RESOURCES.values()],
    """CREATE TABLE IF NOT EXISTS raw.feed_loads (
        load_id VARCHAR, resource VARCHAR, full_refresh BOOLEAN, updated_since TIMESTAMPTZ,
        started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, pages INTEGER, items BIGINT,
        max_updated_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS raw.certificate_lookups (
        load_id VARCHAR, certificate_no VARCHAR, found BOOLEAN, checked_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS raw.quarantine (
        load_id VARCHAR, source VARCHAR, file VARCHAR, row_number INTEGER, field VARCHAR, reason VARCHAR,
        record JSON)""",
    # the run summary, one number a row (step, subject, metric), for the DAG log and the BI tool
    """CREATE TABLE IF NOT EXISTS raw.run_metrics (
        load_id VARCHAR, as_of DATE, step VARCHAR, subject VARCHAR, metric VARCHAR, value BIGINT, note VARCHAR,
        recorded_at TIMESTAMPTZ)""",
]


def record_run_metrics(
    con: duckdb.DuckDBPyConnection,
    load_id: str,
    as_of: dt.date,
    step: str,
    metrics: Sequence[tuple[str, str, int, str | None]],
    *,
    subject: str | None = None,
) -> None:
    """Store a step's numbers, (subject, metric, value, note) each, in raw.run_metrics (published as
    ops.run_metrics). A rerun under the same load id replaces the step's rows (only those of `subject` when
    given), so that no summary counts a step twice."""
    where, key = "load_id = ? AND step = ?", [load_id, step]
    if subject is not None:
        where, key = f"{where} AND subject = ?", [*key, subject]
    con.execute(f"DELETE FROM raw.run_metrics WHERE {where}", key)
    recorded_at = clock.now()
    con.executemany(
        "INSERT INTO raw.run_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [load_id, as_of, step, subject_, metric, value, note, recorded_at]
            for subject_, metric, value, note in metrics
        ],
    )


def duckdb_config() -> dict[str, str]:
    """DuckDB spills to disk beyond DUCKDB_MEMORY_LIMIT (default 1 GB; dbt's profile reads the same variable),
    so that memory stays bounded whatever the data size (DuckDB's own default is 80 % of the machine)."""
    return {"memory_limit": os.environ.get("DUCKDB_MEMORY_LIMIT") or "1GB"}


def open_duckdb(path: Path | str | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Every DuckDB connection of the pipeline, so that the memory limit applies to all (None: in memory)."""
    con = duckdb.connect(":memory:" if path is None else str(path), read_only=read_only)
    # SET, not connect(config=): a file already open in this process with another config could not be opened
    con.execute(f"SET memory_limit = {sql_literal(duckdb_config()['memory_limit'])}")
    return con


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> tuple[Any, ...]:
    """The one row of a query that always returns one (an aggregate, an INSERT's count); a clear error naming
    the query if it returned none."""
    row = con.execute(sql, params).fetchone()
    if row is None:
        raise RuntimeError(f"the query returned no row, where it always returns one: {sql}")
    return row


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> Any:
    """The first value of one_row: count(*), max(…), a setting."""
    return one_row(con, sql, params)[0]


def dict_rows(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> list[dict[str, Any]]:
    """Every row of a query as a dict by column name, in the query's order."""
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def sql_literal(text: str) -> str:
    """A SQL string literal, for the statements that take no parameters (ATTACH, COPY, COMMENT ON)."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A quoted SQL identifier (DuckDB and PostgreSQL alike)."""
    return '"' + name.replace('"', '""') + '"'


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing and make sure the raw layer exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = open_duckdb(path)
    for ddl in RAW_DDL:
        con.execute(ddl)
    for table in FEED_RESOURCES.values():
        migrate_json_items(con, table)
    return con


def migrate_json_items(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Before typed landing, a raw feed table held each item as one JSON column `item`: convert such a table in
    place, once (the same rows in the same order; the fields not among its columns go to `extra`)."""
    columns = [row[0] for row in con.execute(f"DESCRIBE raw.{table}").fetchall()]
    if columns != ["load_id", "page_no", "item"]:
        return
    typed = raw_columns(table)
    paths = ", ".join(sql_literal(f"$.{column}") for column, _ in typed)
    values = ", ".join(typed_sql(f"v[{n}]", type_) for n, (_, type_) in enumerate(typed, start=1))
    known = "json_object(" + ", ".join(f"{sql_literal(column)}, NULL" for column, _ in typed) + ")"
    con.begin()
    con.execute(raw_feed_ddl(table, f"{table}__typed"))
    con.execute(
        f"INSERT INTO raw.{table}__typed SELECT load_id, page_no, {values}, "
        f"nullif(json_merge_patch(item, {known}), '{{}}') "
        f"FROM (SELECT *, json_extract_string(item, [{paths}]) AS v FROM raw.{table} ORDER BY rowid)"
    )
    con.execute(f"DROP TABLE raw.{table}")
    con.execute(f"ALTER TABLE raw.{table}__typed RENAME TO {table}")
    con.commit()
