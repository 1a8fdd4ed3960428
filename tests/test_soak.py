"""`make soak` (bench/soak.py): the daily DAGs day after day over one timeline, with a skipped day, a rerun and a run
killed half-way; each day equal to a rebuild from nothing, each reminder sent once. A short soak (4 days: one
skipped, then one killed and rerun, 30 institutions; about 5 minutes) runs here; the
long one (60 days and more at 200 institutions) and its figures are in bench/README.md."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import duckdb
import pytest

from pipeline.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))

from soak import day_plan, reminder_check

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
    short = day_plan(days[:4], seed=1)  # the soak of tests/test_soak.py
    assert [sum(getattr(d, f) for d in short.values()) for f in ("skipped", "rerun", "killed")] == [1, 1, 1]
    assert not any(d.skipped and (d.rerun or d.killed) for d in short.values())


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


@pytest.mark.slow
def test_a_short_soak_holds_every_invariant(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "bench/soak.py",
            "--from",
            "2026-09-01",
            "--to",
            "2026-09-04",
            "--institutions",
            "30",
            "--out",
            str(tmp_path),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    result = json.loads((tmp_path / "soak.json").read_text())
    days = result["days"]
    assert [d["day"] for d in days] == [f"2026-09-0{n}" for n in range(1, 5)]
    assert [sum(d[f] for d in days) for f in ("skipped", "rerun", "killed")] == [1, 1, 1]
    ran = [d for d in days if not d["skipped"]]
    assert all(d["marts_equal_rebuild"] and d["exports_equal_clean"] for d in ran)
    assert all(d["run_s"] > 0 and d["warehouse_bytes"] > 0 for d in ran)
    assert result["reminders_sent_once"]
    assert result["reminders_missed"] == 0
    assert result["reminders_sent"] > 0
    con = duckdb.connect(str(tmp_path / "soak-work" / "warehouse" / "reminder_ledger.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM reminder_ledger").fetchone()[0] == result["reminders_sent"]
    con.close()
    assert result["warehouse"] == str(tmp_path / "soak-work" / "warehouse")
    assert "run time" in done.stdout
    assert "warehouse size" in done.stdout


def test_a_folder_pruned_by_retention_is_not_read_as_a_missing_send(tmp_path):
    ledger = tmp_path / "ledger.duckdb"
    ledger_with(ledger, [("35000001", "2026-12-31", "expiring", "2026-12-01", "2026-12-02")])
    exports = tmp_path / "exports"
    (exports / "2026-12-02").mkdir(parents=True)
    (exports / "2026-12-02" / "manifest.json").write_text("{}")  # what retention leaves after 180 days
    due = {("35000001", "2026-12-31", "expiring")}
    assert reminder_check(ledger, exports, due)["reminders_sent_once"]
