"""The rules of docs/rules.md in the fast tier: every dbt unit test (boundary days, one case per branch) on an
empty warehouse, and every policy number read from its seed, so that a change of policy is a deliberate edit
here. `make mutants` runs this file first against each mutation of the rule SQL and seeds."""

import csv
import os
import shutil
from pathlib import Path

import pytest

from pipeline.settings import DBT_PROJECT_DIR
from tests.helpers import build_empty_warehouse, dbt_unit_tests, run_dbt

pytestmark = pytest.mark.dbt

SEEDS = DBT_PROJECT_DIR / "seeds"


@pytest.fixture(scope="session")
def empty_warehouse(tmp_path_factory) -> Path:
    """The raw layer with no rows and every model built `--empty` (about 10 s). `make mutants` builds it once and
    passes it in RULES_EMPTY_WAREHOUSE: a mutation changes a model's logic, not the columns the tests read."""
    folder = tmp_path_factory.mktemp("rules")
    prebuilt = os.environ.get("RULES_EMPTY_WAREHOUSE")
    if prebuilt:
        shutil.copy(Path(prebuilt) / "warehouse.duckdb", folder / "warehouse.duckdb")
        return folder
    built = build_empty_warehouse(folder)
    assert built.returncode == 0, built.stdout[-4000:]
    return folder


@pytest.fixture(scope="session")
def unit_tests_run(empty_warehouse):
    """Every dbt unit test; on `make mutants`' prebuilt warehouse, after int_working_days is rebuilt from its
    current SQL (its spine is not a ref, so `--empty` leaves it whole: every year estimated, as no official
    calendar is loaded). A warehouse built here has it from the current SQL already (a dbt run less, ~5 s)."""
    if os.environ.get("RULES_EMPTY_WAREHOUSE"):
        calendar = run_dbt(empty_warehouse, "run", "--empty", "--select", "int_working_days")
        assert calendar.returncode == 0, calendar.stdout[-3000:]
    return run_dbt(empty_warehouse, "test", "--select", "test_type:unit")


def test_every_rule_unit_test_passes(unit_tests_run):
    assert unit_tests_run.returncode == 0, unit_tests_run.stdout[-6000:]
    assert f"PASS={len(dbt_unit_tests())} " in unit_tests_run.stdout


def test_r_sla_a_year_without_calendar_data_is_monday_to_friday_minus_fixed_holidays(
    empty_warehouse, unit_tests_run
):
    import datetime as dt

    import duckdb

    con = duckdb.connect(str(empty_warehouse / "warehouse.duckdb"), read_only=True)
    try:
        days = dict(
            con.execute("""SELECT calendar_day, is_workday FROM intermediate.int_working_days
                                   WHERE year(calendar_day) = 2028 AND is_estimate""").fetchall()
        )
    finally:
        con.close()
    assert len(days) == 366
    holidays = {dt.date(2028, m, d) for m, d in [(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)]}
    for day, is_workday in days.items():
        assert is_workday == (day.isoweekday() <= 5 and day not in holidays), day


def seed(name: str) -> list[dict]:
    with open(SEEDS / f"{name}.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# docs/rules.md, "Policy parameters", and the reminder lead times of R-REMIND: the notice's numbers.
POLICY = {
    "window_days": ("90", "R-DATES"),
    "grace_days": ("60", "R-DATES"),
    "min_batches": ("6", "R-BATCH"),
    "review_working_days": ("30", "R-SLA"),
    "window_opens_soon_days": ("30", "R-REMIND"),
    "expiring_days": ("30", "R-REMIND"),
    "grace_ending_days": ("15", "R-REMIND"),
    "abandoned_notice_days": ("30", "R-REMIND"),
    # not in the notice: docs/rules.md R-WARN and R-WORK (the province's tasks: "within the last 30 days")
    "warning_lead_days": ("180", "R-WARN"),
    "review_due_soon_working_days": ("10", "R-WORK"),
    "new_letter_task_days": ("30", "R-WORK"),
    "termination_report_days": ("30", "R-WORK"),
}


@pytest.mark.parametrize("parameter", sorted(POLICY))
def test_policy_number_is_the_notices(parameter):
    rows = {r["parameter"]: r for r in seed("renewal_policy")}
    value, rule = POLICY[parameter]
    assert parameter in rows, f"{parameter} is missing from seeds/renewal_policy.csv"
    assert (rows[parameter]["value"], rows[parameter]["rule_id"]) == (value, rule), (
        f"{parameter} changed: a change of policy must be a deliberate edit to this test"
    )


def test_every_policy_parameter_is_pinned_and_read_by_the_models():
    parameters = {r["parameter"] for r in seed("renewal_policy")}
    assert parameters <= set(POLICY) | EXTRA_POLICY, f"unpinned policy parameters: {parameters - set(POLICY)}"
    model = (DBT_PROJECT_DIR / "models" / "intermediate" / "int_policy_parameters.sql").read_text()
    for parameter in parameters:
        assert f"'{parameter}'" in model, f"int_policy_parameters does not expose {parameter}"


EXTRA_POLICY: set[str] = set()


def test_cohort_override_is_the_notices():
    """首批企业…应于2022年12月31日之前提出延期备案申请; the window opens with the notice (2022-12-15)."""
    assert seed("renewal_cohort_overrides") == [
        {
            "cohort": "first_enterprise_batch",
            "window_opens_on": "2022-12-15",
            "apply_by": "2022-12-31",
            "notice_text": "我省首批企业职业技能等级评价机构应于2022年12月31日之前提出延期备案申请",
        }
    ]


def test_reminder_types_are_r_remind_with_their_audience_and_deadline():
    types = {r["reminder_type"]: (r["audience"], r["deadline_kind"]) for r in seed("reminder_types")}
    assert types == {
        "window_opens_soon": ("institution", "window_opens_on"),
        "window_open": ("institution", "apply_by"),
        "overdue": ("institution_and_centre", "grace_ends_on"),
        "expiring_30d": ("institution", "apply_by"),
        "grace_period": ("institution", "grace_ends_on"),
        "grace_ending": ("institution", "grace_ends_on"),
        "abandoned": ("supervising_centre", ""),
    }


def test_every_mutation_of_make_mutants_still_applies():
    """Each mutation finds its text exactly once, so a refactor of the rule SQL (sqlfluff's layout included)
    cannot quietly leave `make mutants` testing nothing."""
    from tests.mutation.run import ROOT, load_mutations

    stale = [
        f"{m.line} {m.file}: {m.old!r}"
        for m in load_mutations()
        if (ROOT / m.file).read_text(encoding="utf-8").count(m.old) != 1
    ]
    assert not stale, "\n".join(stale)
