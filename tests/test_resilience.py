"""Ingest against a real, misbehaving mock feed: every fault alone, a run killed between two pages, all faults
together, and the second day's incremental run, each compared with a fault-free run."""

# Each single fault is judged on the staged feed (every key once, each in the same version as without faults) and
# the lookup answers: the marts are a function of those and of inputs no fault touches, so only the all-faults run
# (and the second day's) builds the marts. The staging is the feed staging models' SQL as dbt compiles it for a
# first build, run in DuckDB: dbt's own start-up (~6 s here) cost more than the landing it checked.

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from ingest.warehouse import connect
from mock_feed.server import FaultOptions
from pipeline.settings import PROJECT_ROOT
from publish.marts import MARTS
from tests.helpers import (
    AS_OF,
    DBT_SKIP_TESTS,
    TOKEN,
    RunningFeed,
    dbt_build,
    make_settings,
    run_dbt,
    run_pipeline_steps,
)

SINGLE_FAULTS = {
    "server_errors": FaultOptions(fail_rate=0.2, seed=1),
    "rate_limit": FaultOptions(rate_limit=25),
    "latency": FaultOptions(latency_ms=40),
    "malformed": FaultOptions(malformed_rate=0.2, seed=2),
    "duplicates": FaultOptions(duplicate_rate=0.3, seed=3),
}
ALL_FAULTS = FaultOptions(
    fail_rate=0.15, rate_limit=25, latency_ms=10, malformed_rate=0.15, duplicate_rate=0.3, seed=4
)
FEED_TABLES = ("institutions", "registered_occupations", "plans", "certificates")
# the staging models of the feed's records and of the lookup answers: what every fault must leave unchanged
FEED_STAGING = [f"stg_feed__{t}" for t in FEED_TABLES] + ["stg_feed__certificate_lookups"]
INJECTED = {"server_errors": "5xx", "rate_limit": "429", "malformed": "malformed", "duplicates": "duplicated"}
RETRIED = {
    "server_errors": "retries_server_error",
    "rate_limit": "retries_rate_limited",
    "malformed": "retries_malformed",
}


def marts(settings) -> dict[str, list]:
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        return {
            m: con.execute(f"SELECT * FROM marts.{m} ORDER BY {order}").fetchall()
            for m, order in MARTS.items()
        }
    finally:
        con.close()


def staged(settings, staging_sql: dict[str, str]) -> dict[str, list]:
    """The staged feed records (which load landed a version aside) and every certificate's lookup answer."""
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        rows = {
            t: con.execute(
                f"SELECT * EXCLUDE (load_id) FROM ({staging_sql[f'stg_feed__{t}']}\n) ORDER BY ALL"
            ).fetchall()
            for t in FEED_TABLES
        }
        rows["lookups"] = con.execute(
            f"SELECT certificate_no, found FROM ({staging_sql['stg_feed__certificate_lookups']}\n) ORDER BY ALL"
        ).fetchall()
        return rows
    finally:
        con.close()


def staged_keys(settings, staging_sql: dict[str, str]) -> dict[str, int]:
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT count(*) FROM ({staging_sql[f'stg_feed__{t}']}\n)").fetchone()[0]
            for t in FEED_TABLES
        }
    finally:
        con.close()


def source_counts(dataset) -> dict[str, int]:
    return {t: sum(1 for line in (dataset / f"{t}.jsonl").open() if line.strip()) for t in FEED_TABLES}


def run_summary(settings) -> dict[tuple[str, str], int]:
    """(subject, metric) -> value of the run's recorded metrics (raw.run_metrics, published as ops.run_metrics)."""
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        return {
            (s, m): v
            for s, m, v in con.execute("SELECT subject, metric, value FROM raw.run_metrics").fetchall()
        }
    finally:
        con.close()


def ingest_feed(settings) -> None:
    """The steps that talk to the feed: the pull and the certificate lookups."""
    from pipeline import steps

    load_id = f"{AS_OF}-test"
    steps.extract_feed(AS_OF, load_id, settings=settings)
    steps.verify_certificates(AS_OF, load_id, settings=settings)


@pytest.fixture(scope="module")
def staging_sql(tmp_path_factory) -> dict[str, str]:
    """The feed staging models' SQL as dbt compiles it for a first build (no staging table exists yet)."""
    warehouse = tmp_path_factory.mktemp("compiled")
    connect(warehouse / "warehouse.duckdb").close()  # the raw layer, empty
    result = run_dbt(warehouse, "compile", "--select", *FEED_STAGING)
    assert result.returncode == 0, result.stdout[-4000:]
    nodes = json.loads((warehouse / "dbt-target" / "manifest.json").read_text())["nodes"].values()
    compiled = {n["name"]: n.get("compiled_code") for n in nodes if n["resource_type"] == "model"}
    assert all(compiled[name] for name in FEED_STAGING), compiled
    return {name: compiled[name] for name in FEED_STAGING}


@pytest.fixture(scope="module")
def reference(built):
    return marts(built)


@pytest.fixture(scope="module")
def reference_staged(built, staging_sql):
    return staged(built, staging_sql)


def assert_feed_survived(fault: str, settings, counts: dict, dataset, staging_sql, reference_staged) -> None:
    """Nothing lost, nothing duplicated, every version as without faults; the fault was injected and retried."""
    assert staged_keys(settings, staging_sql) == source_counts(dataset)
    assert staged(settings, staging_sql) == reference_staged
    if fault in INJECTED:
        assert counts.get(INJECTED[fault], 0) > 0, f"the feed injected no {fault}: {counts}"
    summary = run_summary(settings)
    if fault in RETRIED:
        assert summary[("feed", RETRIED[fault])] > 0
    assert summary[("certificates", "elapsed_ms")] > 0
    assert summary[("lookups", "elapsed_ms")] > 0
    if fault == "duplicates":
        assert summary[("certificates", "repeated")] > 0


@pytest.mark.slow
@pytest.mark.parametrize("fault", SINGLE_FAULTS)
def test_each_fault_changes_nothing(fault, tmp_path, dataset, staging_sql, reference_staged):
    faulty = RunningFeed(dataset, SINGLE_FAULTS[fault])
    try:
        settings = make_settings(tmp_path, dataset, faulty.url)
        ingest_feed(settings)
        counts = dict(faulty.server.request_counts)
    finally:
        faulty.stop()
    assert_feed_survived(fault, settings, counts, dataset, staging_sql, reference_staged)


@pytest.mark.slow
def test_all_faults_together_change_no_mart(tmp_path, dataset, staging_sql, reference, reference_staged):
    faulty = RunningFeed(dataset, ALL_FAULTS)
    try:
        settings = make_settings(tmp_path, dataset, faulty.url)
        run_pipeline_steps(settings, data_tests=False)
        counts = dict(faulty.server.request_counts)
    finally:
        faulty.stop()
    assert_feed_survived("all_together", settings, counts, dataset, staging_sql, reference_staged)
    assert marts(settings) == reference


@pytest.mark.slow
def test_run_killed_between_pages_then_rerun(tmp_path, dataset, staging_sql, reference_staged):
    slow = RunningFeed(dataset, FaultOptions(latency_ms=150))
    settings = make_settings(tmp_path, dataset, slow.url)
    env = dict(
        os.environ,
        WAREHOUSE=str(settings.warehouse_dir),
        DATA=str(dataset),
        FEED_URL=slow.url,
        FEED_TOKEN=TOKEN,
        PSEUDONYM_KEY="test-key",
    )
    code = f"from pipeline import steps; import datetime; steps.extract_feed(datetime.date.fromisoformat('{AS_OF}'), 'killed')"
    try:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env)
        deadline = time.monotonic() + 120
        while slow.server.request_counts.get("certificates", 0) < 3:  # killed after 2+ certificate pages
            assert proc.poll() is None, "the extract finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        con = duckdb.connect(str(settings.warehouse_db), read_only=True)
        landed = dict(con.execute("SELECT resource, items FROM raw.feed_loads").fetchall())
        partial = con.execute("SELECT count(*) FROM raw.certificates").fetchone()[0]
        con.close()
        assert "certificates" not in landed
        assert partial == 0
        assert landed["institutions"] > 0
        ingest_feed(settings)
    finally:
        slow.stop()
    assert staged_keys(settings, staging_sql) == source_counts(dataset)
    assert staged(settings, staging_sql) == reference_staged


@pytest.mark.slow
def test_second_run_fetches_only_the_overlap_and_rechecks_by_policy(tmp_path, dataset, reference):
    from pipeline import steps

    counted = RunningFeed(dataset)
    try:
        settings = make_settings(tmp_path, dataset, counted.url)
        run_pipeline_steps(settings, data_tests=False)
        counted.server.request_counts.clear()
        steps.extract_feed(AS_OF, "second", settings=settings)
        steps.verify_certificates(AS_OF, "second", settings=settings)
        counts = dict(counted.server.request_counts)
    finally:
        counted.stop()
    expected = {}
    for resource, file in [
        ("institutions", "institutions"),
        ("registered-occupations", "registered_occupations"),
        ("plans", "plans"),
        ("certificates", "certificates"),
    ]:
        stamps = [
            dt.datetime.fromisoformat(json.loads(line)["updated_at"])
            for line in (dataset / f"{file}.jsonl").open()
        ]
        since = max(stamps) - dt.timedelta(days=1)
        overlap = sum(1 for t in stamps if t >= since)
        expected[resource] = max(1, math.ceil(overlap / 1000))
        assert overlap < len(stamps) / 2, f"{resource}: the overlap window is most of the feed"
    certificates = [json.loads(line) for line in (dataset / "certificates.jsonl").open()]
    not_found = sum(1 for c in certificates if not c.get("_queryable", True))
    assert not_found > 0
    expected["lookup"] = math.ceil(
        not_found / 500
    )  # only the not-found are asked again; found ones are fresh
    assert counts == expected
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    recorded = dict(
        con.execute("""SELECT subject, value FROM raw.run_metrics
                                   WHERE load_id = 'second' AND metric IN ('pages', 'requests')""").fetchall()
    )
    con.close()
    assert recorded == {"lookups" if r == "lookup" else r: n for r, n in expected.items()}
    assert dbt_build(settings, AS_OF, *DBT_SKIP_TESTS).returncode == 0
    assert marts(settings) == reference
