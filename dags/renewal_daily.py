"""Airflow DAG `renewal_daily`: feed → ingest → dbt marts → quality gate → publish → reminder exports."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from airflow.sdk import DAG, Param, get_current_context, task

from pipeline.cosmos_config import DBT_MACROS, dbt_build_task, feed_freshness_task
from pipeline.dag_common import (
    DAILY_SCHEDULE,
    DEFAULT_ARGS,
    PUBLISHED_MARTS,
    START_DATE,
    TRANSIENT,
    is_backfill,
    run_as_of,
)
from pipeline.settings import WRITER_POOL, run_load_id

if TYPE_CHECKING:
    from airflow.sdk.types import OutletEventAccessorsProtocol

DOC = """
### 备案续期 daily run (闽劳鉴〔2022〕26号)

The run's **logical date, read in Asia/Shanghai, is the as-of date D** of every mart (a run without a
logical date uses its `run_after`). Any D from 2022-12-15 (the notice's date) on can be run or backfilled;
a backfill (`make backfill`, `airflow backfill create`) rebuilds marts and history only: its publications
carry `backfill: true`, so `renewal_reminders` neither exports, marks the ledger nor sends e-mail for them.

1. `extract_feed` pulls institutions, registered occupations, plans and certificates from 技能人才评价工作网
   (incremental by watermark; param `full_refresh` pulls everything) into `warehouse.duckdb` schema `raw`.
2. `load_local_sources` replaces `raw.prc_calendar`, the official working-day calendar that R-SLA counts on,
   then reads the centre's spreadsheets (CSV/text in UTF-8, GBK or UTF-16, .xlsx, .xls;
   docs/centre_records.md); bad rows go to `raw.quarantine` with their reason, and back to their centre in its
   退回清单. **A file that cannot be read at all fails this task** (`CentreFileError`: the log names the file,
   what was expected and what was found); nothing is published until the file is fixed or replaced.
3. `verify_certificates` asks the feed's batch lookup about new, not-found and stale certificates.
4. `dbt_build` builds the seeds, staging, intermediate and mart models with their data tests in one
   `dbt build` (each dbt start-up costs ~5 s, bench/README.md); the unit tests, which test the SQL and not the
   day's data, run in the test suite and CI (`make test`), as dbt advises. A
   failing test fails the task and skips what depends on it, so the gate and publication do not run. The
   log lists every node. Its data tests on the million-row certificate and lookup models check the rows
   changed since the last passed check, and every row once a week, on the first run and after a
   `full_refresh` (the log says which; README, "Checks: changed rows and the weekly full check").
5. `feed_freshness` runs `dbt source freshness` on the feed (R-FEED, docs/rules.md): the days since the newest
   `updated_at` the network ever served, judged on D (so a backfill judges as a run on that day did), against the
   thresholds of source `feed.feed_loads` (`dbt_project/models/staging/feed/_feed__sources.yml`: stale after 4
   days, stopped after 10), and checks that the mart `feed_freshness` says the same. A feed that is not fresh is
   logged as an error and e-mailed to `ALERT_RECIPIENTS` (not for a backfill), and the workbooks and dashboards
   carry the mart's notice; the task still succeeds and the run publishes (stale data is the best there is).
   It depends on `dbt_build` only, so it reports even when the gate then fails.
6. `quality_gate` runs the Great Expectations suites. **If it fails, nothing is published**: read the task
   log, which lists each failed expectation with counts and example keys; the previous
   `published.duckdb` stays as it was. Its certificate checks have the same scope as dbt's tests; a pass
   is recorded in `raw.run_metrics` (step `quality_gate`, subject `checks`), which decides the next scope.
   To check every row before the week is up, trigger with param `full_refresh`.
7. `publish` replaces `published.duckdb` and the Parquet files atomically; `publish_postgres` swaps the
   marts into PostgreSQL for BI tools (skipped when no `marts_postgres` connection or `MARTS_POSTGRES_DSN`).
   Publishing updates the Asset `renewal_published_marts`, which starts `renewal_reminders` (exports/<D>/).
8. `retention` applies the retention policy (README, "Retention"; `pipeline/retention.py`): superseded feed versions
   and lookup answers, old quarantine and run metrics, gate results, export folders (their manifests stay) and
   temporary files go, and `warehouse.duckdb` is copied afresh when half of it is free. It never opens the
   reminder ledger and never removes a day of `renewal_history`; what it removed is in its log and in
   `raw.run_metrics` (step `retention`).

Every task that writes a DuckDB file takes the one slot of the pool `renewal_duckdb_writer`, so no two tasks
of either DAG write at once. A failed task, and a feed that stopped changing, e-mail `ALERT_RECIPIENTS` (or the Variable
`alert_recipients`) through `smtp_default`; the feed, lookup and PostgreSQL tasks retry with exponential backoff first. The gate
never retries: its failure is a verdict on the data.
Rerunning a date is safe: marts and exports are a function of the data and D.
"""


def _as_of() -> dt.date:
    return run_as_of(get_current_context())


def _load_id() -> str:
    return run_load_id(_as_of(), get_current_context()["run_id"])


with DAG(
    dag_id="renewal_daily",
    description="Daily renewal-eligibility marts and reminders for Fujian skill-evaluation institutions",
    schedule=DAILY_SCHEDULE,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,
    doc_md=DOC,
    params={
        "full_refresh": Param(False, type="boolean", description="pull every record, not only changes"),
        "backfill": Param(
            False,
            type="boolean",
            description="rebuild history only: the reminders DAG exports and sends nothing",
        ),
    },
    default_args={**DEFAULT_ARGS, "pool": WRITER_POOL},
    user_defined_macros=DBT_MACROS,
    tags=["renewal", "闽劳鉴〔2022〕26号"],
) as dag:

    @task(**TRANSIENT)
    def extract_feed(params: dict | None = None) -> dict:
        from pipeline.steps import extract_feed as step

        return step(_as_of(), _load_id(), full_refresh=bool((params or {}).get("full_refresh")))

    @task
    def load_local_sources() -> dict:
        from pipeline.steps import load_local_sources as step

        return step(_as_of(), _load_id())

    @task(**TRANSIENT)
    def verify_certificates() -> dict:
        from pipeline.steps import verify_certificates as step

        return step(_as_of(), _load_id())

    # One `dbt build` for seeds, staging, intermediate models and marts with their data tests: each dbt
    # invocation costs a start-up (~5 s at province size), and dbt skips whatever depends on a failing node, so
    # a failing test still fails this task before the gate. Unit tests check the SQL, not the day's data: they
    # run in the test suite (tests/test_rules.py, `make test`, CI), not every day (dbt's own advice; ~1-2 s).
    dbt = dbt_build_task("dbt_build", exclude=["resource_type:unit_test"])
    # R-FEED: beside the gate, not before it, so that a failing gate does not hide a feed that stopped changing,
    # and a stale feed (which never fails this task) never holds up the publication
    freshness = feed_freshness_task("feed_freshness")

    @task(retries=0)
    def quality_gate() -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from expectations.gate import GateFailed
        from pipeline.steps import quality_gate as step

        try:
            return step(_as_of(), get_current_context()["run_id"])
        except GateFailed as failed:  # a verdict on the data, not a glitch: no retry
            raise AirflowFailException(str(failed)) from failed

    @task(outlets=[PUBLISHED_MARTS])
    def publish(*, outlet_events: OutletEventAccessorsProtocol | None = None) -> dict:
        from pipeline.steps import publish as step

        context = get_current_context()
        counts = step(_as_of())
        # Airflow fills in this context key when the task runs; None is only the default it requires at parse time
        assert outlet_events is not None
        # renewal_reminders reads D (and whether this is a backfill) from the event, never from the newest file
        outlet_events[PUBLISHED_MARTS].extra = {
            "as_of": _as_of().isoformat(),
            "backfill": is_backfill(context),
        }
        return counts

    @task(**TRANSIENT)
    def publish_postgres() -> dict:
        from pipeline.steps import publish_to_postgres

        return publish_to_postgres(_as_of())

    @task(pool="default_pool")
    def report() -> str:
        from pipeline.settings import load_settings
        from pipeline.summary import summary_text

        settings = load_settings()
        text = summary_text(settings.published_db, settings.exports_dir)
        print(text)
        return text

    @task
    def retention() -> dict:
        from pipeline.retention import retention_step

        return retention_step(_as_of(), _load_id())

    (
        extract_feed()
        >> load_local_sources()
        >> verify_certificates()
        >> dbt
        >> quality_gate()
        >> publish()
        >> publish_postgres()
        >> report()
        >> retention()
    )
    dbt >> freshness
