"""The retention policy (pipeline/retention.py, README "Retention"): for each kind, what is older than its window
goes and what is newer stays; the reminder ledger and the verdict history are never touched; and the marts
rebuilt from scratch after retention (and the next incremental run) are the marts before it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import sqlite3
import stat
import sys
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from ingest.warehouse import FEED_KEYS, connect
from pipeline.check_scope import decide_scope
from pipeline.retention import (
    POLICY,
    RULES,
    STEP,
    RetentionError,
    apply_retention,
    clean_airflow,
    compact_duckdb,
    policy_table,
)
from pipeline.settings import PROJECT_ROOT
from publish.exports import LEDGER_DDL
from tests.helpers import make_settings

NOW = dt.datetime(2027, 3, 1, 4, 0, tzinfo=dt.UTC)  # the clock retention runs by in these tests
D = dt.date(2027, 3, 1)  # the as-of date of the run that applies it


def ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def settings_in(tmp_path: Path):
    settings = make_settings(tmp_path, tmp_path / "data", "http://127.0.0.1:9")
    connect(settings.warehouse_db).close()  # the raw layer, empty
    return settings


def query(settings, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def execute(settings, *statements: str) -> None:
    con = connect(settings.warehouse_db)
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


def feed_load(load_id: str, resource: str, landed: dt.datetime, max_updated_at: str | None = "NULL") -> str:
    return (
        f"INSERT INTO raw.feed_loads VALUES ('{load_id}', '{resource}', false, NULL, "
        f"TIMESTAMPTZ '{landed.isoformat()}', TIMESTAMPTZ '{landed.isoformat()}', 1, 1, {max_updated_at})"
    )


def plan(load_id: str, plan_no: str, updated_at: str, passed: int = 1) -> str:
    return (
        "INSERT INTO raw.plans (load_id, page_no, plan_no, institution_id, passed, updated_at) "
        f"VALUES ('{load_id}', 0, '{plan_no}', '35000001', {passed}, TIMESTAMPTZ '{updated_at}')"
    )


def metric(
    load_id: str, recorded: dt.datetime, step: str = "extract_feed", subject: str = "plans", name="landed"
):
    return (
        f"INSERT INTO raw.run_metrics VALUES ('{load_id}', DATE '{recorded.date()}', '{step}', '{subject}', "
        f"'{name}', 1, NULL, TIMESTAMPTZ '{recorded.isoformat()}')"
    )


def current_versions(settings, table: str) -> set[tuple]:
    """What staging keeps of a raw table: each key's latest version by updated_at, then load_id (all of them when
    one load repeats it: the choice among those is staging's, and the same before and after)."""
    keys = ", ".join(FEED_KEYS[table])
    return set(
        query(
            settings,
            f"""SELECT {keys}, updated_at, load_id, count(*) FROM (
                    SELECT * FROM raw.{table} QUALIFY rank() OVER (
                        PARTITION BY {keys} ORDER BY updated_at DESC NULLS LAST, load_id DESC) = 1)
                GROUP BY ALL""",
        )
    )


def newest_update_by_day(settings, days) -> dict:
    """R-FEED's newest updated_at on or before each day (macros/feed_freshness.sql, over every version landed)."""
    return {
        day: query(
            settings,
            """SELECT max(updated_at) FROM (SELECT updated_at FROM raw.plans UNION ALL SELECT updated_at FROM
               raw.institutions) WHERE updated_at < timezone('Asia/Shanghai', CAST(? AS DATE) + 1)""",
            [day],
        )[0][0]
        for day in days
    }


# Loads of `plans`, landed 100, 40, 10 and 1 day(s) before NOW (the window is 35 days)
L1, L2, L3, L4 = "2026-11-21:a", "2027-01-20:b", "2027-02-19:c", "2027-02-28:d"
LANDED = {L1: ago(100), L2: ago(40), L3: ago(10), L4: ago(1)}
T1, T2, T3, T4 = (
    "2026-11-20 10:00:00+08",
    "2027-01-19 10:00:00+08",
    "2027-02-18 10:00:00+08",
    "2027-02-27 10:00:00+08",
)


def versions_warehouse(tmp_path):
    settings = settings_in(tmp_path)
    execute(
        settings,
        *(feed_load(load, "plans", landed) for load, landed in LANDED.items()),
        # P1: changed 40 and 10 days ago: the first version was replaced 40 days ago, the second only 10
        plan(L1, "P1", T1),
        plan(L2, "P1", T2, 2),
        plan(L3, "P1", T3, 3),
        # P2: the same version pulled again 40 days ago (the overlap): the earlier copy goes
        plan(L1, "P2", T1),
        plan(L2, "P2", T1),
        # P3: never changed
        plan(L1, "P3", T1),
        # P4: repeated within one load (a duplicated page): both copies stay
        plan(L1, "P4", T1),
        plan(L2, "P4", T2),
        plan(L2, "P4", T2),
        # P5: a late arrival yesterday older than the version held since 40 days ago: it never counted
        plan(L2, "P5", T2),
        plan(L4, "P5", T1),
        # P6: replaced yesterday: the version before stays for 35 days
        plan(L1, "P6", T1),
        plan(L4, "P6", T4),
    )
    return settings


def test_a_superseded_version_goes_35_days_after_its_replacement_landed(tmp_path):
    settings = versions_warehouse(tmp_path)
    before = current_versions(settings, "plans")
    days = [D - dt.timedelta(days=n) for n in range(36)]
    freshness = newest_update_by_day(settings, days)

    report = apply_retention(settings, D, now=NOW)

    left = query(settings, "SELECT plan_no, load_id FROM raw.plans ORDER BY ALL")
    assert left == [
        ("P1", L2),
        ("P1", L3),
        ("P2", L2),
        ("P3", L1),
        ("P4", L2),
        ("P4", L2),
        ("P5", L2),
        ("P6", L1),
        ("P6", L4),
    ]
    # staging's choice and R-FEED's newest update for every day of the window are as before
    assert current_versions(settings, "plans") == before
    assert newest_update_by_day(settings, days) == freshness
    removed = {(r.kind, r.where): r.removed for r in report.removed if r.unit == "rows"}
    assert removed[("feed_versions", "raw.plans")] == 4


def test_nothing_goes_within_the_window_and_a_second_pass_removes_nothing(tmp_path):
    settings = versions_warehouse(tmp_path)
    everything = query(settings, "SELECT * FROM raw.plans ORDER BY ALL")
    apply_retention(
        settings, D, now=ago(101), days={"feed_versions": 35}
    )  # as if run before L1 landed + 1 day
    assert query(settings, "SELECT * FROM raw.plans ORDER BY ALL") == everything
    apply_retention(settings, D, now=NOW)
    once = query(settings, "SELECT * FROM raw.plans ORDER BY ALL")
    again = apply_retention(settings, D, now=NOW)
    assert query(settings, "SELECT * FROM raw.plans ORDER BY ALL") == once
    assert again.total("rows") == 0


def lookup(cert: str, checked: dt.datetime, found: bool = True, load_id: str = "x") -> str:
    return (
        f"INSERT INTO raw.certificate_lookups VALUES ('{load_id}', '{cert}', {str(found).lower()}, "
        f"TIMESTAMPTZ '{checked.isoformat()}')"
    )


def test_an_older_lookup_answer_goes_35_days_after_the_next_one(tmp_path):
    settings = settings_in(tmp_path)
    execute(
        settings,
        # C1 asked every month: the answer of 100 days ago was replaced 50 days ago; the one of 50 days ago only 20
        lookup("C1", ago(100), False),
        lookup("C1", ago(50)),
        lookup("C1", ago(20)),
        lookup("C1", ago(5)),
        lookup("C2", ago(200)),  # asked once: the latest answer stays, however old
        lookup("C3", ago(90), False),  # two answers of one request: both stay
        lookup("C3", ago(90), False),
        lookup("C3", ago(120)),
    )
    latest = """SELECT certificate_no, arg_max(found, checked_at), max(checked_at)
                FROM raw.certificate_lookups GROUP BY ALL ORDER BY ALL"""
    before = query(settings, latest)
    apply_retention(settings, D, now=NOW)
    assert query(settings, latest) == before  # what R-CERT and ingest/lookups.py read
    assert query(settings, "SELECT certificate_no, checked_at FROM raw.certificate_lookups ORDER BY ALL") == [
        ("C1", ago(50)),
        ("C1", ago(20)),
        ("C1", ago(5)),
        ("C2", ago(200)),
        ("C3", ago(90)),
        ("C3", ago(90)),
    ]


def test_the_load_log_keeps_what_a_row_or_the_next_pull_needs(tmp_path):
    settings = settings_in(tmp_path)
    execute(
        settings,
        feed_load("old-empty", "plans", ago(100)),  # nothing left of it: goes
        feed_load(
            "watermark", "plans", ago(100), "TIMESTAMPTZ '2027-01-01 00:00:00+08'"
        ),  # the next updated_since
        feed_load("quarantined", "plans", ago(60)),  # its rejected items are still kept
        "INSERT INTO raw.quarantine VALUES ('quarantined', 'feed', 'plans', 1, 'level', 'level: missing', '{}')",
        feed_load("has-rows", "plans", ago(100)),
        plan("has-rows", "P1", T1),
        feed_load("recent", "plans", ago(10)),  # within the window
        feed_load("only-one", "institutions", ago(100)),  # the resource's newest load
    )
    from ingest.land import watermark

    con = connect(settings.warehouse_db)
    marks = {r: watermark(con, r, dt.timedelta(days=1)) for r in ("plans", "institutions")}
    con.close()
    apply_retention(settings, D, now=NOW)
    assert [r[0] for r in query(settings, "SELECT load_id FROM raw.feed_loads ORDER BY 1")] == [
        "has-rows",
        "only-one",
        "quarantined",
        "recent",
        "watermark",
    ]
    con = connect(settings.warehouse_db)
    assert {r: watermark(con, r, dt.timedelta(days=1)) for r in marks} == marks
    con.close()


def test_quarantined_records_go_90_days_after_their_load(tmp_path):
    settings = settings_in(tmp_path)
    item = '\'{"plan_no": "P9"}\''
    execute(
        settings,
        feed_load("feed-old", "plans", ago(95)),
        feed_load("feed-new", "plans", ago(80)),
        metric("centre-old", ago(91), "load_centre_records", "renewal_applications", "loaded"),
        metric("centre-new", ago(3), "load_centre_records", "renewal_applications", "loaded"),
        *(
            f"INSERT INTO raw.quarantine VALUES ('{load}', '{source}', 'f', 2, 'x', 'x: missing', {item})"
            for load, source in [
                ("feed-old", "feed"),
                ("feed-new", "feed"),
                ("centre-old", "centre_records"),
                ("centre-new", "centre_records"),
                ("undated", "centre_records"),  # no load time known: kept
            ]
        ),
    )
    apply_retention(settings, D, now=NOW)
    assert [r[0] for r in query(settings, "SELECT load_id FROM raw.quarantine ORDER BY 1")] == [
        "centre-new",
        "feed-new",
        "undated",
    ]


def test_run_metrics_go_after_400_days_but_not_what_decides_the_next_check(tmp_path):
    settings = settings_in(tmp_path)
    execute(
        settings,
        metric("old", ago(500)),
        metric("new", ago(10)),
        metric("full-older", ago(480), "quality_gate", "checks", "full_check"),
        metric("full-last", ago(450), "quality_gate", "checks", "full_check"),
        metric("passed-last", ago(420), "quality_gate", "checks", "changed_rows_check"),
        metric("passed-older", ago(430), "quality_gate", "checks", "changed_rows_check"),
    )
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    scope = decide_scope(con, D)
    con.close()
    apply_retention(settings, D, now=NOW)
    kept = query(settings, f"SELECT load_id FROM raw.run_metrics WHERE step <> '{STEP}' ORDER BY 1")
    assert [r[0] for r in kept] == ["full-last", "new", "passed-last"]
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    assert decide_scope(con, D) == scope
    con.close()


def touch(path: Path, when: dt.datetime, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(text, encoding="utf-8")
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def gate_run(settings, as_of: str, run: str, passed: bool, written: dt.datetime) -> Path:
    results = settings.warehouse_dir / "gate" / as_of / run / "validation_results.json"
    return touch(results, written, json.dumps({"as_of": as_of, "success": passed}))


def test_gate_results_keep_90_days_and_the_last_passed_and_failed_run(tmp_path):
    settings = settings_in(tmp_path)
    gate_run(settings, "2026-10-01", "old-passed", True, ago(150))
    gate_run(settings, "2026-10-20", "last-failed", False, ago(130))
    gate_run(settings, "2026-10-20", "older-failed", False, ago(131))
    gate_run(settings, "2026-11-01", "passed-before-last", True, ago(120))
    gate_run(settings, "2027-02-20", "last-passed", True, ago(9))
    gate_run(settings, D.isoformat(), "today-rerun", True, ago(200))  # the as-of date's own runs stay
    docs = touch(settings.warehouse_dir / "gate" / "data_docs" / "index.html", ago(300))

    report = apply_retention(settings, D, now=NOW)

    gate_dir = settings.warehouse_dir / "gate"
    runs = sorted(str(p.parent.relative_to(gate_dir)) for p in gate_dir.glob("*/*/validation_results.json"))
    assert runs == [
        "2026-10-20/last-failed",
        "2027-02-20/last-passed",
        f"{D.isoformat()}/today-rerun",
    ]
    assert not (gate_dir / "2026-10-01").exists()  # emptied as-of folders go too
    assert docs.exists()  # Data Docs is GX's to rebuild
    gate = next(r for r in report.removed if r.kind == "gate_results")
    assert (gate.removed, gate.bytes) == (
        3,
        sum(
            len(json.dumps({"as_of": a, "success": s}))
            for a, s in [("2026-10-01", True), ("2026-10-20", False), ("2026-11-01", True)]
        ),
    )


def export_folder(settings, as_of: str, written: dt.datetime) -> Path:
    folder = settings.exports_dir / as_of
    touch(folder / f"350100_福州市_续期提醒_{as_of}.xlsx", written, "workbook")
    touch(
        folder / "350100_福州市_申请材料" / "35000001_机构" / "附件1_备案续期申请表_35000001.xlsx",
        written,
        "form",
    )
    touch(folder / "manifest.json", written, json.dumps({"as_of": as_of}))
    return folder


def test_export_folders_keep_180_days_then_only_their_manifest(tmp_path):
    settings = settings_in(tmp_path)
    old = export_folder(settings, "2026-08-01", ago(212))
    recent = export_folder(settings, "2026-12-01", ago(90))
    today = export_folder(settings, D.isoformat(), ago(400))  # the as-of date's own export stays whole
    other = touch(settings.exports_dir / "notes" / "readme.txt", ago(400))  # not an export: untouched
    lock = touch(settings.exports_dir / ".run.lock", ago(400))
    stale = touch(settings.exports_dir / f".2026-08-02.{'a' * 32}.tmp" / "x.xlsx", ago(3))
    os.utime(stale.parent, (ago(3).timestamp(),) * 2)
    fresh = touch(settings.exports_dir / f".2027-02-28.{'b' * 32}.tmp" / "x.xlsx", ago(0.5))
    os.utime(fresh.parent, (ago(0.5).timestamp(),) * 2)

    apply_retention(settings, D, now=NOW)

    assert [p.name for p in old.iterdir()] == ["manifest.json"]
    assert json.loads((old / "manifest.json").read_text()) == {"as_of": "2026-08-01"}
    assert len(list(recent.rglob("*.xlsx"))) == 2
    assert len(list(today.rglob("*.xlsx"))) == 2
    assert other.exists()
    assert lock.exists()
    assert not stale.parent.exists()
    assert fresh.exists()


def ledger(settings) -> Path:
    con = duckdb.connect(str(settings.reminder_ledger_db))
    con.execute(LEDGER_DDL)
    con.execute(
        "INSERT INTO reminder_ledger VALUES ('35000001', DATE '2024-12-31', 'window_open', DATE '2024-10-02', "
        "DATE '2024-10-02')"
    )
    con.close()
    os.utime(settings.reminder_ledger_db, (ago(900).timestamp(),) * 2)
    return settings.reminder_ledger_db


def test_the_ledger_and_the_verdict_history_stay_whatever_the_windows(tmp_path):
    settings = settings_in(tmp_path)
    path = ledger(settings)
    digest, mtime = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    execute(
        settings,
        "CREATE SCHEMA marts",
        """CREATE TABLE marts.renewal_history AS
           SELECT DATE '2023-01-03' + range::INTEGER AS as_of, 'A' AS institution_id FROM range(1500)""",
    )
    history = query(settings, "SELECT * FROM marts.renewal_history ORDER BY ALL")
    everything = {rule.kind: 0 for rule in POLICY if rule.days is not None}

    report = apply_retention(settings, D, now=NOW, days=everything, compact=True)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert path.stat().st_mtime_ns == mtime
    assert query(settings, "SELECT * FROM marts.renewal_history ORDER BY ALL") == history
    assert report.kept["renewal_history_rows"] == 1500
    assert report.kept["reminder_ledger_bytes"] == path.stat().st_size


def test_airflow_logs_in_the_warehouse_go_after_30_days(tmp_path):
    settings = settings_in(tmp_path)
    home = settings.warehouse_dir / ".airflow"
    old = touch(home / "dags-test-renewal_daily-2027-01-10.log", ago(50))
    new = touch(home / "dags-test-renewal_daily-2027-02-27.log", ago(2))
    old_task = touch(home / "logs" / "dag_id=renewal_daily" / "run_id=a" / "attempt=1.log", ago(31))
    new_task = touch(home / "logs" / "dag_id=renewal_daily" / "run_id=b" / "attempt=1.log", ago(29))
    os.utime(old_task.parent, (ago(31).timestamp(),) * 2)
    fresh = home / "logs" / "dag_id=renewal_daily" / "run_id=c"  # made for a log about to be written
    fresh.mkdir()
    os.utime(fresh, (ago(0.01).timestamp(),) * 2)
    metadata = touch(home / "airflow.db", ago(100))
    apply_retention(settings, D, now=NOW)
    assert fresh.is_dir()
    assert not old.exists()
    assert not old_task.parent.exists()
    assert new.exists()
    assert new_task.exists()
    assert metadata.exists()


def test_the_form_cache_is_measured_not_pruned(tmp_path):
    settings = settings_in(tmp_path)
    entry = touch(settings.form_cache_dir / "ab" / f"ab{'0' * 62}.docx", ago(1000), "entry")
    report = apply_retention(settings, D, now=NOW)
    assert entry.exists()
    assert report.kept["form_cache_entries"] == 1
    assert report.kept["form_cache_bytes"] == len("entry")


def test_what_was_removed_is_recorded_once_per_run(tmp_path):
    settings = versions_warehouse(tmp_path)
    apply_retention(settings, D, now=NOW, load_id="run-1")
    report = apply_retention(settings, D, now=NOW, load_id="run-1")  # a rerun replaces the run's rows
    rows = query(
        settings,
        f"SELECT subject, metric, value, note FROM raw.run_metrics WHERE step = '{STEP}' AND load_id = 'run-1'",
    )
    keys = [(s, m, n) for s, m, _, n in rows]
    assert len(keys) == len(set(keys))  # ops.run_metrics' key: (load_id, step, subject, metric, note)
    values = {(s, m): v for s, m, v, _ in rows}
    assert values[("raw.plans", "rows_removed")] == 0  # the rerun found nothing more to remove
    assert values[("raw.plans", "rows_left")] == 9
    assert values[("warehouse.duckdb", "bytes_after")] == report.warehouse_bytes_after > 0


def test_unknown_or_negative_windows_are_refused(tmp_path):
    settings = settings_in(tmp_path)
    with pytest.raises(ValueError, match="no kind 'ledger' is removed by age"):
        apply_retention(settings, D, now=NOW, days={"ledger": 10})
    with pytest.raises(ValueError, match="exports must be kept 0 days or more"):
        apply_retention(settings, D, now=NOW, days={"exports": -1})


def test_compaction_gives_the_space_back_and_keeps_every_table_and_view(tmp_path):
    settings = settings_in(tmp_path)
    landed = ago(40)
    execute(
        settings,
        feed_load("first", "certificates", ago(42)),
        feed_load("full-refresh", "certificates", ago(41)),
        feed_load("full-refresh-again", "certificates", landed),
        # each full refresh lands every certificate again: the copies before the last are superseded
        *(
            f"""INSERT INTO raw.certificates (load_id, page_no, certificate_no, plan_no, institution_id, issued_on,
                                              holder_id_hash, updated_at)
                SELECT '{load}', 0, 'Y0000350000012641' || lpad(range::VARCHAR, 6, '0'), 'P1', '35000001',
                       DATE '2026-01-01', md5(range::VARCHAR), TIMESTAMPTZ '2026-01-01 00:00:00+08'
                FROM range(400000)"""
            for load in ("first", "full-refresh", "full-refresh-again")
        ),
        "CREATE SCHEMA staging",
        "CREATE VIEW staging.v AS SELECT count(*) AS n FROM raw.certificates",
        "COMMENT ON TABLE raw.certificates IS '证书 / certificates'",
    )
    before = settings.warehouse_db.stat().st_size

    report = apply_retention(settings, D, now=NOW)

    assert report.compacted, report.compaction
    assert report.warehouse_bytes_after < before / 2
    assert query(settings, "SELECT n FROM staging.v") == [(400000,)]
    assert query(settings, "SELECT DISTINCT load_id FROM raw.certificates") == [("full-refresh-again",)]
    assert query(settings, "SELECT comment FROM duckdb_tables() WHERE table_name = 'certificates'") == [
        ("证书 / certificates",)
    ]
    assert not list(settings.warehouse_dir.glob(".*.compact*"))
    again = apply_retention(settings, D, now=NOW)
    assert not again.compacted
    assert again.compaction.startswith("not copied")


def test_compaction_refuses_a_file_another_process_writes(tmp_path, monkeypatch):
    import pipeline.retention

    settings = settings_in(tmp_path)
    wal = Path(f"{settings.warehouse_db}.wal")
    original = pipeline.retention.open_duckdb

    def leaves_a_wal(path):  # a checkpoint that cannot finish, as when another writer holds the file
        con = original(path)
        wal.write_bytes(b"pending")
        return con

    monkeypatch.setattr(pipeline.retention, "open_duckdb", leaves_a_wal)
    try:
        with pytest.raises(RetentionError, match=r"write-ahead log warehouse\.duckdb\.wal"):
            compact_duckdb(settings.warehouse_db)
    finally:
        wal.unlink()


def fake_airflow(tmp_path: Path, exit_code: int = 0) -> Path:
    """A stand-in for the airflow command that records its arguments (a fast test may not start Airflow)."""
    program = tmp_path / "fake-airflow"
    program.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        f"print('Checking table log'); sys.exit({exit_code})\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


def test_clean_airflow_runs_db_clean_and_prunes_its_logs(tmp_path):
    home = tmp_path / ".airflow"
    sqlite3.connect(home.mkdir() or home / "airflow.db").close()
    old = touch(home / "logs" / "dag_processor" / "2027-01-01" / "x.log", ago(45))
    new = touch(home / "logs" / "dag_processor" / "2027-02-28" / "x.log", ago(1))
    old_test = touch(home / "dags-test-renewal_reminders-2027-01-10.log", ago(45))
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "PATH": os.environ["PATH"],
    }
    removed = clean_airflow(str(fake_airflow(tmp_path)), env, now=NOW)
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv == [
        "db",
        "clean",
        "--clean-before-timestamp",
        "2027-01-30T04:00:00+00:00",
        "--yes",
        "--skip-archive",
    ]
    assert not old.exists()
    assert not old_test.exists()
    assert new.exists()
    assert sum(r.removed for r in removed) == 2


def test_clean_airflow_says_what_failed(tmp_path):
    with pytest.raises(
        RetentionError, match=r"db clean --clean-before-timestamp .* failed \(exit 3\):\nChecking"
    ):
        clean_airflow(str(fake_airflow(tmp_path, exit_code=3)), {"PATH": os.environ["PATH"]}, now=NOW)


def test_the_readme_states_the_policy_as_the_code_enforces_it():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert policy_table() in readme, (
        "README's Retention table differs from `python -m pipeline.retention policy`"
    )
    for rule in POLICY:
        if rule.days is not None:
            assert re.search(rf"\b{rule.days}\b", rule.kept), (
                f"{rule.kind}: 'kept for' does not say {rule.days}"
            )
    # every kind the policy must state, the two the centre keeps for ever among them
    kinds = {
        "feed_versions",
        "lookup_answers",
        "quarantine",
        "gate_results",
        "exports",
        "form_cache",
        "airflow",
    }
    assert set(RULES) >= kinds | {"history", "ledger"}
    assert RULES["history"].days is None
    assert RULES["ledger"].days is None


def test_the_policy_prints_as_a_table(capsys):
    from pipeline.retention import main

    assert main(["policy"]) == 0
    assert capsys.readouterr().out.strip() == policy_table()


# --- the real pipeline ---------------------------------------------------------------------------------------

FIRST = dt.date(2026, 11, 25)
SECOND, THIRD = FIRST + dt.timedelta(days=1), FIRST + dt.timedelta(days=2)


def change_records(data: Path, day: dt.date) -> None:
    """A day's changes in the feed: a few institutions, plans, occupations and certificates updated on `day`."""
    changes = {"institutions": 3, "plans": 5, "registered_occupations": 2, "certificates": 20}
    for table, n in changes.items():
        path = data / f"{table}.jsonl"
        rows = [json.loads(line) for line in path.open(encoding="utf-8")]
        for i in range(n):
            row = rows[(day.toordinal() * 7 + i * 13) % len(rows)]
            if "level" not in row and table == "plans":
                continue  # the test's malformed plan stays as it is
            row["updated_at"] = f"{day.isoformat()}T10:00:00+08:00"
            if table == "institutions":
                row["contact_phone"] = f"1380000{day.day:02d}{i:02d}"
            if table == "plans" and row.get("candidates") is not None:
                row["candidates"] += 1
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def warehouse_marts(settings) -> dict[str, list]:
    from publish.marts import MARTS

    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        return {m: con.execute(f"SELECT * FROM marts.{m} ORDER BY {o}").fetchall() for m, o in MARTS.items()}
    finally:
        con.close()


def raw_counts(settings) -> dict[str, tuple[int, int]]:
    """(rows, distinct keys) of each raw feed table."""
    return {
        table: query(settings, f"SELECT count(*), count(DISTINCT ({', '.join(keys)})) FROM raw.{table}")[0]
        for table, keys in FEED_KEYS.items()
    }


def run_day(settings, data: Path, day: dt.date, load_id: str, full_refresh: bool = False) -> None:
    from pipeline import steps
    from tests.helpers import RunningFeed

    feed = RunningFeed(data)
    try:
        settings = replace(settings, feed_url=feed.url)
        steps.extract_feed(day, load_id, full_refresh=full_refresh, settings=settings)
        steps.load_calendar(settings=settings)
        steps.load_centre(day, load_id, settings=settings)
        steps.verify_certificates(day, load_id, settings=settings)
    finally:
        feed.stop()


def build(settings, day: dt.date, *extra: str) -> None:
    from tests.helpers import DBT_SKIP_TESTS, dbt_build

    result = dbt_build(settings, day, *DBT_SKIP_TESTS, *extra)
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.slow
def test_marts_rebuilt_after_retention_are_the_marts_before_it(tmp_path):
    """Two days (the second a full refresh, so every record has a superseded copy), the day's export, retention
    with every superseded version past its window and the warehouse copied afresh; then a rebuild from scratch,
    and a third day landed, retained and built incrementally, against its own rebuild."""
    from mock_feed.generate import generate_dataset
    from pipeline import steps

    data = tmp_path / "data"
    generate_dataset(data, FIRST, institutions=30, seed=5)
    with (data / "plans.jsonl").open("a", encoding="utf-8") as f:  # quarantined on every pull
        f.write(
            json.dumps({"plan_no": "PX-NOLEVEL", "institution_id": "35000001", "updated_at": "2026-01-01"})
            + "\n"
        )
    settings = make_settings(tmp_path, data, "http://127.0.0.1:9")
    run_day(settings, data, FIRST, "d1")
    build(settings, FIRST)
    change_records(data, SECOND)
    run_day(settings, data, SECOND, "d2", full_refresh=True)
    build(settings, SECOND)
    steps.publish(SECOND, settings=settings)
    steps.export(SECOND, settings=settings, load_id="d2")
    before = warehouse_marts(settings)
    counts = raw_counts(settings)
    quarantined = query(settings, "SELECT count(*) FROM raw.quarantine")[0][0]
    ledger_digest = hashlib.sha256(settings.reminder_ledger_db.read_bytes()).hexdigest()
    exported = sorted(p.name for p in (settings.exports_dir / SECOND.isoformat()).rglob("*"))
    assert all(rows > keys for rows, keys in counts.values()), counts  # every record has a superseded copy
    assert quarantined >= 2

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=36)  # every version replaced so far is past 35 days
    report = apply_retention(settings, SECOND, now=later, compact=True)

    assert {t: rows for t, (rows, _) in raw_counts(settings).items()} == {
        t: k for t, (_, k) in counts.items()
    }
    assert report.total("rows") >= sum(rows - keys for rows, keys in counts.values())
    assert report.compacted
    assert query(settings, "SELECT count(*) FROM raw.quarantine")[0][0] == quarantined  # 90 days
    assert hashlib.sha256(settings.reminder_ledger_db.read_bytes()).hexdigest() == ledger_digest
    assert sorted(p.name for p in (settings.exports_dir / SECOND.isoformat()).rglob("*")) == exported
    assert warehouse_marts(settings) == before  # the copied file holds the same marts

    build(
        settings, SECOND, "--full-refresh"
    )  # from scratch: every model from raw (renewal_history keeps its days)
    assert warehouse_marts(settings) == before
    assert {d for (d, *_) in before["renewal_history"]} == {FIRST, SECOND}

    # the next day: retention between landing and dbt removes what the new load replaced, before the
    # incremental models have read the new load; they must still end where a rebuild ends
    change_records(data, THIRD)
    run_day(settings, data, THIRD, "d3")
    removed = apply_retention(settings, THIRD, now=later + dt.timedelta(days=1))
    assert removed.total("rows") > 0
    build(settings, THIRD)
    incremental = warehouse_marts(settings)
    build(settings, THIRD, "--full-refresh")
    assert warehouse_marts(settings) == incremental
    assert [r for r in incremental["renewal_history"] if r[0] != THIRD] == before["renewal_history"]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["airflow's program", "make run's DAG runner"])
def test_airflow_db_clean_removes_metadata_older_than_30_days(tmp_path, where):
    import subprocess

    from pipeline.dags_test import DagRunner
    from pipeline.local_run import airflow_env

    home = tmp_path / ".airflow"
    env = airflow_env(home, {})
    airflow = str(Path(sys.executable).parent / "airflow")
    migrated = subprocess.run(
        [airflow, "db", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
    now = dt.datetime.now(dt.UTC)
    con = sqlite3.connect(home / "airflow.db")
    con.executemany(
        "INSERT INTO log (dttm, event, dag_id) VALUES (?, ?, 'renewal_daily')",
        [
            ((now - dt.timedelta(days=45)).strftime("%Y-%m-%d %H:%M:%S.%f"), "old"),
            ((now - dt.timedelta(days=5)).strftime("%Y-%m-%d %H:%M:%S.%f"), "recent"),
        ],
    )
    con.commit()
    con.close()
    touch(home / "dags-test-renewal_daily-2026-01-01.log", now - dt.timedelta(days=45))

    def events() -> list[str]:
        con = sqlite3.connect(home / "airflow.db")
        try:
            return [
                r[0] for r in con.execute("SELECT event FROM log WHERE dag_id = 'renewal_daily' ORDER BY 1")
            ]
        finally:
            con.close()

    if where == "airflow's program":
        clean_airflow(airflow, env, now=now)
    else:  # in the process that ran the DAGs, once local_run has judged every run a success
        runner = DagRunner(env, tmp_path / "runner.log")
        try:
            runner.send({"runs": []})
            assert runner.reply() == {"status": 0}
            # runs alone clean nothing: local_run asks for it once it has judged them
            assert events() == ["old", "recent"]
            runner.send({"clean": True})
            assert runner.reply() == {"status": 0}, (tmp_path / "runner.log").read_text()[-2000:]
        finally:
            assert runner.close() == 0

    con = sqlite3.connect(home / "airflow.db")
    archives = [
        r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE name LIKE '_airflow_deleted%'")
    ]
    con.close()
    assert events() == ["recent"]
    assert archives == []
    assert not (home / "dags-test-renewal_daily-2026-01-01.log").exists()


def test_by_hand_it_applies_the_policy_to_the_folders_of_the_environment_and_waits_for_no_run(
    tmp_path, monkeypatch, capsys
):
    from pipeline.local_run import exclusive_run
    from pipeline.retention import main

    settings = versions_warehouse(tmp_path)
    monkeypatch.setenv("WAREHOUSE", str(settings.warehouse_dir))
    monkeypatch.setenv("EXPORTS", str(settings.exports_dir))
    monkeypatch.delenv("PSEUDONYM_KEY", raising=False)  # retention needs no secret
    with exclusive_run(settings.warehouse_dir / ".run.lock"):
        assert main(["apply", "--as-of", D.isoformat()]) == 1
    assert "another run is in progress" in capsys.readouterr().err
    assert main(["apply", "--as-of", D.isoformat(), "--no-compact"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["as_of"] == D.isoformat()
    assert printed["compaction"] == "not copied (asked)"


def test_the_dag_step_reads_the_folders_from_the_environment(tmp_path, monkeypatch):
    from pipeline.retention import retention_step

    settings = versions_warehouse(tmp_path)
    monkeypatch.setenv("WAREHOUSE", str(settings.warehouse_dir))
    monkeypatch.setenv("EXPORTS", str(settings.exports_dir))
    summary = retention_step(D, f"{D}:scheduled__x")
    assert set(summary) == {
        "rows_removed",
        "files_removed",
        "bytes_removed",
        "warehouse_bytes_before",
        "warehouse_bytes_after",
        "compaction",
    }
    recorded = query(settings, f"SELECT DISTINCT load_id FROM raw.run_metrics WHERE step = '{STEP}'")
    assert recorded == [(f"{D}:scheduled__x",)]
