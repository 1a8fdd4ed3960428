"""`make run` and `make backfill` as an operator uses them (real Airflow, feed, dbt and SMTP): the notice's first
period, a backfill that equals single runs and reminds nobody, a failed gate that alerts and publishes nothing."""

import datetime as dt
import email
import email.policy
import json
import os
import shutil
import subprocess

import duckdb
import pytest

from mock_feed.generate import generate_dataset
from pipeline import steps
from pipeline.commands import local_run_command
from pipeline.settings import PROJECT_ROOT
from tests.helpers import RunningFeed, local_smtp, make_settings, run_pipeline_steps

pytestmark = pytest.mark.slow

FIRST = dt.date(2022, 12, 20)  # the cohort's window is open (2022-12-15 … 2022-12-31)
BACKFILL = [dt.date(2023, 1, 3) + dt.timedelta(days=n) for n in range(3)]  # after the cohort deadline
LAST = dt.date(2023, 1, 6)
BAD = dt.date(2023, 1, 7)
DATA_TEAM = "data-team@example.org"


def published(warehouse, sql):
    con = duckdb.connect(str(warehouse / "published.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def marts(warehouse) -> dict[str, list]:
    tables = [
        r[0]
        for r in published(
            warehouse,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY 1",
        )
    ]
    return {t: sorted(published(warehouse, f'SELECT * FROM marts."{t}"'), key=repr) for t in tables}


def digests(folder):
    from tests.helpers import file_digests

    return file_digests(folder)


@pytest.fixture(scope="module")
def cohort_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort") / "data"
    generate_dataset(out, FIRST, institutions=24, seed=11)
    return out


@pytest.fixture(scope="module")
def operated(tmp_path_factory, cohort_data):
    """make run FIRST, make backfill over a week, make run LAST, then a run whose gate fails (same warehouse)."""
    tmp = tmp_path_factory.mktemp("operated")
    warehouse, exports = tmp / "warehouse", tmp / "exports"
    with local_smtp() as smtp:
        env = dict(
            os.environ,
            AIRFLOW_CONN_SMTP_DEFAULT=smtp.airflow_connection,
            ALERT_RECIPIENTS=DATA_TEAM,
            REMINDER_RECIPIENTS=json.dumps(
                {c: f"c{c}@example.org" for c in ["350000", *[f"35{n:02d}00" for n in range(1, 10)], "PT"]}
            ),
            PSEUDONYM_KEY="test-key",
        )

        def local_run(*args, data=cohort_data):
            return subprocess.run(
                local_run_command(
                    "--data", str(data), "--warehouse", str(warehouse), "--exports", str(exports), *args
                ),
                check=False,
                cwd=PROJECT_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
            )

        seen = {}
        first = local_run("--as-of", FIRST.isoformat())
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        seen["first"] = (
            first.stdout,
            published(
                warehouse,
                """
            SELECT institution_id, as_of, expires_on, window_opens_on, apply_by, lifecycle_stage
            FROM marts.renewal_eligibility WHERE cohort = 'first_enterprise_batch'""",
            ),
            len(smtp.received),
        )
        ledger = tmp / "ledger-after-first.duckdb"
        shutil.copy(warehouse / "reminder_ledger.duckdb", ledger)

        backfill = local_run("--from", BACKFILL[0].isoformat(), "--to", BACKFILL[-1].isoformat())
        assert backfill.returncode == 0, backfill.stdout[-3000:] + backfill.stderr[-3000:]
        seen["backfill"] = (backfill.stdout, len(smtp.received))
        shutil.copy(warehouse / "reminder_ledger.duckdb", tmp / "ledger-after-backfill.duckdb")

        before_last = len(smtp.received)
        last = local_run("--as-of", LAST.isoformat())
        assert last.returncode == 0, last.stdout[-3000:] + last.stderr[-3000:]
        seen["last"] = (last.stdout, marts(warehouse), digests(exports / LAST.isoformat()))
        seen["last_mails"] = smtp.received[before_last:]

        # the next day, the feed serves a plan of an institution it does not know: the gate must stop it
        bad_data = tmp / "bad-data"
        shutil.copytree(cohort_data, bad_data)
        plan = json.loads((bad_data / "plans.jsonl").read_text(encoding="utf-8").splitlines()[0])
        plan.update(
            plan_no="PX-ORPHAN", institution_id="99999999", updated_at=f"{BAD.isoformat()}T08:00:00+08:00"
        )
        with open(bad_data / "plans.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(plan, ensure_ascii=False) + "\n")
        before = len(smtp.received)
        bad = local_run("--as-of", BAD.isoformat(), data=bad_data)
        seen["bad"] = (bad, smtp.received[before:], marts(warehouse))
    return warehouse, exports, tmp, seen


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory, cohort_data):
    """The same dates as single runs of the plain steps, one after another, without Airflow; exports only on
    the days `make run` exported (a backfill exports nothing)."""
    tmp = tmp_path_factory.mktemp("singles")
    feed = RunningFeed(cohort_data)
    try:
        settings = make_settings(tmp, cohort_data, feed.url)
        for day in [FIRST, *BACKFILL, LAST]:
            run_pipeline_steps(settings, day, data_tests=False)
            if day in (FIRST, LAST):
                steps.publish(day, settings=settings)
                steps.export(day, settings=settings)
    finally:
        feed.stop()
    return settings


def test_make_run_publishes_marts_for_a_date_in_2022(operated):
    *_, seen = operated
    stdout, cohort, _ = seen["first"]
    assert "renewal_daily for 2022-12-20:" in stdout
    assert "quality_gate" in stdout
    assert "succeeded" in stdout
    assert cohort
    assert {row[1] for row in cohort} == {FIRST}
    for _, _, expires_on, window_opens_on, apply_by, stage in cohort:
        assert window_opens_on == dt.date(2022, 12, 15)
        assert apply_by == min(dt.date(2022, 12, 31), expires_on)
        assert stage in ("window_open", "under_review", "renewed", "rejected", "terminated")


def test_make_run_after_the_cohort_deadline_marks_overdue(operated):
    warehouse, _, _, seen = operated
    _, _, last_exports = seen["last"]
    overdue = published(
        warehouse,
        """SELECT e.institution_id, r.first_due_on FROM marts.renewal_eligibility e
                                      JOIN marts.reminders r ON r.institution_id = e.institution_id
                                       AND r.reminder_type = 'overdue'
                                      WHERE e.cohort = 'first_enterprise_batch' AND e.lifecycle_stage = 'overdue'""",
    )
    assert overdue
    assert all(first_due == dt.date(2023, 1, 1) for _, first_due in overdue)
    assert published(warehouse, "SELECT DISTINCT as_of FROM marts.renewal_eligibility") == [(LAST,)]
    assert any(name.endswith(".xlsx") for name in last_exports)


def test_backfill_rebuilds_history_and_reminds_nobody(operated):
    warehouse, exports, tmp, seen = operated
    _, _, mails_after_first = seen["first"]
    stdout, mails_after_backfill = seen["backfill"]
    assert mails_after_backfill == mails_after_first, "a backfill sent e-mail"
    assert "renewal_reminders" not in stdout
    assert f"Backfilled {BACKFILL[0]} … {BACKFILL[-1]} ({len(BACKFILL)} days)" in stdout
    for day in BACKFILL:
        assert not (exports / day.isoformat()).exists(), f"a backfill exported reminders for {day}"
    ledgers = []
    for name in ("ledger-after-first.duckdb", "ledger-after-backfill.duckdb"):
        con = duckdb.connect(str(tmp / name), read_only=True)
        ledgers.append(sorted(con.execute("SELECT * FROM reminder_ledger").fetchall(), key=repr))
        con.close()
    assert ledgers[0], "no reminder was ever marked"
    assert ledgers[0] == ledgers[1], "a backfill marked reminders as sent"
    days = [r[0] for r in published(warehouse, "SELECT DISTINCT as_of FROM marts.renewal_history ORDER BY 1")]
    assert days == [FIRST, *BACKFILL, LAST]


def test_backfill_days_equal_single_runs(operated, single_runs):
    """Each backfilled day's renewal_history partition, the last day's marts and its exports equal those of
    single runs for the same dates (the history partition holds each day's stage, verdict and reasons)."""
    *_, seen = operated
    _, last_marts, last_exports = seen["last"]
    singles = marts(single_runs.warehouse_dir)
    assert set(last_marts) == set(singles)
    for mart, rows in singles.items():
        assert last_marts[mart] == rows, f"marts.{mart} differs from single runs"
    assert last_exports == digests(single_runs.exports_dir / LAST.isoformat())


def test_a_feed_that_stopped_changing_alerts_the_data_team_once_and_the_run_still_publishes(operated):
    """R-FEED: the dataset was made for FIRST, so on LAST the feed has not changed for more than 10 days (stopped):
    the run succeeds and publishes (test above), the data team gets one alert, and the province's workbook opens
    on the notice. The backfilled days were as stale, and alerted nobody (test_backfill_rebuilds_history_…)."""
    warehouse, exports, _, seen = operated
    stdout, _, _ = seen["last"]
    days = (LAST - FIRST).days
    assert days > 10
    alerts = [
        email.message_from_bytes(m.content, policy=email.policy.default)
        for m in seen["last_mails"]
        if DATA_TEAM in m.rcpt_tos
    ]
    assert [a["subject"] for a in alerts] == [
        f"[renewal pipeline] STALE FEED for {LAST}: 技能人才评价工作网 unchanged for {days} days "
        f"(newest update {FIRST})"
    ]
    notice = (
        f"注意：工作网数据已 {days} 天未更新（最新更新 {FIRST}），可能已停止推送，请与工作网核实；"
        "以下结果可能不是最新"
    )
    assert notice in alerts[0].get_body(("html", "plain")).get_content()
    assert "feed_freshness" in stdout  # the task, as make run prints it
    assert "Feed: stopped" in stdout  # the summary
    assert published(
        warehouse, "SELECT DISTINCT freshness_status, days_unchanged FROM marts.feed_freshness"
    ) == [("stopped", days)]
    from openpyxl import load_workbook

    (book,) = (exports / LAST.isoformat()).glob("350000_*_续期提醒_*.xlsx")
    assert load_workbook(book).worksheets[0]["A1"].value == notice


def test_failed_gate_emails_the_failed_expectations_and_publishes_nothing(operated):
    *_, seen = operated
    bad, mails, marts_after = seen["bad"]
    _, last_marts, _ = seen["last"]
    assert bad.returncode == 1
    assert "the run FAILED" in bad.stderr
    assert "quality_gate=failed" in bad.stderr
    assert marts_after == last_marts, "a failed run changed the publication"
    # the DAG runs stop at the failed one: renewal_reminders never ran for the day, and nothing was exported
    warehouse, exports, *_ = operated
    assert "renewal_reminders for" not in bad.stdout
    assert not (warehouse / ".airflow" / f"dags-test-renewal_reminders-{BAD.isoformat()}.log").exists()
    assert not (exports / BAD.isoformat()).exists()
    assert f"dags-test-renewal_daily-{BAD.isoformat()}.log" in bad.stderr  # where the whole log is
    alerts = [
        email.message_from_bytes(m.content, policy=email.policy.default)
        for m in mails
        if DATA_TEAM in m.rcpt_tos
    ]
    assert len(alerts) == 1, [m.rcpt_tos for m in mails]  # the gate never retries, so one alert
    alert = alerts[0]
    assert "renewal_daily.quality_gate" in alert["subject"]
    assert BAD.isoformat() in alert["subject"]
    body = alert.get_body(("html", "plain")).get_content()
    assert "plan_institutions" in body
    assert "PX-ORPHAN" in body
    assert "1 unexpected" in body
    assert BAD.isoformat() in body
    assert "quality_gate" in body
