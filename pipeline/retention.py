"""How long each kind of stored data is kept (POLICY, one entry per kind: what, where, how long, why), and the
functions that enforce it: `apply_retention` for the warehouse and exports folders (the daily run's last step),
`clean_airflow` for Airflow's own metadata and logs (outside any task). README, "Retention".

What the centre must keep is never removed: the reminder ledger (what was sent to whom) is not even opened, and
the verdict history (`marts.renewal_history`) is only counted. Everything else removed is either a copy (a
superseded version of a record whose current version stays) or a record whose use has a known end.

Ages are counted on the pipeline's clock (`now`, ingest/clock.py), from when a thing was stored: a load's landing time (raw.feed_loads,
raw.run_metrics), a lookup's `checked_at`, a file's modification time. A backfill or a rerun for an old as-of date
therefore removes no more than a daily run, and what it wrote is kept as long as anything written that day.

Why removing superseded versions changes no mart, for any D: staging keeps each key's latest version (latest
`updated_at`, then `load_id`), and only those versions go whose key has a later version landed before the cutoff,
so the latest one always stays (the incremental models keep their own copy of what they read, and read new loads
by `raw.feed_loads`, which keeps every load that still has a row). R-FEED's newest `updated_at` on or before D is
the same for every D from the cutoff on: every version removed has a later one, itself landed (so updated)
before the cutoff, that stays or has such a later one in turn. The lookup answers likewise (the latest per
certificate stays). tests/test_retention.py rebuilds the marts from scratch after retention and compares.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ingest import clock
from ingest.warehouse import (
    FEED_KEYS,
    FEED_RESOURCES,
    connect,
    one_row,
    open_duckdb,
    record_run_metrics,
    scalar,
    sql_identifier,
    sql_literal,
)
from pipeline.check_scope import CHECKS_STEP, CHECKS_SUBJECT, FULL_CHECK
from pipeline.settings import PROJECT_ROOT, TIMEZONE, Settings, run_load_id, warehouse_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    kind: str  # the key of POLICY and of apply_retention's `days` overrides
    name: str  # the kind in words (README's table)
    where: str
    kept: str  # how long, in words
    why: str
    days: int | None = None  # the age in days beyond which it goes; None: not removed by age


POLICY: tuple[Rule, ...] = (
    Rule(
        "feed_versions",
        "Superseded feed versions",
        "`warehouse/warehouse.duckdb`: `raw.institutions`, `raw.registered_occupations`, `raw.plans`, "
        "`raw.certificates`",
        "the current version of every record, always; a superseded one until 35 days after the version that "
        "replaced it landed",
        "staging, the incremental models and the gate read only each record's current version (latest "
        "`updated_at`, then `load_id`); a superseded one shows what changed in the last month, and keeps R-FEED's "
        "newest `updated_at` exact for a rerun or backfill of any day since. Each incremental pull lands the last "
        "day's changes again (its overlap), a full refresh every record: kept, those copies grew the table daily",
        days=35,
    ),
    Rule(
        "lookup_answers",
        "Superseded lookup answers",
        "`raw.certificate_lookups`",
        "the latest answer for every certificate, always; an older one until 35 days after the next answer",
        "R-CERT and the choice of what to look up again read only the latest answer; found certificates are asked "
        "again every 30 days, so 35 days keep the previous answer of each",
        days=35,
    ),
    Rule(
        "load_log",
        "Load log",
        "`raw.feed_loads`",
        "while a landed row or quarantined item carries its load id, and at least 35 days; each resource's newest "
        "load and the one holding its watermark, always",
        "the next pull's `updated_since`, the changed-rows checks and the incremental certificate model read it; "
        "a load that left nothing behind explains nothing",
        days=35,
    ),
    Rule(
        "quarantine",
        "Quarantined records",
        "`raw.quarantine` (feed items and centre rows)",
        "90 days after their load",
        "they tell why a record was rejected: centres fix and resend rows within weeks, and each centre's "
        "退回清单 stays in the export folders for 180 days. The items are kept as they came (pseudonymised), so "
        "no longer than that use",
        days=90,
    ),
    Rule(
        "run_metrics",
        "Run metrics",
        "`raw.run_metrics` (published as `ops.run_metrics`)",
        "400 days; the last passed check and the last full check, always",
        "a year of trends, and the same month a year before, for the BI tool; the two check rows decide the next "
        "run's check scope (`pipeline/check_scope.py`)",
        days=400,
    ),
    Rule(
        "gate_results",
        "Gate results",
        "`warehouse/gate/<as-of>/<run>/`",
        "90 days; the newest passed and the newest failed run, always",
        "a quarter shows when a check began to fail and for how long, and the last good and last failed runs are "
        "what an investigation compares. The Data Docs site (`gate/data_docs`) shows the latest run only: GX "
        "drops the older pages whenever it rebuilds it",
        days=90,
    ),
    Rule(
        "exports",
        "Export folders",
        "`exports/<as-of>/`",
        "180 days; then only its `manifest.json`",
        "an institution reminded when its window opens can apply until its grace period ends, 150 days later "
        "(90 + 60), and its pre-filled forms are only here; what was sent to whom stays for ever in the ledger, "
        "and the manifest keeps the counts and the sha256 of every file sent",
        days=180,
    ),
    Rule(
        "form_cache",
        "Form cache",
        "`warehouse/form_cache/`",
        "the forms the latest export used",
        "D is in every form, so only a rerun of the latest export can use an entry: the export drops the others "
        "itself (`publish/form_cache.py`, `keep_only_used`), so the cache never holds more than one export's forms "
        "(two after an export that failed half-way)",
    ),
    Rule(
        "airflow",
        "Airflow logs and metadata",
        "`warehouse/.airflow/` (`dags-test-*.log`, `logs/`, `airflow.db`); in production Airflow's metadata "
        "database and the volume `airflow-logs`",
        "30 days",
        "a failed run is looked into within days; what a run produced is in the marts, the history, the run "
        "metrics and the ledger, not in Airflow. `airflow db clean` keeps each DAG's latest scheduled run",
        days=30,
    ),
    Rule(
        "leftovers",
        "Temporary files of killed runs",
        "`.<name>.<hex>.tmp`, `.old`, `.link`, `.compact` in the warehouse and exports folders",
        "2 days",
        "a step renames or removes its temporary files when it ends, so only a step killed half-way leaves them; "
        "no step runs for two days",
        days=2,
    ),
    Rule(
        "working",
        "Working tables",
        "`warehouse/warehouse.duckdb`: staging, intermediate and candidate marts, centre tables, calendar",
        "until the next run",
        "every run rebuilds or replaces them; the incremental models hold one row per key",
    ),
    Rule(
        "published",
        "Published marts",
        "`warehouse/published.duckdb`, `warehouse/parquet/`, PostgreSQL `marts` and `ops`",
        "the latest publication",
        "each publication replaces the one before (the days before are in `renewal_history`)",
    ),
    Rule(
        "history",
        "Verdict history",
        "`marts.renewal_history` (in every copy of the marts)",
        "for ever",
        "the centre must keep how each institution stood on every day it was judged, and the feed keeps no "
        "history to rebuild a day from. It grows by one row per institution a day, about 7 bytes in DuckDB (5 MB "
        "a year for 2,000 institutions)",
    ),
    Rule(
        "ledger",
        "Reminder ledger",
        "`warehouse/reminder_ledger.duckdb` (`reminder_ledger`, `email_deliveries`)",
        "for ever",
        "the centre must keep what was sent to whom and when, and it is what sends each reminder once; "
        "retention never opens it",
    ),
)
RULES = {rule.kind: rule for rule in POLICY}

# warehouse.duckdb is copied into a fresh file when at least this share of it is free blocks. DuckDB reuses free
# blocks, and its checkpoint rewrites row groups that lost enough rows, so the file stops growing once retention
# removes as much as the runs add; a copy is worth it only after a large one-off removal (the first retention of
# an old warehouse, the copies of a full refresh). The free share left by a day's dbt build is ~30 %.
COMPACT_WHEN_FREE = 0.5
# what a killed step leaves behind: publish/marts.py (.published.duckdb.<hex>.tmp), publish/marts.py's Parquet
# link (.parquet.<hex>.link), publish/exports.py (.<D>.<hex>.tmp, .old), compact_duckdb below (.compact)
LEFTOVER = re.compile(r"^\..+\.[0-9a-f]{32}\.(tmp|old|link|compact)(\.wal)?$")
STEP = "retention"


class RetentionError(RuntimeError):
    """Retention could not do what it must (the message names the file or table); nothing half-done is kept."""


@dataclass
class Removed:
    """What one rule removed from one place: rows of a table, or files and folders (with their bytes)."""

    kind: str
    where: str
    removed: int
    unit: str  # "rows" or "files"
    bytes: int = 0
    left: int | None = None  # rows or files still there

    def metrics(self) -> list[tuple[str, str, int, str]]:
        rows = [(self.where, f"{self.unit}_removed", self.removed, self.kind)]
        if self.unit == "files":
            rows.append((self.where, "bytes_removed", self.bytes, self.kind))
        if self.left is not None:
            rows.append((self.where, f"{self.unit}_left", self.left, self.kind))
        return rows


@dataclass
class RetentionReport:
    as_of: str
    now: str
    cutoffs: dict[str, str]
    removed: list[Removed] = field(default_factory=list)
    warehouse_bytes_before: int | None = None
    warehouse_bytes_after: int | None = None
    compacted: bool = False
    compaction: str = ""  # why the warehouse was copied, or why not
    kept: dict[str, int] = field(default_factory=dict)  # sizes of what is kept by other means (bytes, rows)

    def total(self, unit: str) -> int:
        return sum(r.removed for r in self.removed if r.unit == unit)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _days(overrides: Mapping[str, int] | None) -> dict[str, int]:
    days = {rule.kind: rule.days for rule in POLICY if rule.days is not None}
    for kind, value in (overrides or {}).items():
        if kind not in days:
            raise ValueError(f"retention: no kind {kind!r} is removed by age (kinds: {', '.join(days)})")
        if value < 0:
            raise ValueError(f"retention: {kind} must be kept 0 days or more, got {value}")
        days[kind] = value
    return days


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return clock.now()
    if now.tzinfo is None:
        raise ValueError("retention: `now` needs a time zone")
    return now


def apply_retention(
    settings: Settings,
    as_of: dt.date,
    *,
    now: dt.datetime | None = None,
    days: Mapping[str, int] | None = None,
    compact: bool | None = None,
    load_id: str | None = None,
) -> RetentionReport:
    """Enforce POLICY on the warehouse and exports folders of `settings`; returns what was removed (rows, files,
    bytes) and records it in raw.run_metrics (step `retention`, published as ops.run_metrics with the next
    publication). `days` overrides a kind's age limit; `compact` True/False forces or forbids copying
    warehouse.duckdb into a fresh file (default: when half of it is free). The as-of date's own export and gate
    results are never removed. Run it when no other step writes (the DAG's writer pool)."""
    now = _now(now)
    limits = _days(days)
    cutoffs = {kind: now - dt.timedelta(days=n) for kind, n in limits.items()}
    report = RetentionReport(
        as_of.isoformat(), now.isoformat(), {k: v.isoformat() for k, v in cutoffs.items()}
    )
    report.removed += prune_gate_results(settings.warehouse_dir / "gate", as_of, cutoffs["gate_results"])
    report.removed += prune_exports(settings.exports_dir, as_of, cutoffs["exports"])
    report.removed += prune_leftovers([settings.warehouse_dir, settings.exports_dir], cutoffs["leftovers"])
    airflow_home = settings.warehouse_dir / ".airflow"
    report.removed += prune_files(airflow_home, "dags-test-*.log", cutoffs["airflow"], "airflow")
    report.removed += prune_files(airflow_home / "logs", "**/*", cutoffs["airflow"], "airflow")
    report.kept |= _file_sizes(settings)
    if settings.warehouse_db.exists():
        report.warehouse_bytes_before = settings.warehouse_db.stat().st_size
        _warehouse_retention(settings.warehouse_db, report, cutoffs, compact)
        _record(settings.warehouse_db, load_id or run_load_id(as_of, "retention"), as_of, report)
    for r in report.removed:
        if r.removed:
            log.info(
                "retention %s: removed %s %s from %s%s",
                r.kind,
                f"{r.removed:,}",
                r.unit,
                r.where,
                f" ({r.bytes:,} bytes)" if r.unit == "files" else "",
            )
    log.info(
        "retention for %s: %s rows and %s files (%s bytes) removed; warehouse.duckdb %s → %s bytes (%s)",
        as_of,
        f"{report.total('rows'):,}",
        f"{report.total('files'):,}",
        f"{sum(r.bytes for r in report.removed):,}",
        f"{report.warehouse_bytes_before or 0:,}",
        f"{report.warehouse_bytes_after or 0:,}",
        report.compaction or "no warehouse",
    )
    return report


def retention_step(as_of: dt.date, load_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """The DAG task's step (`retention`, after the publication): apply_retention with the policy as it is."""
    from pipeline.dbt_handle import release_dbt_duckdb

    release_dbt_duckdb()
    report = apply_retention(settings or folders_from_env(), as_of, load_id=load_id)
    return {
        "rows_removed": report.total("rows"),
        "files_removed": report.total("files"),
        "bytes_removed": sum(r.bytes for r in report.removed),
        "warehouse_bytes_before": report.warehouse_bytes_before,
        "warehouse_bytes_after": report.warehouse_bytes_after,
        "compaction": report.compaction,
    }


# --- the warehouse's raw layer ------------------------------------------------------------------------------


def _keys_match(keys: Iterable[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{sql_identifier(k)} = {right}.{sql_identifier(k)}" for k in keys)


def superseded_versions_sql(table: str, resource: str) -> str:
    """DELETE the versions of `table` that have a later version (staging's order: updated_at, then load_id) landed
    before $cutoff. Per key, the latest version among those landed before $cutoff stays with everything after it,
    so each key's current version always stays, and ties (a key repeated within a load) stay together."""
    keys = FEED_KEYS[table]
    key_list = ", ".join(sql_identifier(k) for k in keys)
    return f"""
        DELETE FROM raw.{table} AS t
        USING (
            SELECT {key_list}, max({{'u': v.updated_at, 'l': v.load_id}}) AS newest
            FROM raw.{table} AS v
            JOIN (SELECT load_id, max(finished_at) AS landed_at FROM raw.feed_loads
                  WHERE resource = {sql_literal(resource)} GROUP BY load_id) AS loads USING (load_id)
            WHERE loads.landed_at < $cutoff AND v.updated_at IS NOT NULL
            GROUP BY {key_list}
        ) AS s
        WHERE {_keys_match(keys, "t", "s")} AND t.updated_at IS NOT NULL
          AND (t.updated_at < struct_extract(s.newest, 'u')
               OR (t.updated_at = struct_extract(s.newest, 'u') AND t.load_id < struct_extract(s.newest, 'l')))"""


SUPERSEDED_LOOKUPS_SQL = """
    DELETE FROM raw.certificate_lookups AS t
    USING (SELECT certificate_no, max(checked_at) AS newest FROM raw.certificate_lookups
           WHERE checked_at < $cutoff GROUP BY certificate_no) AS s
    WHERE t.certificate_no = s.certificate_no AND t.checked_at < s.newest"""

# A load's time: when it finished landing (feed) or recorded its numbers (every step records some)
LOAD_TIMES_SQL = """
    SELECT load_id, max(stamp) AS landed_at FROM (
        SELECT load_id, finished_at AS stamp FROM raw.feed_loads
        UNION ALL
        SELECT load_id, recorded_at FROM raw.run_metrics
    ) GROUP BY load_id"""

# quarantined items of loads older than the cutoff; an item whose load has no known time stays
QUARANTINE_SQL = f"""
    DELETE FROM raw.quarantine AS q
    USING ({LOAD_TIMES_SQL}) AS loads
    WHERE q.load_id = loads.load_id AND loads.landed_at < $cutoff"""


def load_log_sql(table: str, resource: str) -> str:
    """DELETE the rows of raw.feed_loads for `resource` landed before $cutoff whose load left no row in `table` and
    no quarantined item, unless it is the resource's newest load or holds its watermark (land.watermark)."""
    return f"""
        DELETE FROM raw.feed_loads AS f
        WHERE f.resource = {sql_literal(resource)} AND f.finished_at < $cutoff
          AND f.load_id NOT IN (SELECT DISTINCT load_id FROM raw.{table})
          AND f.load_id NOT IN (SELECT DISTINCT load_id FROM raw.quarantine WHERE load_id IS NOT NULL)
          AND f.finished_at < (SELECT max(finished_at) FROM raw.feed_loads WHERE resource = f.resource)
          AND coalesce(f.max_updated_at < (SELECT max(max_updated_at) FROM raw.feed_loads
                                           WHERE resource = f.resource), true)"""


# run metrics older than the cutoff, but the rows decide_scope reads: the newest check and the newest full check
RUN_METRICS_SQL = f"""
    DELETE FROM raw.run_metrics AS m
    WHERE m.recorded_at < $cutoff
      AND NOT coalesce(
          m.step = {sql_literal(CHECKS_STEP)} AND m.subject = {sql_literal(CHECKS_SUBJECT)}
          AND (m.recorded_at = (SELECT max(recorded_at) FROM raw.run_metrics
                                WHERE step = {sql_literal(CHECKS_STEP)} AND subject = {sql_literal(CHECKS_SUBJECT)})
               OR m.recorded_at = (SELECT max(recorded_at) FROM raw.run_metrics
                                   WHERE step = {sql_literal(CHECKS_STEP)} AND subject = {sql_literal(CHECKS_SUBJECT)}
                                     AND metric = {sql_literal(FULL_CHECK)})),
          true)"""


def prune_raw(con: duckdb.DuckDBPyConnection, cutoffs: Mapping[str, dt.datetime]) -> list[Removed]:
    """The raw layer's rules, in one transaction (a failure removes nothing). The quarantine goes before the load
    log and the run metrics, which date it."""
    statements: list[tuple[str, str, str]] = [
        ("feed_versions", f"raw.{table}", superseded_versions_sql(table, resource))
        for resource, table in FEED_RESOURCES.items()
    ]
    statements += [
        ("lookup_answers", "raw.certificate_lookups", SUPERSEDED_LOOKUPS_SQL),
        ("quarantine", "raw.quarantine", QUARANTINE_SQL),
    ]
    statements += [
        ("load_log", f"raw.feed_loads {resource}", load_log_sql(table, resource))
        for resource, table in FEED_RESOURCES.items()
    ]
    statements.append(("run_metrics", "raw.run_metrics", RUN_METRICS_SQL))
    removed: dict[tuple[str, str], int] = {}
    con.begin()
    try:
        for kind, where, sql in statements:
            try:
                count = scalar(con, sql, {"cutoff": cutoffs[kind]})
            except duckdb.Error as exc:
                raise RetentionError(f"retention {kind} on {where}: {type(exc).__name__}: {exc}") from exc
            removed[(kind, where.split()[0])] = removed.get((kind, where.split()[0]), 0) + count
        con.commit()
    except BaseException:
        con.rollback()
        raise
    result = []
    for (kind, table), count in removed.items():
        left = scalar(con, f"SELECT count(*) FROM {table}")
        result.append(Removed(kind, table, count, "rows", left=left))
    return result


def _warehouse_retention(
    db: Path, report: RetentionReport, cutoffs: Mapping[str, dt.datetime], compact: bool | None
) -> None:
    con = connect(db)
    try:
        report.removed += prune_raw(con, cutoffs)
        report.kept |= _history(con)
        # the deleted rows' blocks become free (and reusable) at a checkpoint, not before
        con.execute("CHECKPOINT")
        block_size, total, free = one_row(
            con, "SELECT block_size, total_blocks, free_blocks FROM pragma_database_size()"
        )
    finally:
        con.close()
    share = free / total if total else 0.0
    if compact is None:
        compact = share >= COMPACT_WHEN_FREE
        reason = f"{free * block_size:,} bytes free ({share:.0%})"
        report.compaction = ("copied into a fresh file: " if compact else "not copied: ") + reason
    else:
        report.compaction = "copied into a fresh file (asked)" if compact else "not copied (asked)"
    if compact:
        compact_duckdb(db)
        report.compacted = True
    report.warehouse_bytes_after = db.stat().st_size


def _history(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The verdict history's size (only counted: the centre keeps it for ever)."""
    found = scalar(
        con,
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts' AND table_name = 'renewal_history'",
    )
    if not found:
        return {}
    rows, days = one_row(con, "SELECT count(*), count(DISTINCT as_of) FROM marts.renewal_history")
    return {"renewal_history_rows": rows, "renewal_history_days": days}


def _record(db: Path, load_id: str, as_of: dt.date, report: RetentionReport) -> None:
    """The report in raw.run_metrics, one number a row (a rerun under the same load id replaces them)."""
    rows = [m for r in report.removed for m in r.metrics()]
    if report.warehouse_bytes_before is not None:
        rows += [
            ("warehouse.duckdb", "bytes_before", report.warehouse_bytes_before, "before retention"),
            ("warehouse.duckdb", "bytes_after", report.warehouse_bytes_after or 0, report.compaction),
        ]
    rows += [(name, "kept", value, "kept") for name, value in sorted(report.kept.items())]
    con = connect(db)
    try:
        record_run_metrics(con, load_id, as_of, STEP, rows)
    finally:
        con.close()


def compact_duckdb(db: Path) -> tuple[int, int]:
    """Copy a DuckDB file into a fresh one (COPY FROM DATABASE: tables, views, comments; no free blocks, no deleted
    rows) and put it in the old one's place by rename; (bytes before, bytes after). The copy is checked (the same
    schemas, tables, views and columns, and as many rows in every table) before it replaces anything; a reader that
    has the old file open keeps reading it. The file must have no other writer (the DAG's writer pool)."""
    wal = Path(f"{db}.wal")
    con = open_duckdb(db)
    try:
        con.execute("CHECKPOINT")
    finally:
        con.close()
    if wal.exists():
        raise RetentionError(
            f"{db}: its write-ahead log {wal.name} is still there after a checkpoint: not copied"
        )
    before = db.stat().st_size
    fresh = db.with_name(f".{db.name}.{uuid.uuid4().hex}.compact")
    try:
        con = open_duckdb(fresh)
        try:
            con.execute(f"ATTACH {sql_literal(str(db))} AS source (READ_ONLY)")
            target = scalar(con, "SELECT current_database()")
            con.execute(f"COPY FROM DATABASE source TO {sql_identifier(target)}")
            _check_copy(con, db, target)
            con.execute("DETACH source")
            con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            raise RetentionError(
                f"{db}: could not copy it into a fresh file ({type(exc).__name__}: {exc}); it is unchanged"
            ) from exc
        finally:
            con.close()
        with open(fresh, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(fresh, db)
        directory = os.open(db.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        fresh.unlink(missing_ok=True)
        Path(f"{fresh}.wal").unlink(missing_ok=True)
    after = db.stat().st_size
    log.info("copied %s into a fresh file: %s → %s bytes", db.name, f"{before:,}", f"{after:,}")
    return before, after


def _check_copy(con: duckdb.DuckDBPyConnection, db: Path, target: str) -> None:
    def catalog(
        database: str,
    ) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]], dict[tuple[str, str], int]]:
        columns = set(
            con.execute(
                """SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns()
                   WHERE database_name = ?""",
                [database],
            ).fetchall()
        )
        views = set(
            con.execute(
                "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal",
                [database],
            ).fetchall()
        )
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?", [database]
        ).fetchall()
        counts = {
            (s, t): scalar(
                con,
                f"SELECT count(*) FROM {sql_identifier(database)}.{sql_identifier(s)}.{sql_identifier(t)}",
            )
            for s, t in tables
        }
        return columns, views, counts

    source, copy = catalog("source"), catalog(target)
    # each part as a set of hashable entries (the row counts as their (table, count) items), so that the parts
    # differ exactly when their symmetric difference is not empty
    parts: list[tuple[str, set[tuple[Any, ...]], set[tuple[Any, ...]]]] = [
        ("columns", source[0], copy[0]),
        ("views", source[1], copy[1]),
        ("row counts", set(source[2].items()), set(copy[2].items())),
    ]
    for what, theirs, ours in parts:
        if theirs != ours:
            differ = sorted(theirs ^ ours)
            raise RetentionError(
                f"{db}: the fresh copy's {what} differ from the file's ({differ[:5]}): not replaced"
            )


# --- files ---------------------------------------------------------------------------------------------------


def _size(path: Path) -> tuple[int, int]:
    """(files, bytes) below a path (the path itself if it is a file); symbolic links are not followed."""
    if path.is_symlink() or path.is_file():
        return 1, path.lstat().st_size
    files = size = 0
    for entry in path.rglob("*"):
        if entry.is_symlink() or entry.is_file():
            files, size = files + 1, size + entry.lstat().st_size
    return files, size


def _remove(path: Path) -> tuple[int, int]:
    files, size = _size(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    return files, size


def _mtime(path: Path) -> float:
    return path.lstat().st_mtime


def _date_named(folder: Path) -> list[Path]:
    """The sub-folders of `folder` named by a date (YYYY-MM-DD), oldest first; nothing else is touched."""
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink() and re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry.name):
            try:
                dt.date.fromisoformat(entry.name)
            except ValueError:
                continue
            found.append(entry)
    return sorted(found)


def prune_gate_results(gate_dir: Path, as_of: dt.date, cutoff: dt.datetime) -> list[Removed]:
    """The gate's runs (gate/<as-of>/<run>/) written before the cutoff, except the newest passed and the newest
    failed run and the runs of the as-of date itself; then the as-of folders left empty. Data Docs is GX's."""
    runs = []  # (written, passed, path)
    for day in _date_named(gate_dir):
        for run in day.iterdir():
            if not run.is_dir() or run.is_symlink():
                continue
            results = run / "validation_results.json"
            try:
                passed = json.loads(results.read_text(encoding="utf-8")).get("success") is True
            except (OSError, ValueError, AttributeError):
                passed = False  # no readable results: never the last good run
            written = _mtime(results) if results.exists() else _mtime(run)
            runs.append((written, passed, run))
    keep = {
        max((r for r in runs if r[1] is passed), default=(0, passed, None))[2] for passed in (True, False)
    }
    files = size = 0
    for written, _, run in runs:
        if written >= cutoff.timestamp() or run in keep or run.parent.name == as_of.isoformat():
            continue
        n, b = _remove(run)
        files, size = files + n, size + b
    for day in _date_named(gate_dir):
        if not any(day.iterdir()):
            day.rmdir()
    return [
        Removed(
            "gate_results", "gate", files, "files", size, left=_size(gate_dir)[0] if gate_dir.exists() else 0
        )
    ]


def prune_exports(exports_dir: Path, as_of: dt.date, cutoff: dt.datetime) -> list[Removed]:
    """Every export folder (exports/<as-of>/) written before the cutoff, but for its manifest.json; the as-of
    date's own folder stays whole."""
    files = size = 0
    for folder in _date_named(exports_dir):
        if folder.name == as_of.isoformat():
            continue
        manifest = folder / "manifest.json"
        entries = [e for e in folder.iterdir() if e != manifest]
        if not entries:
            continue
        written = _mtime(manifest) if manifest.exists() else max(_mtime(e) for e in entries)
        if written >= cutoff.timestamp():
            continue
        for entry in entries:
            n, b = _remove(entry)
            files, size = files + n, size + b
    left = _size(exports_dir)[0] if exports_dir.exists() else 0
    return [Removed("exports", "exports", files, "files", size, left=left)]


def prune_leftovers(folders: Iterable[Path], cutoff: dt.datetime) -> list[Removed]:
    """Temporary files and folders that killed steps left behind (LEFTOVER), older than the cutoff."""
    files = size = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if LEFTOVER.match(entry.name) and _mtime(entry) < cutoff.timestamp():
                n, b = _remove(entry)
                files, size = files + n, size + b
    return [Removed("leftovers", "temporary files", files, "files", size)]


def prune_files(folder: Path, pattern: str, cutoff: dt.datetime, kind: str) -> list[Removed]:
    """The files matching `pattern` below `folder` last written before the cutoff; then the folders left empty."""
    if not folder.is_dir():
        return [Removed(kind, str(folder.name), 0, "files", 0)]
    # A folder goes once empty only if nothing was added to it since the cutoff (its time as it was before this
    # pruning): Airflow may have just made a fresh one for a log it is about to write.
    folders = {p: _mtime(p) for p in folder.glob("**/*") if p.is_dir() and not p.is_symlink()}
    files = size = 0
    for path in sorted(folder.glob(pattern)):
        if (path.is_file() or path.is_symlink()) and _mtime(path) < cutoff.timestamp():
            n, b = _remove(path)
            files, size = files + n, size + b
    for path, written in sorted(folders.items(), key=lambda item: len(item[0].parts), reverse=True):
        if written < cutoff.timestamp() and path.exists() and not any(path.iterdir()):
            try:
                path.rmdir()
            except OSError:  # something was written into it meanwhile: it stays
                continue
    return [Removed(kind, f"{folder.name}/{pattern}", files, "files", size)]


def _file_sizes(settings: Settings) -> dict[str, int]:
    """What is kept by other means, measured (stat only: the ledger is never opened)."""
    sizes: dict[str, int] = {}
    if settings.form_cache_dir.exists():
        entries, size = _size(settings.form_cache_dir)
        sizes |= {"form_cache_entries": entries, "form_cache_bytes": size}
    for name, path in (
        ("reminder_ledger_bytes", settings.reminder_ledger_db),
        ("published_bytes", settings.published_db),
    ):
        if path.exists():
            sizes[name] = path.stat().st_size
    return sizes


# --- Airflow ---------------------------------------------------------------------------------------------------


def airflow_db_clean_command(airflow: str, before: dt.datetime) -> list[str]:
    """`airflow db clean` for every record before `before` (no archive tables: nothing reads them)."""
    return [
        airflow,
        "db",
        "clean",
        "--clean-before-timestamp",
        before.isoformat(timespec="seconds"),
        "--yes",
        "--skip-archive",
    ]


def clean_airflow(
    airflow: str | None,
    env: Mapping[str, str] | None = None,
    *,
    now: dt.datetime | None = None,
    days: int | None = None,
) -> list[Removed]:
    """Airflow's own records older than the policy's 30 days: `airflow db clean` on its metadata database
    (VACUUM after it when that is SQLite, as `make run`'s is, since SQLite does not give deleted pages back), the
    task logs under its log folder and, in AIRFLOW_HOME, the logs of `airflow dags test` (`make run`). Not in a
    task: Airflow 3 keeps tasks away from its database. `make run`'s DAG runner (pipeline/dags_test.py) calls it
    after the DAGs; in production run `python -m pipeline.retention airflow` in a scheduler container (README,
    Retention).

    `airflow` is the airflow program, run in the environment `env`; None runs the same command in this process,
    whose environment must then be Airflow's (the DAG runner's: it saves starting Airflow again, ~2.5 s)."""
    env = dict(os.environ if env is None else env)
    kept = dt.timedelta(days=_days(None)["airflow"] if days is None else days)
    # Airflow stamps its metadata with the wall clock, and the log files carry the pipeline's times (the same in
    # production; the soak moves both the clock and the files it wrote)
    wall_now = now if now is not None else dt.datetime.now(dt.UTC)
    before = _now(now) - kept
    command = airflow_db_clean_command(airflow or "airflow", wall_now - kept)
    if airflow is None:
        from pipeline import airflow_cli

        try:
            airflow_cli.run(command[1:])
        except airflow_cli.AirflowCommandFailed as exc:
            raise RetentionError(str(exc)) from exc
    else:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
            raise RetentionError(f"`{' '.join(command[1:])}` failed (exit {done.returncode}):\n{tail}")
    home = Path(env.get("AIRFLOW_HOME") or Path.home() / "airflow")
    database = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or ""
    if database.startswith("sqlite:///"):
        path = Path(database.removeprefix("sqlite:///").split("?")[0])
        if path.exists():
            con = sqlite3.connect(path, timeout=30)
            try:
                con.execute("VACUUM")
            finally:
                con.close()
    logs = Path(env.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or home / "logs")
    removed = prune_files(logs, "**/*", before, "airflow")
    removed += prune_files(home, "dags-test-*.log", before, "airflow")
    for r in removed:
        log.info("retention airflow: removed %s files (%s bytes) from %s", r.removed, f"{r.bytes:,}", r.where)
    return removed


# --- by hand -----------------------------------------------------------------------------------------------------


def policy_table() -> str:
    """The policy as README's Retention table (tests/test_retention.py checks that README holds exactly this)."""
    lines = ["| kind | where | kept for | why |", "|---|---|---|---|"]
    lines += [f"| {r.name} | {r.where} | {r.kept} | {r.why} |" for r in POLICY]
    return "\n".join(lines)


def folders_from_env() -> Settings:
    """The warehouse and exports folders of the environment (WAREHOUSE, EXPORTS, as load_settings reads them),
    without the feed's connection or the pseudonym key: retention needs neither."""
    exports = Path(os.environ.get("EXPORTS") or "exports")
    return Settings(
        warehouse_dir=warehouse_dir(),
        exports_dir=exports if exports.is_absolute() else PROJECT_ROOT / exports,
        data_dir=PROJECT_ROOT / "data",
        feed_url="",
        feed_token=None,
        pseudonym_key=b"",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.retention", description="Apply the retention policy (README, Retention)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    apply = sub.add_parser("apply", help="the warehouse and exports folders (WAREHOUSE, EXPORTS)")
    apply.add_argument(
        "--as-of", default=None, help="the as-of date recorded with the run metrics (default today)"
    )
    apply.add_argument("--compact", action=argparse.BooleanOptionalAction, default=None)
    airflow = sub.add_parser("airflow", help="Airflow's metadata database and logs (its environment)")
    airflow.add_argument(
        "--airflow", default=shutil.which("airflow") or str(Path(sys.executable).parent / "airflow")
    )
    sub.add_parser("policy", help="print the policy as a table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "policy":
        print(policy_table())
        return 0
    from pipeline.local_run import RunLocked, exclusive_run

    try:
        if args.command == "airflow":
            removed = clean_airflow(args.airflow)
            print(json.dumps([asdict(r) for r in removed], indent=1))
            return 0
        as_of = (
            dt.date.fromisoformat(args.as_of)
            if args.as_of
            else clock.now().astimezone(zoneinfo.ZoneInfo(TIMEZONE)).date()
        )
        settings = folders_from_env()
        # the same locks as `make run`, so that retention by hand never runs beside a run
        with exclusive_run(settings.warehouse_dir / ".run.lock", settings.exports_dir / ".run.lock"):
            report = apply_retention(settings, as_of, compact=args.compact)
        print(json.dumps(report.to_dict(), indent=1, ensure_ascii=False))
        return 0
    except (RetentionError, RunLocked, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
