"""Airflow DAG `renewal_reminders`: the reminder exports for city centres, after each publication."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Param, get_current_context, task

from pipeline.dag_common import (
    DEFAULT_ARGS,
    PUBLISHED_MARTS,
    START_DATE,
    TRANSIENT,
    is_backfill,
    run_as_of,
)
from pipeline.settings import WRITER_POOL, run_load_id

if TYPE_CHECKING:
    from airflow.sdk import Context

DOC = """
### 备案续期提醒 (R-REMIND)

Runs whenever `renewal_daily` publishes the marts (Asset `renewal_published_marts`), for the as-of date that
the publication's event carries (`extra.as_of`); run it by hand with a logical date, or the param `as_of`, to
export a given date. A publication made by a backfill (`extra.backfill`) exports nothing, marks nothing in
the ledger and sends no e-mail: a backfill rebuilds history, it does not remind anyone.

1. `export_reminders` selects the reminders of `marts.reminders` not yet sent before D (ledger
   `reminder_ledger.duckdb`), writes `exports/<D>/`: per centre an `.xlsx` that opens on `今日须办` (mart
   `work_items`, R-WORK: a standing to-do list, not "sent once"; the province's covers every centre, with a
   roll-up `各中心汇总` and its own tasks `省中心事项`), then `预警` (R-WARN), `汇总` and one sheet per reminder
   type, and a `.csv` of the reminders sent that day; per institution reminded, the pre-filled 附件1 申请表 and
   附件2 工作总结 draft if it can apply now, else a one-page 告知; `manifest.json` (counts, sha256 of every
   file); and for each centre whose spreadsheet rows were rejected on D its `<code>_<centre>_退回清单_<D>.xlsx`
   (row, reason in Chinese, a valid example); then records the reminders as sent. A rerun for D gives identical
   files, and makes only the forms whose inputs changed (the rest from `WAREHOUSE/form_cache`, by content hash;
   the log's `forms_built` and `forms_from_cache` say how many). It fails (and says so) if the published marts
   are not those of D.
2. `email_reminders` mails each centre its files through the `smtp_default` connection, once per centre and
   date; skipped unless recipients are configured (Variable `reminder_recipients` or `REMINDER_RECIPIENTS`).
"""


def triggering_publication(context: Context) -> dict[str, Any] | None:
    """The extra of the newest `renewal_published_marts` event that triggered this run, if any."""
    events = [
        event
        for asset_events in (context.get("triggering_asset_events") or {}).values()
        for event in asset_events
    ]
    events = [e for e in events if (getattr(e, "extra", None) or {}).get("as_of")]
    if not events:
        return None
    return max(events, key=lambda e: e.timestamp).extra


def _as_of() -> dt.date:
    """D: the param as_of, else the triggering publication's as_of, else the run's own date (Asia/Shanghai)."""
    context = get_current_context()
    if (context["params"] or {}).get("as_of"):
        return dt.date.fromisoformat(context["params"]["as_of"])
    publication = triggering_publication(context)
    if publication:
        return dt.date.fromisoformat(publication["as_of"])
    return run_as_of(context)


def _skip_if_backfill() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    context = get_current_context()
    publication = triggering_publication(context) or {}
    if publication.get("backfill") or is_backfill(context):
        raise AirflowSkipException(
            f"publication for {_as_of()} was made by a backfill: nothing is exported, "
            "marked in the ledger or e-mailed"
        )


with DAG(
    dag_id="renewal_reminders",
    description="Per-centre reminder workbooks and pre-filled renewal forms, each reminder sent once",
    schedule=[PUBLISHED_MARTS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,
    doc_md=DOC,
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="export for this date (YYYY-MM-DD) instead of the run's date",
        )
    },
    default_args={**DEFAULT_ARGS, "pool": WRITER_POOL},
    tags=["renewal", "reminders", "闽劳鉴〔2022〕26号"],
) as dag:

    @task
    def export_reminders() -> dict:
        from pipeline.steps import export

        _skip_if_backfill()
        return export(_as_of(), load_id=run_load_id(_as_of(), get_current_context()["run_id"]))

    @task(**TRANSIENT)
    def email_reminders() -> dict:
        from pipeline.steps import email

        _skip_if_backfill()
        return email(_as_of())

    export_reminders() >> email_reminders()
