"""The gate's expectation suites, as code: what each check reads from the candidate warehouse and expects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import great_expectations as gx

E = gx.expectations

# CONTRACT §3: Y employer or S other, 4 digits, province 35, 6-digit institution serial, 2-digit year,
# level 1–5, 6-digit serial.
CERTIFICATE_NO = r"^[YS][0-9]{4}35[0-9]{6}[0-9]{2}[1-5][0-9]{6}$"

STAGES = ["terminated", "renewed", "rejected", "under_review", "abandoned", "grace_period", "overdue",
          "window_open", "not_yet_due"]
VERDICTS = ["not_accepted", "incomplete_certificate_data", "needs_written_explanation", "manual_review",
            "awaiting_incentive_evidence", "eligible"]
REASONS = ["rectification_unresolved", "no_incentive_evidence", "article14_case", "certificate_data_incomplete",
           "below_batch_threshold", "force_majeure_statement_filed", "incentive_evidence_pending",
           "early_application", "late_application", "occupation_change_in_freeze",
           "application_missing_added_occupations", "post_expiry_data", "outstanding_obligations"]
REMINDER_TYPES = ["window_opens_soon", "window_open", "overdue", "expiring_30d", "grace_period", "grace_ending",
                  "abandoned"]


@dataclass(frozen=True)
class Check:
    name: str
    sql: str
    expectations: Callable[[], list]


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
        "certificates",
        "SELECT certificate_no, plan_no, institution_id FROM staging.stg_feed__certificates",
        lambda: [
            E.ExpectColumnValuesToMatchRegex(column="certificate_no", regex=CERTIFICATE_NO),
            E.ExpectColumnValuesToBeUnique(column="certificate_no"),
            E.ExpectColumnValuesToNotBeNull(column="plan_no"),
        ],
    ),
    Check(
        "plans",
        "SELECT plan_no, institution_id, status FROM staging.stg_feed__plans",
        lambda: [
            E.ExpectColumnValuesToBeUnique(column="plan_no"),
            E.ExpectColumnValuesToBeInSet(column="status", value_set=["planned", "completed", "cancelled"]),
        ],
    ),
    Check(
        "renewal_eligibility",
        """SELECT institution_id, lifecycle_stage, renewal_verdict, expires_on, registered_on,
                  unnest(CASE WHEN reasons = '' THEN [NULL] ELSE string_split(reasons, ';') END) AS reason
           FROM marts.renewal_eligibility""",
        lambda: [
            E.ExpectColumnValuesToNotBeNull(column="institution_id"),
            E.ExpectColumnValuesToBeInSet(column="lifecycle_stage", value_set=STAGES),
            E.ExpectColumnValuesToBeInSet(column="renewal_verdict", value_set=VERDICTS),
            E.ExpectColumnValuesToBeInSet(column="reason", value_set=REASONS),
            E.ExpectColumnValuesToNotBeNull(column="expires_on"),
        ],
    ),
    Check(
        "renewal_eligibility_keys",
        "SELECT institution_id FROM marts.renewal_eligibility",
        lambda: [E.ExpectColumnValuesToBeUnique(column="institution_id")],
    ),
    Check(
        "reminders",
        "SELECT institution_id, reminder_type, first_due_on FROM marts.reminders",
        lambda: [
            E.ExpectCompoundColumnsToBeUnique(column_list=["institution_id", "reminder_type"]),
            E.ExpectColumnValuesToBeInSet(column="reminder_type", value_set=REMINDER_TYPES),
            E.ExpectColumnValuesToNotBeNull(column="first_due_on"),
        ],
    ),
    Check(
        "institution_flags",
        "SELECT institution_id, flag, first_held_on FROM marts.institution_flags",
        lambda: [
            E.ExpectCompoundColumnsToBeUnique(column_list=["institution_id", "flag"]),
            E.ExpectColumnValuesToNotBeNull(column="first_held_on"),
        ],
    ),
    Check(
        "review_sla",
        "SELECT application_id, review_due_on FROM marts.review_sla",
        lambda: [
            E.ExpectColumnValuesToBeUnique(column="application_id"),
            E.ExpectColumnValuesToNotBeNull(column="review_due_on"),
        ],
    ),
]
