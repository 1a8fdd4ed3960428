import os

import pytest

from pipeline.settings import PROJECT_ROOT


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_dags_import_cleanly(dagbag):
    assert dagbag.import_errors == {}
    assert {"renewal_daily", "renewal_reminders"} <= set(dagbag.dags)


def test_daily_dag_wiring(dagbag):
    dag = dagbag.dags["renewal_daily"]
    ids = set(dag.task_ids)
    for task in [
        "extract_feed",
        "load_local_sources",
        "verify_certificates",
        "quality_gate",
        "publish",
        "publish_postgres",
        "report",
        "retention",
    ]:
        assert task in ids, task
    assert dag.get_task("retention").upstream_task_ids == {"report"}
    # one `dbt build` for seeds, staging, intermediate and marts (one dbt start-up), without unit tests: they
    # test the SQL, not the day's data, and run in the test suite (tests/test_rules.py), as dbt advises
    # D reaches dbt in the environment, not --vars, so that a new day keeps dbt's partial parse
    dbt = dag.get_task("dbt_build")
    assert not {"dbt_staging_intermediate", "dbt_marts"} & ids
    assert dbt.select in (None, [])
    assert dbt.exclude == ["resource_type:unit_test"]
    assert "as_of" not in (dbt.vars or {})
    assert "renewal_as_of" in dbt.env["RENEWAL_AS_OF"]
    assert dbt.upstream_task_ids == {"verify_certificates"}
    # it lets go of the warehouse before it reports success: the gate may start while its process exits
    from pipeline.dbt_handle import release_dbt_duckdb

    assert dbt.callback is release_dbt_duckdb
    # dbt reads the calendar (R-SLA) and the centre's records, so they are loaded before the dbt task, in the
    # writers' pool
    assert dag.get_task("load_local_sources").upstream_task_ids == {"extract_feed"}
    assert "load_local_sources" in dbt.get_flat_relative_ids(upstream=True)
    assert dag.max_active_tasks == 1
    assert str(dag.timezone) in ("Asia/Shanghai", "Timezone('Asia/Shanghai')")
    publish = dag.get_task("publish")
    assert "quality_gate" in publish.upstream_task_ids
    gate = dag.get_task("quality_gate")
    assert gate.upstream_task_ids == {"dbt_build"}
    assert dag.get_task("publish_postgres").upstream_task_ids == {"publish"}
    # R-FEED: `dbt source freshness` of the feed beside the gate, so that neither waits for the other, for D
    # as the dbt task has it
    freshness = dag.get_task("feed_freshness")
    assert freshness.upstream_task_ids == {"dbt_build"}
    assert not freshness.downstream_task_ids
    assert freshness.base_cmd == ["source", "freshness"]
    assert freshness.select == ["source:feed.feed_loads"]
    assert freshness.env["RENEWAL_AS_OF"] == dbt.env["RENEWAL_AS_OF"]
    assert freshness.callback is release_dbt_duckdb


def test_reminders_dag_runs_on_each_publication(dagbag):
    daily, reminders = dagbag.dags["renewal_daily"], dagbag.dags["renewal_reminders"]
    outlets = {a.name for a in daily.get_task("publish").outlets}
    assert outlets == {"renewal_published_marts"}
    assert "renewal_published_marts" in str(reminders.timetable.asset_condition)
    assert reminders.get_task("email_reminders").upstream_task_ids == {"export_reminders"}
    assert reminders.max_active_tasks == 1
    assert "as_of" in reminders.params


def test_both_dags_accept_every_date_from_the_notice_and_share_one_asset(dagbag):
    import datetime as dt

    from pipeline.dag_common import PUBLISHED_MARTS
    from pipeline.settings import WRITER_POOL

    for dag_id in ("renewal_daily", "renewal_reminders"):
        dag = dagbag.dags[dag_id]
        assert dag.start_date.astimezone(dt.timezone(dt.timedelta(hours=8))).date() == dt.date(2022, 12, 15)
        for task in dag.tasks:  # every writer of a DuckDB file takes the pool's one slot
            if task.task_id != "report":
                assert task.pool == WRITER_POOL, (dag_id, task.task_id)
            assert task.on_failure_callback, (dag_id, task.task_id)
    assert dagbag.dags["renewal_daily"].get_task("publish").outlets == [PUBLISHED_MARTS]


def test_transient_tasks_retry_with_backoff_and_the_gate_never(dagbag):
    daily = dagbag.dags["renewal_daily"]
    for task_id in ("extract_feed", "verify_certificates", "publish_postgres"):
        task = daily.get_task(task_id)
        assert task.retries == 3, task_id
        assert task.retry_exponential_backoff, task_id
    assert daily.get_task("quality_gate").retries == 0
    assert dagbag.dags["renewal_reminders"].get_task("email_reminders").retries == 3


class _Run:
    def __init__(self, run_after, conf=None, run_type="manual"):
        self.run_after, self.conf, self.run_type, self.run_id = run_after, conf or {}, run_type, "manual__x"


class _TI:
    dag_id, task_id, try_number, log_url = "renewal_daily", "quality_gate", 1, "http://airflow/log"


def test_d_without_a_logical_date_is_run_after_in_shanghai():
    import datetime as dt

    from pipeline.dag_common import as_of_macro, run_as_of

    late_utc = dt.datetime(2026, 11, 24, 17, 30, tzinfo=dt.UTC)  # 01:30 on the 25th in Shanghai
    assert run_as_of({"logical_date": None, "dag_run": _Run(late_utc)}) == dt.date(2026, 11, 25)
    assert as_of_macro(None, late_utc) == "2026-11-25"


def test_failure_mail_names_dag_task_date_and_the_failed_expectations(monkeypatch):
    import datetime as dt

    from pipeline.dag_common import alert_recipients, failure_mail

    error = (
        "data-quality gate failed for 2026-11-25: 1 of 37 expectations failed; nothing was published.\n"
        "  - plan_institutions: expect_column_values_to_not_be_null on known_institution: 1 unexpected "
        "(e.g. plan_no=PX-ORPHAN (known_institution=None)) {{ not jinja }}"
    )
    context = {
        "ti": _TI(),
        "dag_run": _Run(dt.datetime(2026, 11, 24, 22, tzinfo=dt.UTC)),
        "logical_date": None,
        "exception": RuntimeError(error),
    }
    subject, body = failure_mail(context)
    assert subject == "[renewal pipeline] FAILED renewal_daily.quality_gate for 2026-11-25"
    assert "plan_institutions" in body
    assert "1 unexpected" in body
    assert "PX-ORPHAN" in body
    assert "{{" not in body  # the notifier renders its fields with Jinja
    monkeypatch.setenv("ALERT_RECIPIENTS", "a@x.cn; b@x.cn,")
    assert alert_recipients() == ["a@x.cn", "b@x.cn"]


def test_reminders_take_d_from_the_publication_event_and_skip_backfills(dagbag):
    import datetime as dt
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "renewal_reminders_dag", PROJECT_ROOT / "dags" / "renewal_reminders.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class Event:
        def __init__(self, extra, minute):
            self.extra, self.timestamp = extra, dt.datetime(2026, 11, 25, 6, minute, tzinfo=dt.UTC)

    events = {
        "renewal_published_marts": [
            Event({"as_of": "2026-11-24", "backfill": False}, 1),
            Event({"as_of": "2026-11-25", "backfill": True}, 2),
        ]
    }
    assert module.triggering_publication({"triggering_asset_events": events}) == {
        "as_of": "2026-11-25",
        "backfill": True,
    }
    assert module.triggering_publication({"triggering_asset_events": {}}) is None


def test_a_run_in_which_no_task_ran_is_a_failure():
    import datetime as dt

    from pipeline.local_run import RunFailed, judge_run

    day = dt.date(2022, 12, 20)
    with pytest.raises(RunFailed, match="ran no task"):
        judge_run("renewal_daily", day, "success", [])
    with pytest.raises(RunFailed, match="quality_gate=failed"):
        judge_run("renewal_daily", day, "failed", [("extract_feed", "success"), ("quality_gate", "failed")])
    with pytest.raises(RunFailed, match="no DAG run"):
        judge_run("renewal_daily", day, None, [])
    judge_run("renewal_daily", day, "success", [("extract_feed", "success"), ("report", "skipped")])


def test_each_run_of_the_one_process_writes_its_own_log(tmp_path):
    """pipeline/dags_test.py runs every DAG run of a local run in one process: what each run and the programs it
    starts print goes to that run's log, and the process's own output is back where it was afterwards."""
    import subprocess
    import sys

    from pipeline.dags_test import dags_test_args

    script = tmp_path / "runs.py"
    script.write_text(
        "import subprocess, sys\n"
        "from pathlib import Path\n"
        "from pipeline.dags_test import output_to\n"
        "for name in ('first', 'second'):\n"
        "    with output_to(Path(sys.argv[1]) / f'{name}.log'):\n"
        "        print(f'{name} from python')\n"
        "        print(f'{name} on stderr', file=sys.stderr)\n"
        "        subprocess.run(['echo', f'{name} from a child'], check=True)\n"
        "print('after the runs')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        cwd=PROJECT_ROOT,
        env=dict(os.environ, PYTHONPATH=str(PROJECT_ROOT)),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "after the runs\n"
    for name in ("first", "second"):
        lines = sorted((tmp_path / f"{name}.log").read_text().splitlines())
        assert lines == sorted([f"{name} from python", f"{name} on stderr", f"{name} from a child"])
    run = {"dag_id": "renewal_daily", "logical_date": "2026-11-25T06:00:00+08:00", "conf": None, "log": "x"}
    assert dags_test_args(run) == ["dags", "test", "renewal_daily", "2026-11-25T06:00:00+08:00"]
    assert dags_test_args(run | {"conf": {"backfill": True}})[-2:] == ["--conf", '{"backfill": true}']


def test_a_request_to_the_dag_runner_sets_and_removes_environment_variables(monkeypatch):
    """The resident DAG runner runs each day in that day's environment (the feed, the dataset, the soak's clock):
    a request's "env" sets its variables and removes those given as null, before its runs."""
    from pipeline.dags_test import run_plan

    monkeypatch.setenv("RENEWAL_TEST_GONE", "yesterday's")
    monkeypatch.delenv("RENEWAL_TEST_SET", raising=False)
    assert run_plan([], {"RENEWAL_TEST_SET": "today's", "RENEWAL_TEST_GONE": None}) == 0
    assert os.environ["RENEWAL_TEST_SET"] == "today's"
    assert "RENEWAL_TEST_GONE" not in os.environ


def test_an_airflow_command_that_fails_is_said_with_its_command():
    """A failed run's log ends with what ended it: the command, and Airflow's message or its exit status."""
    from pipeline import airflow_cli

    with pytest.raises(airflow_cli.AirflowCommandFailed) as failed:
        airflow_cli.run(["dags", "no-such-command"])  # argparse ends it with SystemExit(2)
    assert str(failed.value) == "`airflow dags no-such-command` ended with exit status 2"
    assert isinstance(failed.value.__cause__, SystemExit)


def test_dates_before_the_notice_are_refused_and_a_backfill_needs_both_ends():
    import datetime as dt

    from pipeline.local_run import as_of_dates, parse_args

    assert as_of_dates(parse_args(["--as-of", "2022-12-15"])) == ([dt.date(2022, 12, 15)], False)
    with pytest.raises(ValueError, match="before 2022-12-15"):
        as_of_dates(parse_args(["--as-of", "2022-12-14"]))
    days, backfill = as_of_dates(parse_args(["--from", "2023-01-03", "--to", "2023-01-09"]))
    assert backfill
    assert len(days) == 7
    assert days[0] == dt.date(2023, 1, 3)
    with pytest.raises(ValueError, match="both"):
        as_of_dates(parse_args(["--from", "2023-01-03"]))


def test_the_run_is_found_by_its_logical_date_as_airflow_stores_it():
    import datetime as dt

    from pipeline.local_run import logical_key

    assert logical_key(dt.date(2026, 11, 25)) == "2026-11-24 22:00:00.000000"  # 06:00 in Shanghai, in UTC


def test_the_dbt_task_reads_the_warehouse_path_and_check_scope_when_it_runs_not_when_parsed(
    dagbag, monkeypatch
):
    import datetime as dt

    from pipeline.cosmos_config import DBT_MACROS

    assert dagbag.dags["renewal_daily"].get_task("dbt_build").env == {
        "RENEWAL_AS_OF": "{{ renewal_as_of(dag_run.logical_date, dag_run.run_after) }}",
        "WAREHOUSE_DB": "{{ renewal_warehouse_db() }}",
        "RENEWAL_CHECK_CHANGED_SINCE": "{{ renewal_check_changed_since(dag_run.logical_date, dag_run.run_after) }}",
        "DBT_LOG_LEVEL_FILE": "none",
        "DBT_WRITE_JSON": "false",
    }
    monkeypatch.setenv("WAREHOUSE", "/srv/renewal")
    assert DBT_MACROS["renewal_warehouse_db"]() == "/srv/renewal/warehouse.duckdb"
    # no warehouse there yet: the first run checks every row
    assert DBT_MACROS["renewal_check_changed_since"](None, dt.datetime(2026, 11, 25, tzinfo=dt.UTC)) == ""


@pytest.mark.parametrize("logical", [None, "2026-11-24T22:00:00+00:00"])
def test_the_dbt_task_renders_for_a_run_with_or_without_a_logical_date(
    dagbag, monkeypatch, tmp_path, logical
):
    """The UI's Trigger button makes a run with no logical date: its template context has no `logical_date`
    at all, and the dbt task's env must still render, with D taken from run_after in Shanghai."""
    import datetime as dt
    from types import SimpleNamespace

    monkeypatch.setenv("WAREHOUSE", str(tmp_path))
    dag = dagbag.dags["renewal_daily"]
    task = dag.get_task("dbt_build")
    logical_date = dt.datetime.fromisoformat(logical) if logical else None
    run = SimpleNamespace(logical_date=logical_date, run_after=dt.datetime(2026, 11, 24, 23, tzinfo=dt.UTC))
    context = {"dag_run": run, "dag": dag, "task": task}
    if logical_date:
        context["logical_date"] = logical_date
    env = task.render_template(task.env, context, jinja_env=dag.get_template_env())
    assert env["RENEWAL_AS_OF"] == "2026-11-25"
    assert env["WAREHOUSE_DB"] == str(tmp_path / "warehouse.duckdb")
    assert env["RENEWAL_CHECK_CHANGED_SINCE"] == ""  # no warehouse yet: every row is checked


def _failed_context():
    import datetime as dt

    return {
        "ti": _TI(),
        "dag_run": _Run(dt.datetime(2026, 11, 24, 22, tzinfo=dt.UTC)),
        "logical_date": None,
        "exception": RuntimeError("data-quality gate failed for 2026-11-25: 1 of 37 expectations failed"),
    }


def _broken_variable(monkeypatch):
    """The Variable store answers with an error (the API server unreachable, a permission denied …)."""
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse

    def broken(*_args, **_kwargs):
        raise AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR, detail={"status": 503}))

    monkeypatch.delenv("ALERT_RECIPIENTS", raising=False)
    monkeypatch.delenv("REMINDER_RECIPIENTS", raising=False)
    monkeypatch.setattr(Variable, "get", broken)


def test_an_alert_whose_recipients_cannot_be_read_is_logged_as_an_error_with_the_alert(monkeypatch, caplog):
    import logging

    from pipeline.dag_common import alert_recipients, on_task_failure

    _broken_variable(monkeypatch)
    with pytest.raises(Exception, match="API_SERVER_ERROR"):
        alert_recipients()  # never "nobody to tell"
    with caplog.at_level(logging.INFO, logger="pipeline.dag_common"):
        on_task_failure(_failed_context())
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("FAILED renewal_daily.quality_gate for 2026-11-25" in m and "1 of 37" in m for m in errors)
    assert any("ALERT NOT E-MAILED" in m and "alert_recipients could not be read" in m for m in errors)


def test_reminder_recipients_that_cannot_be_read_fail_the_task(monkeypatch):
    from publish.email import recipients

    _broken_variable(monkeypatch)
    with pytest.raises(Exception, match="API_SERVER_ERROR"):
        recipients()
    monkeypatch.setenv("REMINDER_RECIPIENTS", '{"350100": "fz@example.org"')  # a bracket short
    with pytest.raises(ValueError, match=r"REMINDER_RECIPIENTS .* is not JSON"):
        recipients()
    monkeypatch.setenv("REMINDER_RECIPIENTS", '["fz@example.org"]')
    with pytest.raises(ValueError, match="must map centre codes"):
        recipients()
    monkeypatch.setenv("REMINDER_RECIPIENTS", '{"350100": "a@x.cn, b@x.cn"}')
    assert recipients() == {"350100": ["a@x.cn", "b@x.cn"]}
