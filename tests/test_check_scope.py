"""The checks' scope: dbt's tests on the million-row models and the gate's certificate checks look at the rows
changed since the last passed check, and at every row once a week (pipeline/check_scope.py). A bad row among the
changed rows fails the day's check; one among the unchanged rows is caught by the weekly full check; clean data
passes both."""

import datetime as dt
import shutil
from dataclasses import replace

import duckdb
import pytest

from expectations.gate import GateFailed
from ingest.warehouse import connect
from pipeline import steps
from pipeline.check_scope import CheckScope, decide_scope, record_passed_check
from tests.helpers import AS_OF, run_dbt

DAY = dt.timedelta(days=1)


def _land(con, load_id: str, full_refresh: bool = False) -> None:
    con.execute(
        "INSERT INTO raw.feed_loads VALUES (?, 'certificates', ?, NULL, now(), now(), 1, 1, now())",
        [load_id, full_refresh],
    )


def _pass(con, as_of: dt.date, load_id: str) -> CheckScope:
    scope = decide_scope(con, as_of)
    record_passed_check(con, load_id, as_of, scope, 1)
    return scope


def test_full_on_the_first_run_then_changed_rows_then_full_a_week_after_the_last_full_check(tmp_path):
    con = connect(tmp_path / "warehouse.duckdb")
    assert decide_scope(con, AS_OF).full
    _land(con, "l1")
    assert _pass(con, AS_OF, "l1").full
    passed_at = con.execute("SELECT max(recorded_at) FROM raw.run_metrics").fetchone()[0]
    for days in range(1, 7):  # the last full check is 1..6 days before D: the changed rows only
        scope = decide_scope(con, AS_OF + days * DAY)
        assert not scope.full, days
        assert scope.changed_since == passed_at
    _land(con, "l2")
    assert not _pass(con, AS_OF + 3 * DAY, "l2").full  # a passed changed-rows check moves the time on ...
    assert decide_scope(con, AS_OF + 4 * DAY).changed_since > passed_at
    assert decide_scope(con, AS_OF + 7 * DAY).full  # ... but not the weekly full check: 7 days after the last
    assert decide_scope(con, AS_OF - DAY).full  # a backfill going back starts with a full check


def test_a_failed_check_leaves_its_rows_changed_and_a_full_refresh_checks_every_row(tmp_path):
    con = connect(tmp_path / "warehouse.duckdb")
    _land(con, "l1")
    _pass(con, AS_OF, "l1")
    since = decide_scope(con, AS_OF + DAY).changed_since
    _land(con, "l2")  # this run's checks fail: nothing recorded, so the next run still checks l2's rows
    assert decide_scope(con, AS_OF + 2 * DAY).changed_since == since
    _land(con, "l3", full_refresh=True)
    scope = decide_scope(con, AS_OF + 2 * DAY)
    assert scope.full
    assert "full refresh" in scope.reason


# ---- the real checks on a built warehouse: dbt's tests and the gate ----

ONE_CERTIFICATE = "(SELECT min(certificate_no) FROM staging.stg_feed__certificates)"
CHANGED_LOAD = "changed-load"


@pytest.fixture
def checked(built, tmp_path):
    """A private copy of the built warehouse whose checks passed in full for D, and a load landed since (the
    day's changed rows are the rows given its load id)."""
    settings = replace(built, warehouse_dir=tmp_path / "warehouse", exports_dir=tmp_path / "exports")
    settings.warehouse_dir.mkdir()
    shutil.copy(built.warehouse_db, settings.warehouse_db)
    assert steps.quality_gate(AS_OF, "first", settings=settings)["scope"] == "full_check"
    con = duckdb.connect(str(settings.warehouse_db))
    _land(con, CHANGED_LOAD)
    con.close()
    return settings


def _plant(settings, sql: str) -> None:
    con = duckdb.connect(str(settings.warehouse_db))
    con.execute(sql)
    con.close()


def _dbt_test(settings, as_of: dt.date, monkeypatch, model: str = "stg_feed__certificates"):
    scope = steps.check_scope(as_of, settings)
    monkeypatch.setenv("RENEWAL_CHECK_CHANGED_SINCE", scope.env_value())
    result = run_dbt(
        settings.warehouse_dir,
        "test",
        "--select",
        model,
        "--exclude",
        "resource_type:unit_test",
        as_of=as_of,
    )
    return scope, result


DUPLICATE = (
    "INSERT INTO staging.stg_feed__certificates SELECT * REPLACE ({load} AS load_id) "
    f"FROM staging.stg_feed__certificates WHERE certificate_no = {ONE_CERTIFICATE}"
)


@pytest.mark.slow
def test_dbt_clean_data_passes_the_changed_rows_and_the_full_check(checked, monkeypatch):
    _plant(
        checked,
        f"UPDATE staging.stg_feed__certificates SET load_id = '{CHANGED_LOAD}' WHERE certificate_no = {ONE_CERTIFICATE}",
    )
    for as_of in (AS_OF + DAY, AS_OF + 7 * DAY):
        scope, result = _dbt_test(checked, as_of, monkeypatch)
        assert scope.full == (as_of == AS_OF + 7 * DAY)
        assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.slow
def test_dbt_a_duplicate_key_among_the_changed_rows_fails_the_days_test(checked, monkeypatch):
    _plant(checked, DUPLICATE.format(load=f"'{CHANGED_LOAD}'"))
    scope, result = _dbt_test(checked, AS_OF + DAY, monkeypatch)
    assert not scope.full
    assert result.returncode != 0
    failed = [line for line in result.stdout.splitlines() if " FAIL " in line and "START" not in line]
    assert failed, result.stdout[-3000:]
    assert all(" unique_stg_feed__certificates_certificate_no " in line for line in failed), failed


@pytest.mark.slow
def test_dbt_a_duplicate_key_among_unchanged_rows_is_caught_by_the_weekly_full_check(checked, monkeypatch):
    _plant(checked, DUPLICATE.format(load="load_id"))  # both copies carry a load checked before
    scope, result = _dbt_test(checked, AS_OF + DAY, monkeypatch)
    assert not scope.full
    assert result.returncode == 0, result.stdout[-3000:]  # not a changed row: not seen
    scope, result = _dbt_test(checked, AS_OF + 7 * DAY, monkeypatch)
    assert scope.full
    assert result.returncode != 0
    assert " unique_stg_feed__certificates_certificate_no " in result.stdout


BAD_NUMBER = (
    "UPDATE staging.stg_feed__certificates SET certificate_no = 'X123'{load} WHERE certificate_no = {one}"
)


@pytest.mark.slow
def test_gate_clean_data_passes_the_changed_rows_and_the_full_check(checked):
    result = steps.quality_gate(AS_OF + DAY, "second", settings=checked)
    assert result["scope"] == "changed_rows_check"
    assert result["rows_checked"]["certificates"] == 0  # nothing was given the new load
    assert steps.quality_gate(AS_OF + 7 * DAY, "week", settings=checked)["scope"] == "full_check"


@pytest.mark.slow
def test_gate_a_bad_row_among_the_changed_rows_fails_the_days_check(checked):
    _plant(checked, BAD_NUMBER.format(load=f", load_id = '{CHANGED_LOAD}'", one=ONE_CERTIFICATE))
    with pytest.raises(GateFailed) as failure:
        steps.quality_gate(AS_OF + DAY, "second", settings=checked)
    assert "certificates: expect_column_values_to_match_regex" in str(failure.value)
    assert "X123" in str(failure.value)
    assert steps.check_scope(AS_OF + DAY, checked).full is False  # a failed check records nothing


@pytest.mark.slow
def test_gate_a_bad_row_among_unchanged_rows_is_caught_by_the_weekly_full_check(checked):
    _plant(checked, BAD_NUMBER.format(load="", one=ONE_CERTIFICATE))
    assert steps.quality_gate(AS_OF + DAY, "second", settings=checked)["scope"] == "changed_rows_check"
    with pytest.raises(GateFailed) as failure:
        steps.quality_gate(AS_OF + 7 * DAY, "week", settings=checked)
    assert "X123" in str(failure.value)
