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
    for task in ["extract_feed", "load_centre_records", "verify_certificates", "quality_gate", "publish",
                 "publish_postgres", "report"]:
        assert task in ids, task
    for mart in ["renewal_eligibility", "batch_counts", "institution_flags", "review_sla", "reminders"]:
        assert any(t.startswith(f"dbt.{mart}") and t.endswith("run") for t in ids), mart
    assert dag.max_active_tasks == 1
    assert str(dag.timezone) in ("Asia/Shanghai", "Timezone('Asia/Shanghai')")
    publish = dag.get_task("publish")
    assert "quality_gate" in publish.upstream_task_ids
    gate = dag.get_task("quality_gate")
    assert all(t.startswith("dbt.") for t in gate.upstream_task_ids)
    assert dag.get_task("publish_postgres").upstream_task_ids == {"publish"}


def test_reminders_dag_runs_on_each_publication(dagbag):
    daily, reminders = dagbag.dags["renewal_daily"], dagbag.dags["renewal_reminders"]
    outlets = {a.name for a in daily.get_task("publish").outlets}
    assert outlets == {"renewal_published_marts"}
    assert "renewal_published_marts" in str(reminders.timetable.asset_condition)
    assert reminders.get_task("email_reminders").upstream_task_ids == {"export_reminders"}
    assert reminders.max_active_tasks == 1 and "as_of" in reminders.params
