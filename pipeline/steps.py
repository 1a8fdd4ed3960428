"""The daily run's steps as plain functions: each is what one Airflow task calls, and each runs without Airflow."""

# Every step that writes opens the warehouse itself and closes it before returning, and the DAG runs them one
# at a time, so the DuckDB file never has two writers.

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import duckdb

from ingest.calendar import load_calendar as load_prc_calendar
from ingest.centre_records import load_centre_records
from ingest.crash_points import crash_point
from ingest.feed_client import FeedClient
from ingest.land import land_resource
from ingest.lookups import verify_lookups
from ingest.warehouse import FEED_RESOURCES, connect, dict_rows, open_duckdb, record_run_metrics
from pipeline.check_scope import CheckScope, record_passed_check, warehouse_scope
from pipeline.dbt_handle import release_dbt_duckdb
from pipeline.settings import (
    MARTS_POSTGRES_CONN_ID,
    Settings,
    load_settings,
    marts_postgres_dsn,
    province_code,
    run_load_id,
)
from publish.exports import export_reminders
from publish.form_cache import FormCache
from publish.marts import publish_marts, publish_parquet

log = logging.getLogger(__name__)


def _record(
    con: duckdb.DuckDBPyConnection,
    load_id: str,
    as_of: dt.date,
    step: str,
    metrics: list[tuple[str, str, int, str | None]],
) -> None:
    """Store a step's numbers in raw.run_metrics (record_run_metrics) and log them."""
    record_run_metrics(con, load_id, as_of, step, metrics)
    for subject, metric, value, note in metrics:
        log.info(
            "run summary %s: %s %s = %s%s", step, subject, metric, f"{value:,}", f" ({note})" if note else ""
        )


def _retry_metrics(client: FeedClient) -> list[tuple[str, str, int, str | None]]:
    return [("feed", f"retries_{cause}", n, None) for cause, n in sorted(client.retries.items())]


def extract_feed(
    as_of: dt.date, load_id: str, full_refresh: bool = False, settings: Settings | None = None
) -> dict:
    """Pull every feed resource into raw tables (incremental by watermark unless full_refresh)."""
    s = settings or load_settings()
    client = FeedClient(s.feed_url, s.feed_token)
    con = connect(s.warehouse_db)
    try:
        summary, metrics = {}, []
        for resource in FEED_RESOURCES:
            started = time.perf_counter()
            r = land_resource(con, client, resource, load_id, s.pseudonym_key, full_refresh=full_refresh)
            elapsed_ms = round((time.perf_counter() - started) * 1000)
            summary[resource] = {
                "pages": r.pages,
                "fetched": r.items,
                "landed": r.items - r.quarantined,
                "quarantined": r.quarantined,
                "repeated": r.repeated,
                "updated_since": r.updated_since,
            }
            since = f"updated_since {r.updated_since}" if r.updated_since else "full refresh"
            metrics += [
                (resource, "pages", r.pages, since),
                (resource, "fetched", r.items, None),
                (resource, "landed", r.items - r.quarantined, None),
                (resource, "quarantined", r.quarantined, None),
                (resource, "repeated", r.repeated, None),
                (resource, "elapsed_ms", elapsed_ms, "fetch and land"),
            ]
        summary["retries"] = dict(client.retries)
        _record(con, load_id, as_of, "extract_feed", metrics + _retry_metrics(client))
        return summary
    finally:
        con.close()


def load_calendar(settings: Settings | None = None) -> dict:
    """The official PRC working-day calendar into raw.prc_calendar (R-SLA's working days); replaced each run."""
    s = settings or load_settings()
    con = connect(s.warehouse_db)
    try:
        return {"days": load_prc_calendar(con)}
    finally:
        con.close()


def load_local_sources(as_of: dt.date, load_id: str, settings: Settings | None = None) -> dict:
    """What the run reads besides the feed: the PRC calendar, then the centre's spreadsheets (one task: a task of
    its own cost the calendar about a second of Airflow start-up and scheduling)."""
    return {"calendar_days": load_calendar(settings)["days"]} | load_centre(as_of, load_id, settings)


def load_centre(as_of: dt.date, load_id: str, settings: Settings | None = None) -> dict:
    s = settings or load_settings()
    con = connect(s.warehouse_db)
    try:
        result = load_centre_records(con, s.centre_records_dir, load_id)
        # each file's form (encoding or workbook, sheet, header row) goes into the summary: when a centre's
        # numbers change, the first question is what it sent
        summary = {
            "loaded": result.loaded,
            "quarantined": result.quarantined,
            "files": [f.note for f in result.files],
        }
        _record(
            con,
            load_id,
            as_of,
            "load_centre_records",
            [(kind, "loaded", n, None) for kind, n in result.loaded.items()]
            + [(kind, "quarantined", n, None) for kind, n in result.quarantined.items()]
            + [(f.path.stem, "file_rows", f.rows, f.note) for f in result.files],
        )
        return summary
    finally:
        con.close()


def verify_certificates(as_of: dt.date, load_id: str, settings: Settings | None = None) -> dict:
    s = settings or load_settings()
    client = FeedClient(s.feed_url, s.feed_token)
    con = connect(s.warehouse_db)
    try:
        started = time.perf_counter()
        result = verify_lookups(con, client, load_id)
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        summary = {
            "checked": result.checked,
            "found": result.found,
            "requests": result.requests,
            "retries": dict(client.retries),
        }
        _record(
            con,
            load_id,
            as_of,
            "verify_certificates",
            [
                ("lookups", "checked", result.checked, None),
                ("lookups", "found", result.found, None),
                ("lookups", "requests", result.requests, None),
                ("lookups", "elapsed_ms", elapsed_ms, None),
                *_retry_metrics(client),
            ],
        )
        return summary
    finally:
        con.close()


def check_scope(as_of: dt.date, settings: Settings | None = None) -> CheckScope:
    """D's check scope (pipeline/check_scope.py): the rows changed since the last passed check, or every row."""
    s = settings or load_settings()
    release_dbt_duckdb()
    return warehouse_scope(s.warehouse_db, as_of)


def quality_gate(as_of: dt.date, run_id: str = "manual", settings: Settings | None = None) -> dict:
    """Raise expectations.gate.GateFailed (failing the task, so nothing is published) on any failure. Every run's
    results are kept in gate/<D>/<run>/, and the GX Data Docs site gate/data_docs/index.html lists them all.
    The certificate checks cover the rows changed since the last passed check, every row once a week; a pass
    is recorded in raw.run_metrics, which is what the next run's scope is decided from (dbt's tests included)."""
    from expectations.gate import run_gate  # GX takes seconds to import; only this step needs it

    s = settings or load_settings()
    scope = check_scope(as_of, s)
    log.info("quality gate for %s: %s", as_of, scope.reason)
    gate_dir = s.warehouse_dir / "gate"
    run_dir = gate_dir / as_of.isoformat() / "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    result = run_gate(
        s.warehouse_db,
        as_of.isoformat(),
        run_dir,
        published_db=s.published_db,
        docs_dir=gate_dir / "data_docs",
        changed_since=scope.changed_since,
    )
    con = connect(s.warehouse_db)
    try:
        record_passed_check(con, run_load_id(as_of, run_id), as_of, scope, sum(result.rows_checked.values()))
    finally:
        con.close()
    return {
        "evaluated": result.evaluated,
        "rows_checked": result.rows_checked,
        "scope": scope.metric,
        "changed_since": scope.env_value() or None,
    }


# `dbt source freshness` statuses and the mart's for the same days unchanged (R-FEED)
DBT_FRESHNESS_STATUS = {"pass": "fresh", "warn": "stale", "error": "stopped"}


def feed_freshness(
    as_of: dt.date, dbt_verdict: dict[str, Any] | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """The feed's freshness on D (R-FEED): the province's row of the candidate mart feed_freshness, which dbt built
    for D. With `dbt_verdict` (status and days of `dbt source freshness` on source feed.feed_loads, run for the same
    D), the two must agree: they apply the same thresholds to the same days, so a difference is a fault of the
    project, never of the data, and raises."""
    s = settings or load_settings()
    release_dbt_duckdb()
    con = open_duckdb(s.warehouse_db, read_only=True)
    try:
        found = dict_rows(
            con, "SELECT * FROM marts.feed_freshness WHERE supervising_centre = ?", [province_code()]
        )
    finally:
        con.close()
    if not found:
        raise RuntimeError(
            f"{s.warehouse_db}: marts.feed_freshness has no row for {province_code()} (the province)"
        )
    row = found[0]
    if row["as_of"] != as_of:
        raise RuntimeError(
            f"{s.warehouse_db}: marts.feed_freshness is as of {row['as_of']}, not {as_of}: run dbt for {as_of} first"
        )
    if dbt_verdict is not None:
        expected = DBT_FRESHNESS_STATUS.get(dbt_verdict["status"])
        days = row["days_unchanged"]
        if expected != row["freshness_status"] or (days is not None and dbt_verdict["days"] != days):
            raise RuntimeError(
                f"R-FEED for {as_of}: dbt source freshness says {dbt_verdict['status']} after "
                f"{dbt_verdict['days']:g} days, marts.feed_freshness says {row['freshness_status']} after {days}: "
                "macros/feed_freshness.sql and models/marts/feed_freshness.sql no longer agree"
            )
    level = logging.INFO if row["freshness_status"] == "fresh" else logging.ERROR
    log.log(
        level,
        "feed freshness on %s: %s, newest update %s, %s days unchanged (stale after %s, stopped after %s)",
        as_of,
        row["freshness_status"],
        row["newest_updated_at"],
        row["days_unchanged"],
        row["warn_after_days"],
        row["error_after_days"],
    )
    return row


def publish(as_of: dt.date, settings: Settings | None = None) -> dict:
    """Write-audit-publish, last step: the gated candidate becomes published.duckdb and its Parquet files."""
    s = settings or load_settings()
    release_dbt_duckdb()
    counts = publish_marts(s.warehouse_db, s.published_db)
    crash_point("publish:marts_replaced")  # published.duckdb is new, its Parquet files still the old ones
    publish_parquet(s.published_db, s.parquet_dir)
    return counts


def publish_to_postgres(as_of: dt.date, settings: Settings | None = None, dsn: str | None = None) -> dict:
    """Copy the published snapshot to PostgreSQL for BI tools; skipped, and says so, when none is configured."""
    from publish.postgres import publish_postgres

    s = settings or load_settings()
    dsn = dsn or marts_postgres_dsn()
    if not dsn:
        log.info(
            "PostgreSQL publication skipped: set MARTS_POSTGRES_DSN or the Airflow connection %s",
            MARTS_POSTGRES_CONN_ID,
        )
        return {"skipped": True}
    return publish_postgres(s.published_db, dsn, s.warehouse_dir)


def export(as_of: dt.date, settings: Settings | None = None, load_id: str | None = None) -> dict:
    """The reminders due on D and not sent before: per-centre workbooks, pre-filled forms, manifest, ledger. The
    forms come from the form cache where their inputs did not change; how many of each is in raw.run_metrics
    (step export_reminders, published as ops.run_metrics with the next publication)."""
    s = settings or load_settings()
    release_dbt_duckdb()
    cache = FormCache(s.form_cache_dir)
    started = time.perf_counter()
    manifest = export_reminders(s.published_db, s.exports_dir, as_of, s.reminder_ledger_db, cache)
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    con = connect(s.warehouse_db)
    try:
        _record(
            con,
            load_id or run_load_id(as_of, "manual"),
            as_of,
            "export_reminders",
            [*cache.metrics(), ("exports", "elapsed_ms", elapsed_ms, "select, forms, files, ledger")],
        )
    finally:
        con.close()
    return {
        k: manifest[k]
        for k in (
            "reminders",
            "institutions",
            "application_packs",
            "cannot_apply_notices",
            "by_centre",
            "by_type",
            "work_items",
            "warnings",
            "feed_freshness",
        )
    } | {"forms_built": cache.built, "forms_from_cache": cache.from_cache}


def email(as_of: dt.date, settings: Settings | None = None) -> dict:
    from publish.email import send_reminder_emails

    s = settings or load_settings()
    crash_point("email:before_send")  # the ledger holds the day's reminders, no e-mail has gone
    return send_reminder_emails(s.exports_dir, as_of, s.reminder_ledger_db)
