"""The gate's checks, as code: across models, the feed's data, certificate lookups and volume before publication.

Each model's own contract (keys, codes against the seeds, relationships) is dbt's to test, staging's keys
included: README, Who checks what.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from dataclasses import dataclass

import great_expectations as gx
import jinja2

from pipeline.settings import DBT_PROJECT_DIR

E = gx.expectations

# docs/contract.md §3 (certificates.jsonl): Y employer or S other, 4 digits, province 35, 6-digit institution
# serial, 2-digit year, level 1–5, 6-digit serial.
CERTIFICATE_NO = r"^[YS][0-9]{4}35[0-9]{6}[0-9]{2}[1-5][0-9]{6}$"


@dataclass(frozen=True)
class Check:
    name: str
    # may use $as_of, $now (the pipeline's clock, ingest/clock.py), $max_drop, $changed_since (changed() below) and
    # $province (the province's centre code); `published` is the last publication,
    # attached read-only
    sql: str
    expectations: Callable[[], list[gx.expectations.Expectation]]
    needs_published: bool = False  # skipped (nothing to compare with) before the first publication


def changed(load_id: str) -> str:
    """SQL: the row (its `load_id` column) is of a load landed since the last passed check, or this is a full
    check ($changed_since is NULL). The row checks on the million-row certificate table check changed rows only;
    every row once a week (pipeline/check_scope.py). A check that depends on D's passing (counting plans) or on
    the clock (lookup freshness), or on other rows, checks every row every day."""
    loads = changed_loads("$changed_since::TIMESTAMPTZ")
    return f"($changed_since::TIMESTAMPTZ IS NULL OR {load_id} IN ({loads}))"


@functools.cache
def changed_loads(since: str) -> str:
    """SQL: the loads landed after `since` (SQL of type timestamptz), as the dbt macro changed_loads states it
    (dbt_project/macros/changed_loads.sql), rendered here with plain Jinja: the gate and dbt's tests on the
    changed rows must agree on which rows changed, so the rule is written once, there."""
    macros = jinja2.Environment(loader=jinja2.FileSystemLoader(DBT_PROJECT_DIR / "macros"), autoescape=False)
    template = "{% from 'changed_loads.sql' import changed_loads %}{{ changed_loads(since) }}"
    return macros.from_string(template).render(since=since).strip()


@functools.cache
def code_labels() -> tuple[tuple[str, str], ...]:
    """(code_type, code) of every row of the seed code_labels (dbt_project/seeds), the one list of each code set,
    read once."""
    with (DBT_PROJECT_DIR / "seeds" / "code_labels.csv").open(encoding="utf-8", newline="") as seed:
        return tuple((row["code_type"], row["code"]) for row in csv.DictReader(seed))


def codes(code_type: str) -> list[str]:
    """The codes of one code set in the seed's order: the feed's status values are checked against them, as dbt's
    in_code_set tests check the marts' codes."""
    found = [code for kind, code in code_labels() if kind == code_type]
    if not found:
        raise RuntimeError(f"the seed code_labels has no code of code set {code_type}")
    return found


# Volume sanity: a candidate with more than this share fewer institutions or certificates than the last
# publication is held back (a broken pull looks like mass abandonment). GATE_MAX_DROP overrides it.
MAX_DROP = 0.2

SUITES: list[Check] = [
    Check(
        "counting_plan_certificate_lookups",
        # R-CERT relies on a lookup answer for every certificate of a counting plan; a missing answer would
        # turn into a false 'incomplete_certificate_data' verdict, so it blocks publication instead.
        """SELECT c.certificate_no, c.last_checked_at
           FROM intermediate.int_certificates_with_latest_lookup c
           JOIN intermediate.int_plans_counted_in_period p USING (plan_no)
           WHERE p.is_counting""",
        lambda: [E.ExpectColumnValuesToNotBeNull(column="last_checked_at")],
    ),
    Check(
        "counting_plan_certificate_lookup_freshness",
        # ... and the answer must be recent: ingest/lookups.py re-checks found certificates after 30 days.
        """SELECT c.certificate_no,
                  date_diff('day', c.last_checked_at, $now) AS days_since_checked
           FROM intermediate.int_certificates_with_latest_lookup c
           JOIN intermediate.int_plans_counted_in_period p USING (plan_no)
           WHERE p.is_counting AND c.last_checked_at IS NOT NULL""",
        lambda: [E.ExpectColumnValuesToBeBetween(column="days_since_checked", min_value=0, max_value=31)],
    ),
    Check(
        "certificates",
        f"SELECT certificate_no, plan_no, institution_id FROM staging.stg_feed__certificates WHERE {changed('load_id')}",
        lambda: [
            E.ExpectColumnValuesToMatchRegex(column="certificate_no", regex=CERTIFICATE_NO),
            E.ExpectColumnValuesToNotBeNull(column="plan_no"),
        ],
    ),
    Check(
        "plans",
        # the statuses and levels are read from their one list, the seed code_labels
        """SELECT plan_no, institution_id, status, level, candidates, passed,
                  level IS NULL OR level::VARCHAR IN (SELECT code FROM seeds.code_labels WHERE code_type = 'level')
                      AS level_in_code_set,
                  passed <= candidates AS passed_within_candidates,
                  status <> 'completed' OR assessment_date <= $as_of AS completed_by_as_of
           FROM staging.stg_feed__plans""",
        lambda: [
            E.ExpectColumnValuesToBeInSet(column="status", value_set=codes("plan_status")),
            E.ExpectColumnValuesToBeInSet(column="level_in_code_set", value_set=[True]),
            E.ExpectColumnValuesToBeInSet(column="passed_within_candidates", value_set=[True]),
            E.ExpectColumnValuesToBeInSet(column="completed_by_as_of", value_set=[True]),
        ],
    ),
    Check(
        "institutions",
        # (institution type and supervising centre: dbt tests them against the seeds on renewal_eligibility,
        # which has a row for every institution, renewal_eligibility_covers_institutions below)
        """SELECT institution_id, status,
                  expires_on > registered_on AS expires_after_registration,
                  registered_on <= $as_of AS registered_by_as_of
           FROM staging.stg_feed__institutions""",
        lambda: [
            E.ExpectColumnValuesToBeInSet(column="status", value_set=codes("institution_status")),
            E.ExpectColumnValuesToBeInSet(column="expires_after_registration", value_set=[True]),
            E.ExpectColumnValuesToBeInSet(column="registered_by_as_of", value_set=[True]),
        ],
    ),
    Check(
        "plan_institutions",
        # referential integrity: every plan belongs to an institution of the feed
        """SELECT p.plan_no, i.institution_id AS known_institution
           FROM staging.stg_feed__plans p
           LEFT JOIN staging.stg_feed__institutions i USING (institution_id)""",
        lambda: [E.ExpectColumnValuesToNotBeNull(column="known_institution")],
    ),
    Check(
        "certificate_plans",
        # referential integrity and dates: every certificate belongs to a plan of the same institution, issued
        # on or after the assessment and not after D. Changed rows: the certificate or its plan changed (D only
        # moves forward between full checks, and a row issued by D stays so).
        f"""SELECT c.certificate_no, p.plan_no AS known_plan,
                  p.plan_no IS NULL OR c.institution_id = p.institution_id AS same_institution,
                  p.plan_no IS NULL OR c.issued_on >= p.assessment_date AS issued_after_assessment,
                  c.issued_on <= $as_of AS issued_by_as_of
           FROM staging.stg_feed__certificates c
           LEFT JOIN staging.stg_feed__plans p USING (plan_no)
           WHERE {changed("c.load_id")}
              OR c.plan_no IN (SELECT plan_no FROM staging.stg_feed__plans WHERE {changed("load_id")})""",
        lambda: [
            E.ExpectColumnValuesToNotBeNull(column="known_plan"),
            E.ExpectColumnValuesToBeInSet(column="same_institution", value_set=[True]),
            E.ExpectColumnValuesToBeInSet(column="issued_after_assessment", value_set=[True]),
            E.ExpectColumnValuesToBeInSet(column="issued_by_as_of", value_set=[True]),
        ],
    ),
    Check(
        "renewal_eligibility_keys",
        # every mart row is an institution of the feed (one row each: dbt's unique test)
        """SELECT e.institution_id, i.institution_id AS known_institution
           FROM marts.renewal_eligibility e
           LEFT JOIN staging.stg_feed__institutions i USING (institution_id)""",
        lambda: [E.ExpectColumnValuesToNotBeNull(column="known_institution")],
    ),
    Check(
        "renewal_eligibility_covers_institutions",
        """SELECT i.institution_id, e.institution_id AS in_mart
           FROM staging.stg_feed__institutions i
           LEFT JOIN marts.renewal_eligibility e USING (institution_id)""",
        lambda: [E.ExpectColumnValuesToNotBeNull(column="in_mart")],
    ),
    Check(
        "work_items_province_list",
        # the province's list holds every centre's rows
        """SELECT w.list_centre, w.institution_id, w.sort_order,
                  w.list_centre = $province OR EXISTS (
                      SELECT 1 FROM marts.work_items p
                      WHERE p.list_centre = $province AND p.institution_id = w.institution_id) AS on_province_list
           FROM marts.work_items w""",
        lambda: [E.ExpectColumnValuesToBeInSet(column="on_province_list", value_set=[True])],
    ),
    Check(
        "renewal_warnings",
        "SELECT institution_id, batches_needed >= 0 AS batches_needed_not_negative FROM marts.renewal_warnings",
        lambda: [E.ExpectColumnValuesToBeInSet(column="batches_needed_not_negative", value_set=[True])],
    ),
    Check(
        "volume_against_last_publication",
        """WITH candidate AS (
               SELECT (SELECT count(*) FROM staging.stg_feed__institutions) AS institutions,
                      (SELECT count(*) FROM staging.stg_feed__certificates) AS certificates
           )
           SELECT measure, now_count, published_count,
                  now_count >= published_count * (1 - $max_drop) AS within_allowed_drop
           FROM (SELECT 'institutions' AS measure, c.institutions AS now_count, p.institutions AS published_count
                 FROM candidate c, published.ops.publication p
                 UNION ALL
                 SELECT 'certificates', c.certificates, p.certificates
                 FROM candidate c, published.ops.publication p)""",
        lambda: [E.ExpectColumnValuesToBeInSet(column="within_allowed_drop", value_set=[True])],
        needs_published=True,
    ),
]
