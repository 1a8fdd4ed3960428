"""`make soak` (bench/soak.py): the daily DAGs day after day over one timeline, with a skipped day, a rerun and a run
killed half-way; each day equal to a rebuild from nothing, each reminder sent once. A short soak (10 days: one
skipped, one rerun, one killed; 30 institutions; about 5 minutes) runs here, then a run on its warehouse 37 days
after its last day, where retention has aged data to remove; the long one (60 days and more at 200 institutions)
and its figures are in bench/README.md."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import zoneinfo

import duckdb
import pytest

from ingest.warehouse import FEED_KEYS
from pipeline import steps
from pipeline.settings import PROJECT_ROOT
from tests.helpers import file_digests

sys.path.insert(0, str(PROJECT_ROOT / "bench"))

from soak import (
    Runner,
    cost_summary,
    day_plan,
    mart_differences,
    rebuild,
    reminder_check,
    retention_removed,
)

LEDGER = """CREATE TABLE reminder_ledger (institution_id VARCHAR, period_expires_on DATE, reminder_type VARCHAR,
    first_due_on DATE, sent_on DATE)"""
HEADER = "机构编号,备案到期时间,提醒类型\n"


def test_the_plan_has_a_skipped_a_rerun_and_a_killed_day():
    days = [dt.date(2026, 9, 1) + dt.timedelta(days=n) for n in range(60)]
    plan = day_plan(days, seed=1)
    assert sum(d.killed for d in plan.values()) == 1
    assert 4 <= sum(d.skipped for d in plan.values()) <= 6
    assert 4 <= sum(d.rerun for d in plan.values()) <= 6
    assert not any(plan[d].skipped and plan[d + dt.timedelta(days=1)].skipped for d in days[:-1])
    assert not any(p.skipped or p.rerun or p.killed for p in (plan[days[0]], plan[days[-1]]))
    for short in (day_plan(days[:4], seed=1), day_plan(days[:10], seed=2022)):  # the soak of this module
        assert [sum(getattr(d, f) for d in short.values()) for f in ("skipped", "rerun", "killed")] == [
            1,
            1,
            1,
        ]
        assert not any(d.skipped and (d.rerun or d.killed) for d in short.values())


def test_a_weekly_plan_runs_every_seventh_day_and_the_last():
    """`make soak EVERY=7`: a year in 53 runs; of those, some rerun and the middle one killed."""
    days = [dt.date(2025, 11, 1) + dt.timedelta(days=n) for n in range(365)]
    plan = day_plan(days, seed=2022, every=7)
    ran = [d for d in days if not plan[d].skipped]
    assert ran == days[::7]  # 365 days: the last is the 53rd seventh day
    ten = day_plan(days[:10], seed=2022, every=7)
    assert [d for d in days[:10] if not ten[d].skipped] == [days[0], days[7], days[9]]
    assert [d for d in ran if plan[d].killed] == [ran[len(ran[1:-1]) // 2 + 1]]
    assert 4 <= sum(plan[d].rerun for d in ran) <= 6
    assert not any(plan[d].rerun or plan[d].killed for d in (ran[0], ran[-1]))
    assert day_plan(days, seed=2022, every=1) == day_plan(days, seed=2022)


def test_the_cost_ratio_leaves_out_the_full_load_and_a_dag_runner_start():
    """The last incremental day against the first: not the first day (it loads everything), nor a day whose run
    started a DAG runner (after the kill: it pays Airflow's start-up and the imports again)."""

    def day(run_s: float, started: bool = False, skipped: bool = False) -> dict:
        return {
            "skipped": skipped,
            "run_s": None if skipped else run_s,
            "run_cpu_s": None if skipped else run_s,
            "runner_started": started,
            "warehouse_bytes": 1000,
            "feed_versions": 10,
        }

    days = [day(50, started=True), day(20), day(0, skipped=True), day(35, started=True), day(22)]
    assert cost_summary(days)["time_ratio_last_to_first"] == 1.1
    assert cost_summary(days)["cpu_ratio_last_to_first"] == 1.1


def exports_with(folder, day: str, lines: list[str]) -> None:
    (folder / day).mkdir(parents=True, exist_ok=True)
    text = HEADER + "".join(f"{line}\n" for line in lines)
    (folder / day / f"350100_福州_续期提醒_{day}.csv").write_text(text, encoding="utf-8-sig")


def ledger_with(path, rows: list[tuple]) -> None:
    con = duckdb.connect(str(path))
    con.execute(LEDGER)
    con.executemany("INSERT INTO reminder_ledger VALUES (?, ?, ?, ?, ?)", rows)
    con.close()


def test_the_reminder_check_sees_a_double_send_an_early_send_and_a_miss(tmp_path):
    ledger = tmp_path / "ledger.duckdb"
    ledger_with(ledger, [("35000001", "2026-12-31", "expiring", "2026-12-01", "2026-12-02")])
    exports = tmp_path / "exports"
    exports_with(exports, "2026-12-02", ["35000001,2026-12-31,到期提醒"])
    due = {("35000001", "2026-12-31", "expiring")}
    assert reminder_check(ledger, exports, due)["reminders_sent_once"]
    assert reminder_check(ledger, exports, due)["reminders_missed"] == 0

    exports_with(exports, "2026-12-03", ["35000001,2026-12-31,到期提醒"])  # the same reminder the next day
    assert not reminder_check(ledger, exports, due)["reminders_sent_once"]

    missed = due | {("35000002", "2026-12-31", "expiring")}
    (exports / "2026-12-03" / "350100_福州_续期提醒_2026-12-03.csv").unlink()
    assert reminder_check(ledger, exports, missed)["reminders_missed"] == 1

    early = tmp_path / "early.duckdb"
    ledger_with(early, [("35000001", "2026-12-31", "expiring", "2026-12-05", "2026-12-02")])
    assert not reminder_check(early, exports, due)["reminders_sent_once"]

    (
        exports / "2026-12-02" / "350100_福州_续期提醒_2026-12-02.csv"
    ).unlink()  # marked sent, and no file sent it
    assert not reminder_check(ledger, exports, due)["reminders_sent_once"]


SOAK_FROM, SOAK_TO = dt.date(2026, 9, 1), dt.date(2026, 9, 10)
LATER = SOAK_TO + dt.timedelta(days=37)  # the scheduler down from the soak's last day until 37 days later


@pytest.fixture(scope="module")
def short_soak(tmp_path_factory) -> dict:
    """`make soak` over SOAK_FROM … SOAK_TO at 30 institutions, its timeline generated on to LATER, and what its
    ledger held when it ended."""
    out = tmp_path_factory.mktemp("soak")
    done = subprocess.run(
        [
            *(sys.executable, "bench/soak.py", "--institutions", "30", "--out", str(out)),
            *("--from", SOAK_FROM.isoformat(), "--to", SOAK_TO.isoformat()),
            *("--timeline-to", LATER.isoformat(), "--checks-beside"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    con = duckdb.connect(str(out / "soak-work" / "warehouse" / "reminder_ledger.duckdb"), read_only=True)
    ledger_rows = con.execute("SELECT count(*) FROM reminder_ledger").fetchone()[0]
    con.close()
    return {"out": out, "stdout": done.stdout, "ledger_rows": ledger_rows}


@pytest.mark.slow
def test_a_short_soak_holds_every_invariant(short_soak):
    out = short_soak["out"]
    result = json.loads((out / "soak.json").read_text())
    days = result["days"]
    assert [d["day"] for d in days] == [
        (SOAK_FROM + dt.timedelta(days=n)).isoformat() for n in range((SOAK_TO - SOAK_FROM).days + 1)
    ]
    assert [sum(d[f] for d in days) for f in ("skipped", "rerun", "killed")] == [1, 1, 1]
    ran = [d for d in days if not d["skipped"]]
    assert all(d["marts_equal_rebuild"] and d["exports_equal_clean"] for d in ran)
    assert all(d["run_s"] > 0 and d["warehouse_bytes"] > 0 for d in ran)
    # one resident DAG runner: started for the first day, and again only after the kill
    killed = next(d["day"] for d in ran if d["killed"])
    assert [d["day"] for d in ran if d["runner_started"]] == [SOAK_FROM.isoformat(), killed]
    assert all(d["runner_rss_mb"] > 0 for d in ran)
    assert result["reminders_sent_once"]
    assert result["reminders_missed"] == 0
    assert result["reminders_sent"] > 0
    assert short_soak["ledger_rows"] == result["reminders_sent"]
    assert result["warehouse"] == str(out / "soak-work" / "warehouse")
    assert "run time" in short_soak["stdout"]
    assert "warehouse size" in short_soak["stdout"]


def test_a_folder_pruned_by_retention_is_not_read_as_a_missing_send(tmp_path):
    ledger = tmp_path / "ledger.duckdb"
    ledger_with(ledger, [("35000001", "2026-12-31", "expiring", "2026-12-01", "2026-12-02")])
    exports = tmp_path / "exports"
    (exports / "2026-12-02").mkdir(parents=True)
    (exports / "2026-12-02" / "manifest.json").write_text("{}")  # what retention leaves after 180 days
    due = {("35000001", "2026-12-31", "expiring")}
    assert reminder_check(ledger, exports, due)["reminders_sent_once"]


def superseded_through(con, day: dt.date) -> int:
    """Feed rows with a later version (staging's order) landed by the runs of `day` or before."""
    after = (day + dt.timedelta(days=1)).isoformat()
    total = 0
    for table, keys in FEED_KEYS.items():
        same_key = " AND ".join(f"n.{k} = t.{k}" for k in keys)
        total += con.execute(
            f"""SELECT count(*) FROM raw.{table} AS t WHERE EXISTS (
                    SELECT 1 FROM raw.{table} AS n WHERE {same_key} AND n.load_id < ?
                      AND (n.updated_at > t.updated_at OR (n.updated_at = t.updated_at AND n.load_id > t.load_id)))""",
            [after],
        ).fetchone()[0]
    return total


@pytest.mark.slow
def test_forty_days_on_the_soaks_warehouse_retention_prunes_and_the_day_equals_a_rebuild(short_soak):
    """The scheduler down after the short soak until LATER, each run on its day's clock (bench/soak.py, DayClock).
    On LATER the versions that the soak's days replaced were replaced 37 days ago or more, and retention removes
    them (35 days); the first day's Airflow logs go (30 days); found certificates are looked up again (30 days).
    What LATER publishes and exports is still what a rebuild of LATER from nothing publishes and exports."""
    work = short_soak["out"] / "soak-work"
    key = (work / "pseudonym_key").read_text()
    runner = Runner(work, work / "timeline", key)
    warehouse_db = runner.warehouse / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse_db), read_only=True)
    superseded = superseded_through(con, SOAK_TO)
    found_in_soak = con.execute(
        "SELECT count(DISTINCT certificate_no) FROM raw.certificate_lookups WHERE found"
    ).fetchone()[0]
    con.close()
    assert superseded > 0
    assert found_in_soak > 0
    first_logs = sorted((runner.warehouse / ".airflow").glob(f"dags-test-*-{SOAK_FROM}.log"))
    assert first_logs
    ledger_before = work / "ledger-before-later.duckdb"
    shutil.copy(runner.warehouse / "reminder_ledger.duckdb", ledger_before)

    try:
        runner.run(LATER, "run")
    finally:
        runner.close()

    rows, files = retention_removed(warehouse_db, LATER)
    assert rows >= superseded
    assert files >= len(first_logs)
    con = duckdb.connect(str(warehouse_db), read_only=True)
    assert superseded_through(con, SOAK_TO) == 0
    asked_again = con.execute(
        "SELECT count(DISTINCT certificate_no) FROM raw.certificate_lookups WHERE found AND checked_at >= ?",
        [dt.datetime.combine(LATER, dt.time(6), zoneinfo.ZoneInfo("Asia/Shanghai"))],  # LATER's run
    ).fetchone()[0]
    con.close()
    assert asked_again >= found_in_soak
    assert not any(log.exists() for log in first_logs)

    fresh = rebuild(work / "timeline", LATER, work / "rebuild", ledger_before, key)
    steps.export(LATER, settings=fresh)
    assert mart_differences(runner.warehouse / "published.duckdb", fresh.published_db, LATER) == []
    ours, clean = (
        file_digests(runner.exports / LATER.isoformat()),
        file_digests(fresh.exports_dir / LATER.isoformat()),
    )
    assert ours == clean
