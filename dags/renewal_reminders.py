"""Airflow DAG `renewal_reminders`: the reminder exports for city centres, after each publication."""

from __future__ import annotations

from airflow.sdk import DAG, Asset, Param, get_current_context, task
from pendulum import datetime

from pipeline.settings import TIMEZONE

PUBLISHED_MARTS_URI = "renewal_published_marts"

DOC = """
### 备案续期提醒 (R-REMIND)

Runs whenever `renewal_daily` publishes the marts (Asset `renewal_published_marts`), for the as-of date of
that publication; run it by hand with a logical date, or the param `as_of`, to export a given date.

1. `export_reminders` selects the reminders of `marts.reminders` not yet sent before D (ledger
   `reminder_ledger.duckdb`), writes `exports/<D>/`: per centre an `.xlsx` that opens on `今日须办` (mart
   `work_items`, R-WORK: a standing to-do list, not "sent once"; the province's covers every centre, with a
   roll-up `各中心汇总` and its own tasks `省中心事项`), then `预警` (R-WARN), `汇总` and one sheet per reminder
   type, and a `.csv` of the reminders sent that day; per institution reminded, the pre-filled 附件1 申请表 and
   附件2 工作总结 draft if it can apply now, else a one-page 告知; and `manifest.json` (counts, sha256 of every
   file); then records the reminders as sent. A rerun for D gives identical files.
2. `email_reminders` mails each centre its files through the `smtp_default` connection, once per centre and
   date; skipped unless recipients are configured (Variable `reminder_recipients` or `REMINDER_RECIPIENTS`).
"""


def _as_of():
    """D: the param as_of, else the logical date in Asia/Shanghai, else (an Asset-triggered run, which has no
    logical date) the as-of date of the published marts."""
    import datetime as dt

    import duckdb

    from pipeline.settings import as_of_date, load_settings

    context = get_current_context()
    if (context["params"] or {}).get("as_of"):
        return dt.date.fromisoformat(context["params"]["as_of"])
    if context.get("logical_date"):
        return as_of_date(context["logical_date"])
    con = duckdb.connect(str(load_settings().published_db), read_only=True)
    try:
        return con.execute("SELECT max(as_of) FROM marts.renewal_eligibility").fetchone()[0]
    finally:
        con.close()


with DAG(
    dag_id="renewal_reminders",
    description="Per-centre reminder workbooks and pre-filled renewal forms, each reminder sent once",
    schedule=[Asset(PUBLISHED_MARTS_URI)],
    start_date=datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,
    doc_md=DOC,
    params={"as_of": Param(None, type=["null", "string"], format="date",
                           description="export for this date (YYYY-MM-DD) instead of the run's date")},
    default_args={"retries": 0},
    tags=["renewal", "reminders", "闽劳鉴〔2022〕26号"],
) as dag:

    @task
    def export_reminders() -> dict:
        from pipeline.steps import export

        return export(_as_of())

    @task
    def email_reminders() -> dict:
        from pipeline.steps import email

        return email(_as_of())

    export_reminders() >> email_reminders()
