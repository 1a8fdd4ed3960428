"""The dbt tasks' Cosmos configuration in one place (cosmos-demo's `include/` pattern): profile, operator arguments
and templates, rendered when a task runs, so that parsing the DAG reads no setting."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cosmos import ProfileConfig
from cosmos.constants import InvocationMode
from cosmos.operators.local import DbtBuildLocalOperator, DbtSourceLocalOperator

from pipeline.check_scope import CHANGED_SINCE_ENV, warehouse_scope
from pipeline.dag_common import alert_stale_feed, as_of_macro, is_backfill, run_as_of
from pipeline.dbt_handle import release_dbt_duckdb
from pipeline.settings import DBT_PROJECT_DIR, WRITER_POOL, as_of_date, warehouse_dir

if TYPE_CHECKING:
    from airflow.sdk import Context
    from dbt.cli.main import dbtRunnerResult

log = logging.getLogger(__name__)

PROFILE = ProfileConfig(
    profile_name="renewal", target_name="duckdb", profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml"
)


def warehouse_db_macro() -> str:
    """The warehouse file that dbt builds in (WAREHOUSE), read on the worker when the task runs."""
    return str(warehouse_dir() / "warehouse.duckdb")


def check_changed_since_macro(logical_date: dt.datetime | None, run_after: dt.datetime) -> str:
    """The dbt tests' scope for D, decided when the task runs (pipeline/check_scope.py): the time after which rows
    count as changed, or empty for a full check (dbt_project/macros/changed_rows.sql reads it)."""
    scope = warehouse_scope(warehouse_dir() / "warehouse.duckdb", as_of_date(logical_date or run_after))
    log.info("dbt data tests on the certificate and lookup models: %s", scope.reason)
    return scope.env_value()


# The DAG's user_defined_macros, for the templates below.
DBT_MACROS = {
    "renewal_as_of": as_of_macro,
    "renewal_warehouse_db": warehouse_db_macro,
    "renewal_check_changed_since": check_changed_since_macro,
}
# dag_run.logical_date, not logical_date: a run without one (the UI's Trigger button) has no `logical_date` in
# its template context at all, and rendering `logical_date` there fails with UndefinedError
AS_OF_TEMPLATE = "{{ renewal_as_of(dag_run.logical_date, dag_run.run_after) }}"

OPERATOR_ARGS = {
    "project_dir": DBT_PROJECT_DIR,
    "profile_config": PROFILE,
    "invocation_mode": InvocationMode.DBT_RUNNER,
    # D reaches dbt in the environment, not in --vars: a change of --vars makes dbt parse the whole project
    # again (3-4 s every day); dbt_project/macros/as_of.sql reads it only when dbt executes
    "env": {
        "RENEWAL_AS_OF": AS_OF_TEMPLATE,
        "WAREHOUSE_DB": "{{ renewal_warehouse_db() }}",
        CHANGED_SINCE_ENV: "{{ renewal_check_changed_since(dag_run.logical_date, dag_run.run_after) }}",
        # dbt's own log file would go to the temporary project copy, deleted with it; its lines are in the task
        # log. Writing it took ~0.7 s of a province day's build.
        "DBT_LOG_LEVEL_FILE": "none",
        # nor are manifest.json and run_results.json read by anyone: written there, they took ~1.4 s a run
        "DBT_WRITE_JSON": "false",
    },
    "install_deps": False,
    "pool": WRITER_POOL,
    # dbt done, the task lets go of the warehouse before it reports success (pipeline/dbt_handle.py)
    "callback": release_dbt_duckdb,
    # Cosmos runs dbt in a temporary copy of the project; with a cache_dir it starts that copy from the
    # project's own target/partial_parse.msgpack (`dbt parse`, README: Deploying) and writes the run's back, so
    # a run whose vars are those of the last one (a rerun of D) skips dbt's full parse (~4 s). Without one,
    # every run parsed the whole project.
    "cache_dir": DBT_PROJECT_DIR,
    # the compiled SQL of ~240 nodes as a rendered field in the metadata database, every run: the task log and
    # dbt's target/ say what ran
    "should_store_compiled_sql": False,
    # no Airflow Asset per dbt node (~50 a run, named after the warehouse path): nothing is scheduled on them,
    # and registering them took about half a second a run; renewal_reminders waits for PUBLISHED_MARTS
    "emit_datasets": False,
}


def dbt_build_task(
    task_id: str, select: Sequence[str] = (), exclude: Sequence[str] = ()
) -> DbtBuildLocalOperator:
    """One `dbt build` of the selected nodes (all when none are named), as a task of the DAG being defined."""
    return DbtBuildLocalOperator(
        task_id=task_id, select=list(select) or None, exclude=list(exclude) or None, **OPERATOR_ARGS
    )


# R-FEED: the source whose freshness is the feed's, judged on D (dbt_project/macros/feed_freshness.sql)
FEED_FRESHNESS_SOURCE = "source:feed.feed_loads"
# what `dbt source freshness` reports of a source that is past a threshold: the answer asked for, not a failure
FRESHNESS_VERDICTS = {"pass", "warn", "error"}


class FeedFreshnessOperator(DbtSourceLocalOperator):
    """`dbt source freshness` of the feed (R-FEED), for D as the dbt task had it, then the verdict: the province's
    row of mart feed_freshness (which must agree with dbt's), logged, and e-mailed to the data team when the feed
    is not fresh (not for a backfill). A stale feed never fails the task: the run publishes what it has, and the
    workbooks and dashboards carry the mart's notice. Only a failure of dbt itself (a query or parse error) does."""

    def handle_exception_dbt_runner(self, result: dbtRunnerResult) -> None:
        results = getattr(result.result, "results", None) or []
        if result.exception is None and all(str(r.status) in FRESHNESS_VERDICTS for r in results):
            return
        super().handle_exception_dbt_runner(result)

    def execute(self, context: Context, **kwargs: Any) -> dict[str, Any]:
        from pipeline.steps import feed_freshness

        result = self.build_and_run_cmd(context=context, cmd_flags=self.add_cmd_flags())
        verdict = freshness_verdict(result)
        as_of = run_as_of(context)
        row = feed_freshness(as_of, verdict)
        mailed = False
        if row["freshness_status"] != "fresh":
            mailed = alert_stale_feed(context, row, verdict, backfill=is_backfill(context))
        return {
            "status": row["freshness_status"],
            "days_unchanged": row["days_unchanged"],
            "newest_updated_at": str(row["newest_updated_at"]),
            "dbt": verdict,
            "alert_mailed": mailed,
        }


def freshness_verdict(result: dbtRunnerResult) -> dict[str, Any] | None:
    """What `dbt source freshness` said of the feed's source (a dbtRunnerResult): status and age in days."""
    for r in getattr(getattr(result, "result", None), "results", None) or []:
        if r.node.unique_id == "source.renewal.feed.feed_loads":
            return {"status": str(r.status), "days": r.age / 86400}
    return None


def feed_freshness_task(task_id: str) -> FeedFreshnessOperator:
    """The feed's `dbt source freshness` and its alert, as a task of the DAG being defined. It reads the
    warehouse but writes nothing there, so it needs no check scope (the dbt task's env less that)."""
    env = {k: v for k, v in OPERATOR_ARGS["env"].items() if k != CHANGED_SINCE_ENV}
    return FeedFreshnessOperator(
        task_id=task_id, select=[FEED_FRESHNESS_SOURCE], **(OPERATOR_ARGS | {"env": env})
    )
