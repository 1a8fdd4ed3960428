"""A run for dates in 2022–2023, where the cohort override (首批企业: apply by 2022-12-31) applies."""

import datetime as dt

import duckdb
import pytest

from mock_feed.generate import generate_dataset
from tests.helpers import DBT_SKIP_TESTS, RunningFeed, dbt_build, make_settings, run_pipeline_steps


def cohort_rows(settings, sql):
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_cohort_override_in_december_2022_and_overdue_in_january_2023(tmp_path):
    d1, d2 = dt.date(2022, 12, 20), dt.date(2023, 1, 5)
    generate_dataset(tmp_path / "data", d1, institutions=40, seed=11)
    feed = RunningFeed(tmp_path / "data")
    try:
        settings = make_settings(tmp_path, tmp_path / "data", feed.url)
        run_pipeline_steps(settings, d1, data_tests=False)
    finally:
        feed.stop()
    cohort = cohort_rows(
        settings,
        """SELECT institution_id, expires_on, window_opens_on, apply_by, lifecycle_stage
                                      FROM marts.renewal_eligibility WHERE cohort = 'first_enterprise_batch'""",
    )
    assert cohort
    for _, expires_on, window_opens_on, apply_by, stage in cohort:
        assert window_opens_on == dt.date(2022, 12, 15)
        assert apply_by == min(dt.date(2022, 12, 31), expires_on)  # never later than expiry
        assert stage in ("window_open", "under_review", "renewed", "rejected", "terminated")

    assert dbt_build(settings, d2, *DBT_SKIP_TESTS).returncode == 0
    later = cohort_rows(
        settings,
        """SELECT e.institution_id, e.expires_on, e.lifecycle_stage, r.first_due_on
                                     FROM marts.renewal_eligibility e
                                     LEFT JOIN marts.reminders r
                                       ON r.institution_id = e.institution_id AND r.reminder_type = 'overdue'
                                     WHERE e.cohort = 'first_enterprise_batch'""",
    )
    overdue = [r for r in later if r[2] == "overdue"]
    assert overdue, later
    for _, expires_on, _, first_due_on in overdue:
        assert expires_on >= d2
        assert first_due_on == dt.date(2023, 1, 1)
    for _, expires_on, stage, _ in later:
        if expires_on < d2 and stage not in ("terminated", "renewed", "rejected", "under_review"):
            assert stage == "grace_period"
