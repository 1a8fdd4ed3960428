"""Airflow DAG `renewal_daily`: feed → ingest → dbt marts → quality gate → publish → reminder exports."""

from __future__ import annotations

from airflow.sdk import DAG, Asset, Param, get_current_context, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from cosmos.operators.local import DbtBuildLocalOperator
from pendulum import datetime

from pipeline.settings import DBT_PROJECT_DIR, TIMEZONE, load_settings

PUBLISHED_MARTS = Asset("renewal_published_marts")
AS_OF = "{{ logical_date.in_timezone('Asia/Shanghai').strftime('%Y-%m-%d') }}"

DOC = """
### 备案续期 daily run (闽劳鉴〔2022〕26号)

The run's **logical date, read in Asia/Shanghai, is the as-of date D** of every mart.

1. `extract_feed` pulls institutions, registered occupations, plans and certificates from 技能人才评价工作网
   (incremental by watermark; param `full_refresh` pulls everything) into `warehouse.duckdb` schema `raw`.
2. `load_centre_records` reads the centre's spreadsheets (CSV/text in UTF-8, GBK or UTF-16, .xlsx, .xls;
   docs/centre_records.md); bad rows go to `raw.quarantine` with their reason, and back to their centre in its
   退回清单. **A file that cannot be read at all fails this task** (`CentreFileError`: the log names the file,
   what was expected and what was found); nothing is published until the file is fixed or replaced.
3. `verify_certificates` asks the feed's batch lookup about new, not-found and stale certificates.
4. `dbt_staging_intermediate` builds the seeds, staging and intermediate models with their data and unit
   tests, in one `dbt build`; then the `dbt` group (Cosmos) runs one task per mart and a task for the marts'
   tests. One task for the 27 upstream nodes saves ~1.8 s of dbt start-up each (bench/README.md); its log
   lists every node.
5. `quality_gate` runs the Great Expectations suites. **If it fails, nothing is published**: read the task
   log, which lists each failed expectation with counts and example keys; the previous
   `published.duckdb` stays as it was.
6. `publish` replaces `published.duckdb` and the Parquet files atomically; `publish_postgres` swaps the
   marts into PostgreSQL for BI tools (skipped when no `marts_postgres` connection or `MARTS_POSTGRES_DSN`).
   Publishing updates the Asset `renewal_published_marts`, which starts `renewal_reminders` (exports/<D>/).

Tasks run one at a time (`max_active_tasks=1`): DuckDB allows one writer per file.
Rerunning a date is safe: marts and exports are a function of the data and D.
"""

settings = load_settings()


def _as_of():
    from pipeline.settings import as_of_date

    context = get_current_context()
    return as_of_date(context["logical_date"] or context["dag_run"].run_after)


def _load_id() -> str:
    context = get_current_context()
    return f"{_as_of().isoformat()}:{context['run_id']}"


with DAG(
    dag_id="renewal_daily",
    description="Daily renewal-eligibility marts and reminders for Fujian skill-evaluation institutions",
    schedule="0 6 * * *",
    start_date=datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,
    doc_md=DOC,
    params={"full_refresh": Param(False, type="boolean", description="pull every record, not only changes")},
    default_args={"retries": 0},
    tags=["renewal", "闽劳鉴〔2022〕26号"],
) as dag:

    @task
    def extract_feed(params: dict | None = None) -> dict:
        from pipeline.steps import extract_feed as step

        return step(_as_of(), _load_id(), full_refresh=bool((params or {}).get("full_refresh")))

    @task
    def load_centre_records() -> dict:
        from pipeline.steps import load_centre

        return load_centre(_as_of(), _load_id())

    @task
    def verify_certificates() -> dict:
        from pipeline.steps import verify_certificates as step

        return step(_as_of(), _load_id())

    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    profile = ProfileConfig(profile_name="renewal", target_name="duckdb",
                            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml")
    dbt_args = {
        "vars": {"as_of": AS_OF},
        "env": {"WAREHOUSE_DB": str(settings.warehouse_db)},
        "install_deps": False,
    }
    staging_intermediate = DbtBuildLocalOperator(
        task_id="dbt_staging_intermediate",
        project_dir=DBT_PROJECT_DIR,
        profile_config=profile,
        invocation_mode=InvocationMode.DBT_RUNNER,
        select=["path:seeds", "path:models/staging", "path:models/intermediate"],
        **dbt_args,
    )
    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(DBT_PROJECT_DIR, manifest_path=manifest if manifest.exists() else None),
        profile_config=profile,
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                         invocation_mode=InvocationMode.DBT_RUNNER),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST if manifest.exists() else LoadMode.DBT_LS,
            select=["path:models/marts", "path:models/ops"],
            # one task per model, then one task for the marts' data tests: half the tasks of after_each
            # (each costs ~1.8 s of dbt start-up); a failing test still stops the run before the gate
            test_behavior=TestBehavior.AFTER_ALL,
        ),
        operator_args=dbt_args,
    )

    @task
    def quality_gate() -> dict:
        from pipeline.steps import quality_gate as step

        return step(_as_of(), get_current_context()["run_id"])

    @task(outlets=[PUBLISHED_MARTS])
    def publish() -> dict:
        from pipeline.steps import publish as step

        return step(_as_of())

    @task
    def publish_postgres() -> dict:
        from pipeline.steps import publish_to_postgres

        return publish_to_postgres(_as_of())

    @task
    def report() -> str:
        from pipeline.steps import summary_text

        text = summary_text(settings.published_db, settings.exports_dir)
        print(text)
        return text

    (extract_feed() >> load_centre_records() >> verify_certificates() >> staging_intermediate >> dbt
     >> quality_gate() >> publish() >> publish_postgres() >> report())
