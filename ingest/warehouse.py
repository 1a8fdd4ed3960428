"""The DuckDB files of the warehouse: the one way to open them, SQL quoting, and the raw layer (append-only)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

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

RAW_DDL = [
    "CREATE SCHEMA IF NOT EXISTS raw",
    *[
        f"CREATE TABLE IF NOT EXISTS raw.{table} (load_id VARCHAR NOT NULL, page_no INTEGER NOT NULL, item JSON)"
        for table in FEED_RESOURCES.values()
    ],
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
    return con
