"""Which rows the day's data checks cover: dbt's tests on the million-row certificate and lookup models and the
quality gate's row checks look at the rows changed since the last passed check, and at every row once a week.

A check is full on the first run, when the last full check is more than FULL_CHECK_AFTER_DAYS days before D (or
after D: a backfill going back starts with one), and when a full refresh of the feed landed since the last passed
check. The decision is read from the data, not the weekday: the gate records each passed check in
raw.run_metrics (step quality_gate, subject checks, metric full_check or changed_rows_check), so a week without
runs, or a failed gate, moves the next full check accordingly. "Changed" means landed (raw.feed_loads) or looked
up (checked_at) after the last passed check: a row changed by a run whose checks failed stays changed until a
check passes. README, "Checks: changed rows and the weekly full check".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingest.warehouse import one_row, open_duckdb, record_run_metrics, scalar

FULL_CHECK_AFTER_DAYS = 6  # a full check when the last one is more than this many days before D
CHECKS_STEP, CHECKS_SUBJECT = "quality_gate", "checks"
FULL_CHECK, CHANGED_ROWS_CHECK = "full_check", "changed_rows_check"
# the dbt tasks' environment variable that carries the decision (dbt_project/macros/changed_rows.sql)
CHANGED_SINCE_ENV = "RENEWAL_CHECK_CHANGED_SINCE"


@dataclass(frozen=True)
class CheckScope:
    # the rows landed or looked up after this are checked; None: every row (a full check)
    changed_since: dt.datetime | None
    reason: str

    @property
    def full(self) -> bool:
        return self.changed_since is None

    @property
    def metric(self) -> str:
        return FULL_CHECK if self.full else CHANGED_ROWS_CHECK

    def env_value(self) -> str:
        """CHANGED_SINCE_ENV's value for dbt: an ISO timestamp, or empty for a full check."""
        return "" if self.changed_since is None else self.changed_since.isoformat()


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        scalar(
            con,
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
            [schema, table],
        )
    )


def decide_scope(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> CheckScope:
    """The scope of D's checks, from the passed checks recorded in raw.run_metrics and the loads in raw.feed_loads."""
    if not _has_table(con, "raw", "run_metrics"):
        return CheckScope(None, "first run: no check recorded")
    last_full_as_of, last_passed_at = one_row(
        con,
        """SELECT arg_max(as_of, recorded_at) FILTER (WHERE metric = ?), max(recorded_at)
           FROM raw.run_metrics WHERE step = ? AND subject = ?""",
        [FULL_CHECK, CHECKS_STEP, CHECKS_SUBJECT],
    )
    if last_full_as_of is None:
        return CheckScope(None, "no full check recorded yet")
    days = (as_of - last_full_as_of).days
    if not 0 <= days <= FULL_CHECK_AFTER_DAYS:
        return CheckScope(None, f"the last full check was for {last_full_as_of}, {days} days from D")
    if _has_table(con, "raw", "feed_loads") and scalar(
        con, "SELECT count(*) FROM raw.feed_loads WHERE full_refresh AND finished_at > ?", [last_passed_at]
    ):
        return CheckScope(None, "a full refresh of the feed landed since the last passed check")
    return CheckScope(
        last_passed_at,
        f"rows changed since the last passed check at {last_passed_at.isoformat(timespec='seconds')} "
        f"(full check for {last_full_as_of})",
    )


def warehouse_scope(warehouse_db: Path, as_of: dt.date) -> CheckScope:
    """decide_scope on the warehouse file, opened read-only (a full check when there is none yet)."""
    if not warehouse_db.exists():
        return CheckScope(None, "first run: no warehouse yet")
    con = open_duckdb(warehouse_db, read_only=True)
    try:
        return decide_scope(con, as_of)
    finally:
        con.close()


def record_passed_check(
    con: duckdb.DuckDBPyConnection, load_id: str, as_of: dt.date, scope: CheckScope, rows_checked: int
) -> None:
    """Record that D's checks passed with this scope: the next run's changed rows are those after now()."""
    record_run_metrics(
        con,
        load_id,
        as_of,
        CHECKS_STEP,
        [(CHECKS_SUBJECT, scope.metric, rows_checked, scope.reason)],
        subject=CHECKS_SUBJECT,
    )
