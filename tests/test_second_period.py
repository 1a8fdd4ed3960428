"""R-APP end to end: an institution in its second registration period. Nothing of the earlier period (the
application that renewed it, its plans, an unfinished rectification) may reach a reason, a batch count,
review_sla or a reminder."""

import csv
import datetime as dt
import json

import duckdb
import pytest

from mock_feed.generate import generate_dataset
from tests.helpers import RunningFeed, make_settings, run_pipeline_steps

pytestmark = pytest.mark.slow

AS_OF = dt.date(2026, 11, 25)
INSTITUTION = "35009901"  # renewed in 2023, applied again in September 2026
ONLY_PREVIOUS = "35009902"  # renewed in 2023, has not applied again yet
PREVIOUS_APPLICATION, NEW_APPLICATION = "XQ202300901", "XQ202600901"
PREVIOUS_NOTICE = "ZG2023-0901"


def append_jsonl(path, rows):
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def append_csv(path, rows):
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    with open(path, "a", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, header).writerows(rows)


def plan(no, assessed_on, passed):
    return {
        "plan_no": no,
        "institution_id": INSTITUTION,
        "occupation_code": "6-20-03-05",
        "occupation_name": "工具钳工",
        "work_type": None,
        "level": 4,
        "assessment_date": assessed_on,
        "status": "completed",
        "candidates": passed + 1,
        "passed": passed,
        "certificates_online": True,
        "updated_at": f"{assessed_on}T10:00:00+08:00",
    }


def renewed_institution(institution_id, name, number, district):
    """An institution of 福州 whose feed record shows its second period, 2023-12-01 … 2026-11-30."""
    return {
        "institution_id": institution_id,
        "name": name,
        "institution_type": "social_org",
        "registration_no": f"闽技鉴备〔2023〕{number}号",
        "supervising_centre": "350100",
        "region_code": "350102",
        "registered_on": "2023-12-01",
        "expires_on": "2026-11-30",
        "cohort": None,
        "status": "active",
        "responsible_person": "林某",
        "responsible_phone": f"05910000{number}",
        "contact_person": "陈某",
        "contact_phone": f"05911000{number}",
        "email": f"p{number}@example.com.cn",
        "address": f"福建省福州市{district}",
        "updated_at": "2023-12-01T09:00:00+08:00",
    }


def second_period_institution(data):
    """Period 1 ran 2020-12-01..2023-11-30 and was renewed on an application of 2023-10-20; the feed shows
    period 2, 2023-12-01..2026-11-30, whose window opened 2026-09-01."""
    append_jsonl(
        data / "institutions.jsonl",
        [
            renewed_institution(INSTITUTION, "福州第二期技能评价中心", "0901", "鼓楼区"),
            renewed_institution(ONLY_PREVIOUS, "福州续期一次技能评价中心", "0902", "台江区"),
        ],
    )
    append_jsonl(
        data / "registered_occupations.jsonl",
        [
            {
                "institution_id": INSTITUTION,
                "occupation_code": "6-20-03-05",
                "occupation_name": "工具钳工",
                "work_type": None,
                "registered_on": "2023-12-01",
                "updated_at": "2023-12-01T09:00:00+08:00",
            }
        ],
    )
    # the previous period's plans (outside the current period) and six of the current one, two certificates each
    current = [plan(f"PJ20240099010{i}", f"2024-0{i}-15", 2) for i in range(1, 7)]
    append_jsonl(
        data / "plans.jsonl",
        [plan("PJ2022009901901", "2022-05-10", 0), plan("PJ2023009901902", "2023-06-10", 0), *current],
    )
    certificates = []
    for i, p in enumerate(current, start=1):
        for k in (1, 2):
            serial = f"{i * 10 + k:06d}"
            certificates.append(
                {
                    "certificate_no": f"S917635009901244{serial}",
                    "plan_no": p["plan_no"],
                    "institution_id": INSTITUTION,
                    "occupation_code": "6-20-03-05",
                    "level": 4,
                    "issued_on": p["assessment_date"][:8] + "20",
                    "holder_name": "测试人",
                    "holder_id_no": "35010219900101123X",
                    "updated_at": p["assessment_date"] + "T12:00:00+08:00",
                }
            )
    append_jsonl(data / "certificates.jsonl", certificates)
    records = data / "centre_records"
    append_csv(
        records / "renewal_applications.csv",
        [
            # the application that renewed period 1: received and approved before period 2 began
            {
                "application_id": PREVIOUS_APPLICATION,
                "institution_id": INSTITUTION,
                "received_on": "2023-10-20",
                "incentive_evidence": "true",
                "force_majeure_statement": "false",
                "occupation_codes": "",
                "review_result": "approved",
                "review_completed_on": "2023-11-20",
            },
            # this period's: its 30 working days run over Mid-Autumn and National Day 2026 and the make-up Sunday
            {
                "application_id": NEW_APPLICATION,
                "institution_id": INSTITUTION,
                "received_on": "2026-09-15",
                "incentive_evidence": "true",
                "force_majeure_statement": "false",
                "occupation_codes": "",
                "review_result": "",
                "review_completed_on": "",
            },
            {
                "application_id": "XQ202300902",
                "institution_id": ONLY_PREVIOUS,
                "received_on": "2023-11-30",
                "incentive_evidence": "true",
                "force_majeure_statement": "false",
                "occupation_codes": "",
                "review_result": "approved",
                "review_completed_on": "2023-11-30",
            },
        ],
    )
    append_csv(
        records / "rectification_notices.csv",
        [
            {
                "notice_id": PREVIOUS_NOTICE,
                "institution_id": INSTITUTION,
                "issued_on": "2023-05-01",
                "due_on": "2023-06-01",
                "completed_on": "",
            }
        ],
    )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("second-period")
    generate_dataset(tmp / "data", AS_OF, institutions=6, seed=5)
    second_period_institution(tmp / "data")
    feed = RunningFeed(tmp / "data")
    try:
        settings = make_settings(tmp, tmp / "data", feed.url)
        run_pipeline_steps(settings, AS_OF)
    finally:
        feed.stop()
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    yield con
    con.close()


def test_r_app_second_period_institution_is_judged_on_its_current_period_only(warehouse):
    stage, batches, all_queryable, verdict, reasons = warehouse.execute(
        """SELECT lifecycle_stage, batch_count, certificates_all_queryable, renewal_verdict, reasons
           FROM marts.renewal_eligibility WHERE institution_id = ?""",
        [INSTITUTION],
    ).fetchone()
    assert (stage, batches, all_queryable, verdict) == ("under_review", 6, True, "eligible")
    assert "early_application" not in reasons
    assert "rectification_unresolved" not in reasons
    assert reasons == ""


def test_r_app_renewed_institution_without_a_new_application_has_no_early_application(warehouse):
    stage, reasons, application = warehouse.execute(
        """SELECT e.lifecycle_stage, e.reasons, s.application_id
           FROM marts.renewal_eligibility e LEFT JOIN marts.review_sla s USING (institution_id)
           WHERE e.institution_id = ?""",
        [ONLY_PREVIOUS],
    ).fetchone()
    assert stage == "window_open"
    assert "early_application" not in reasons.split(";")
    assert application is None


def test_r_sla_second_period_review_over_mid_autumn_and_national_day(warehouse):
    rows = warehouse.execute(
        """SELECT application_id, review_due_on, review_due_is_estimate, review_overdue, days_overdue
           FROM marts.review_sla WHERE institution_id = ?""",
        [INSTITUTION],
    ).fetchall()
    # 30th working day after Tue 15 Sep 2026: Sun 20 Sep and Sat 10 Oct work, 25 Sep and 1–7 Oct are off
    assert rows == [(NEW_APPLICATION, dt.date(2026, 11, 2), False, True, 23)]


def test_nothing_of_the_earlier_period_reaches_any_mart(warehouse):
    marts = [
        r[0]
        for r in warehouse.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'"
        ).fetchall()
    ]
    assert {"renewal_eligibility", "review_sla", "reminders", "batch_counts", "evaluation_plans"} <= set(
        marts
    )
    for mart in marts:
        text = " ".join(
            str(v) for row in warehouse.execute(f'SELECT * FROM marts."{mart}"').fetchall() for v in row
        )
        for earlier in (
            PREVIOUS_APPLICATION,
            "XQ202300902",
            PREVIOUS_NOTICE,
            "PJ2022009901901",
            "PJ2023009901902",
        ):
            assert earlier not in text, f"{earlier} (earlier period) reached marts.{mart}"
    (years,) = warehouse.execute(
        "SELECT list(DISTINCT assessment_year ORDER BY assessment_year) FROM marts.batch_counts WHERE institution_id = ?",
        [INSTITUTION],
    ).fetchone()
    assert years == [2024]
