"""Ingest against a real, misbehaving mock feed: every fault alone and all together, a run killed between two
pages, and the second day's incremental run (issue 4). Each run is compared with a fault-free run's marts."""

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

from mock_feed.server import FaultOptions
from publish.marts import MARTS
from tests.conftest import (
    AS_OF,
    DBT_SKIP_TESTS,
    PROJECT_ROOT,
    TOKEN,
    RunningFeed,
    dbt_build,
    make_settings,
    run_pipeline_steps,
)

FAULTS = {
    "server_errors": FaultOptions(fail_rate=0.2, seed=1),
    "rate_limit": FaultOptions(rate_limit=25),
    "latency": FaultOptions(latency_ms=40),
    "malformed": FaultOptions(malformed_rate=0.2, seed=2),
    "duplicates": FaultOptions(duplicate_rate=0.3, seed=3),
    "all_together": FaultOptions(
        fail_rate=0.15, rate_limit=25, latency_ms=10, malformed_rate=0.15, duplicate_rate=0.3, seed=4
    ),
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


def staged_keys(settings) -> dict[str, int]:
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT count(*) FROM staging.stg_feed__{t}").fetchone()[0]
            for t in ("institutions", "registered_occupations", "plans", "certificates")
        }
    finally:
        con.close()


def source_counts(dataset) -> dict[str, int]:
    return {
        t: sum(1 for line in (dataset / f"{t}.jsonl").open() if line.strip())
        for t in ("institutions", "registered_occupations", "plans", "certificates")
    }


@pytest.fixture(scope="module")
def reference(built):
    return marts(built)


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_changes_nothing(fault, tmp_path, dataset, reference):
    faulty = RunningFeed(dataset, FAULTS[fault])
    try:
        settings = make_settings(tmp_path, dataset, faulty.url)
        run_pipeline_steps(settings, data_tests=False)
        counts = dict(faulty.server.request_counts)
    finally:
        faulty.stop()
    assert staged_keys(settings) == source_counts(dataset)  # nothing lost, nothing duplicated
    assert marts(settings) == reference
    injected = {
        "server_errors": "5xx",
        "rate_limit": "429",
        "malformed": "malformed",
        "duplicates": "duplicated",
    }
    if fault in injected:
        assert counts.get(injected[fault], 0) > 0, f"the feed injected no {fault}: {counts}"
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    summary = {
        (s, m): v for s, m, v in con.execute("SELECT subject, metric, value FROM ops.run_metrics").fetchall()
    }
    con.close()
    retried = {
        "server_errors": "retries_server_error",
        "rate_limit": "retries_rate_limited",
        "malformed": "retries_malformed",
    }
    if fault in retried:
        assert summary[("feed", retried[fault])] > 0
    assert summary[("certificates", "elapsed_ms")] > 0
    assert summary[("lookups", "elapsed_ms")] > 0
    if fault == "duplicates":
        assert summary[("certificates", "repeated")] > 0


def test_run_killed_between_pages_then_rerun(tmp_path, dataset, reference):
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
        run_pipeline_steps(settings, data_tests=False)
    finally:
        slow.stop()
    assert staged_keys(settings) == source_counts(dataset)
    assert marts(settings) == reference


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
