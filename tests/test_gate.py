"""The write-audit-publish gate: clean data passes; a planted bad row of each checked category fails the gate,
names the check, and leaves the last good publication byte-identical. A bad row against a model's own contract
(a key, a code) fails that model's dbt test instead, which stops the run before the gate (README: Who checks
what)."""

import hashlib
import shutil
from dataclasses import replace

import duckdb
import pytest

from expectations.gate import GateFailed, run_gate
from ingest import clock
from pipeline import steps
from tests.helpers import AS_OF, dbt_build, private_copy


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def published(tmp_path_factory, built):
    """A private copy of the built warehouse that passed the gate and was published once."""
    settings = private_copy(built, tmp_path_factory.mktemp("published"))
    steps.quality_gate(AS_OF, "first", settings=settings)
    steps.publish(AS_OF, settings=settings)
    return settings


@pytest.mark.slow
def test_clean_data_passes_and_keeps_results_and_data_docs(published):
    steps.quality_gate(AS_OF, "second", settings=published)  # now with the volume check against the first
    gate = published.warehouse_dir / "gate"
    assert (gate / AS_OF.isoformat() / "first" / "validation_results.json").exists()
    assert (gate / AS_OF.isoformat() / "second" / "validation_results.json").exists()
    index = (gate / "data_docs" / "index.html").read_text()
    assert "volume_against_last_publication" in index
    assert "renewal_eligibility" in index


LATER = "TIMESTAMPTZ '2030-01-01T00:00:00+08:00'"  # a newer version, which staging keeps
COUNTING_CERTIFICATE = """(SELECT c.certificate_no FROM intermediate.int_certificates_with_latest_lookup c
                           JOIN intermediate.int_plans_counted_in_period p USING (plan_no)
                           WHERE p.is_counting ORDER BY 1 LIMIT 1)"""
KEYS = {"certificates": "certificate_no", "plans": "plan_no", "institutions": "institution_id"}


def plant(table: str, where: str = "true", **values: str) -> str:
    """SQL that lands one more version of the first row of a raw feed table (by key), with `values` (SQL) set."""
    replaced = ", ".join(f"{value} AS {column}" for column, value in {"load_id": "'bad'", **values}.items())
    return f"INSERT INTO raw.{table} SELECT * REPLACE ({replaced}) FROM raw.{table} WHERE {where} ORDER BY {KEYS[table]} LIMIT 1"


PLANTED = {
    # category: (SQL planting one bad row in the candidate, the check that must fail, expected text)
    "certificate number form": (plant("certificates", certificate_no="'X123'"), "certificates", "X123"),
    "plan without institution": (
        plant("plans", "status = 'completed'", plan_no="'PX-ORPHAN'", institution_id="'99999999'"),
        "plan_institutions",
        "plan_no=PX-ORPHAN (known_institution=None)",
    ),
    "certificate without plan": (
        plant("certificates", plan_no="'NO-SUCH-PLAN'", updated_at=LATER),
        "certificate_plans",
        "known_plan",
    ),
    "passed above candidates": (
        plant("plans", "status = 'completed'", passed="999", candidates="10", updated_at=LATER),
        "plans",
        "passed_within_candidates",
    ),
    "level outside the seed": (
        plant("plans", "status = 'completed'", level="7", updated_at=LATER),
        "plans",
        "level_in_code_set",
    ),
    "issued before assessment": (
        plant("certificates", issued_on="DATE '2001-01-01'", updated_at=LATER),
        "certificate_plans",
        "issued_after_assessment",
    ),
    "expiry not after registration": (
        plant("institutions", expires_on="registered_on", updated_at=LATER),
        "institutions",
        "expires_after_registration",
    ),
    "date after the as-of date": (
        plant("certificates", issued_on="DATE '2027-06-01'", updated_at=LATER),
        "certificate_plans",
        "issued_by_as_of",
    ),
    "lookup coverage": (
        (
            f"UPDATE intermediate.int_all_certificates_with_latest_lookup SET last_checked_at = NULL "
            f"WHERE certificate_no = {COUNTING_CERTIFICATE}"
        ),
        "counting_plan_certificate_lookups",
        "1 unexpected",
    ),
    "lookup freshness": (
        (
            f"UPDATE intermediate.int_all_certificates_with_latest_lookup SET last_checked_at = now() - INTERVAL 40 DAY "
            f"WHERE certificate_no = {COUNTING_CERTIFICATE}"
        ),
        "counting_plan_certificate_lookup_freshness",
        "days_since_checked",
    ),
    "one row per institution": (
        (
            "DELETE FROM marts.renewal_eligibility WHERE institution_id = "
            "(SELECT min(institution_id) FROM marts.renewal_eligibility)"
        ),
        "renewal_eligibility_covers_institutions",
        "in_mart",
    ),
    "volume drop": (
        "DELETE FROM raw.certificates WHERE hash(certificate_no) % 2 = 0",
        "volume_against_last_publication",
        "within_allowed_drop",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("category", PLANTED)
def test_planted_bad_row_fails_the_gate_and_publishes_nothing(category, published, tmp_path):
    sql, check, text = PLANTED[category]
    candidate = replace(published, warehouse_dir=tmp_path)
    shutil.copy(published.warehouse_db, candidate.warehouse_db)
    shutil.copy(published.published_db, candidate.published_db)
    before = sha(candidate.published_db)
    con = duckdb.connect(str(candidate.warehouse_db))
    con.execute(sql)
    con.close()
    if "raw." in sql:  # raw changed under staging (the volume drop deletes rows): staging is rebuilt from raw
        result = dbt_build(candidate, AS_OF, "--select", "staging", "--full-refresh", command="run")
        assert result.returncode == 0, result.stdout[-3000:]
    with pytest.raises(
        GateFailed
    ) as failure:  # and publish, which runs only after the gate passed, never runs
        run_gate(candidate.warehouse_db, AS_OF.isoformat(), published_db=candidate.published_db)
    failed = [line for line in str(failure.value).splitlines() if line.startswith(f"  - {check}: ")]
    assert failed, str(failure.value)
    assert any(text in line for line in failed), str(failure.value)
    assert sha(candidate.published_db) == before


@pytest.mark.slow
def test_the_lookups_age_on_the_pipelines_clock(published, tmp_path, monkeypatch):
    """Forty days on, by the pipeline's clock (ingest/clock.py), the same lookup answers are too old: the gate reads
    their age on the clock the run stamped them with, not on the wall clock."""
    candidate = replace(published, warehouse_dir=tmp_path)
    shutil.copy(published.warehouse_db, candidate.warehouse_db)
    shutil.copy(published.published_db, candidate.published_db)
    run_gate(candidate.warehouse_db, AS_OF.isoformat(), published_db=candidate.published_db)
    monkeypatch.setenv(clock.OFFSET_ENV, str(40 * 86400))
    with pytest.raises(GateFailed, match="counting_plan_certificate_lookup_freshness"):
        run_gate(candidate.warehouse_db, AS_OF.isoformat(), published_db=candidate.published_db)


ONE_ELIGIBILITY_ROW = "(SELECT min(institution_id) FROM marts.renewal_eligibility)"

PLANTED_FOR_DBT = {
    # category: (SQL planting one bad row in a built mart, the mart, the dbt test that must fail)
    "key uniqueness": (
        "INSERT INTO marts.reminders SELECT * FROM marts.reminders LIMIT 1",
        "reminders",
        "unique_combination_reminders_institution_id__reminder_type",
    ),
    "stage outside its code set": (
        f"UPDATE marts.renewal_eligibility SET lifecycle_stage = 'expired' WHERE institution_id = {ONE_ELIGIBILITY_ROW}",
        "renewal_eligibility",
        "in_code_set_renewal_eligibility_lifecycle_stage__lifecycle_stage",
    ),
    "reason outside the seed": (
        f"UPDATE marts.renewal_eligibility SET reasons = 'article14_case;no_such_reason' "
        f"WHERE institution_id = {ONE_ELIGIBILITY_ROW}",
        "renewal_eligibility",
        "in_code_set_renewal_eligibility_reason__reasons___",
    ),
    "unknown supervising centre": (
        f"UPDATE marts.renewal_eligibility SET supervising_centre = '359900' WHERE institution_id = {ONE_ELIGIBILITY_ROW}",
        "renewal_eligibility",
        "relationships_renewal_eligibility_supervising_centre__supervising_centre__ref_supervising_centres_",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("category", PLANTED_FOR_DBT)
def test_planted_bad_row_fails_the_marts_dbt_test(category, published, tmp_path):
    """The mart's data tests passed on the built warehouse (`built` runs them); with the planted row exactly the
    named test fails, so dbt_build fails and neither the gate nor publication runs."""
    sql, mart, test = PLANTED_FOR_DBT[category]
    candidate = replace(published, warehouse_dir=tmp_path)
    shutil.copy(published.warehouse_db, candidate.warehouse_db)
    con = duckdb.connect(str(candidate.warehouse_db))
    con.execute(sql)
    con.close()
    result = dbt_build(
        candidate, AS_OF, "--select", mart, "--exclude", "resource_type:unit_test", command="test"
    )
    assert result.returncode != 0, result.stdout[-3000:]
    failed = [line for line in result.stdout.splitlines() if " FAIL " in line and "START" not in line]
    assert failed, result.stdout[-3000:]
    assert all(f" {test} " in line for line in failed), failed


def test_narrowing_to_suspects_never_hides_a_row_gx_would_fail():
    """GX judges only the rows DuckDB flags as suspects (expectations/gate.py). For every expectation type the
    suites use, GX must give the same verdict and unexpected count on the suspects as on every row."""
    import great_expectations as gx

    from expectations.gate import SUSPECT_SQL, suspects_sql
    from expectations.suites import SUITES

    E = gx.expectations
    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT * FROM (VALUES
        (1, 'Y123435000001243000001', 'a', 5, true, 'x'), (2, 'Y123435000001243000001', 'b', 0, true, 'x'),
        (3, 'bad-number', 'a', 40, false, 'y'), (4, NULL, NULL, NULL, NULL, NULL),
        (5, 'S123435000001245000002', 'c', -1, true, 'z'), (6, 'S123435000001245000003', 'c', 31, NULL, 'z'))
        t(id, no, code, days, ok, grp)""")
    cases = {
        "ExpectColumnValuesToNotBeNull": E.ExpectColumnValuesToNotBeNull(column="no"),
        "ExpectColumnValuesToBeInSet": E.ExpectColumnValuesToBeInSet(column="ok", value_set=[True]),
        "ExpectColumnValuesToBeBetween": E.ExpectColumnValuesToBeBetween(
            column="days", min_value=0, max_value=31
        ),
        "ExpectColumnValuesToMatchRegex": E.ExpectColumnValuesToMatchRegex(
            column="no", regex=r"^[YS][0-9]{4}35"
        ),
        "ExpectColumnValuesToBeUnique": E.ExpectColumnValuesToBeUnique(column="code"),
        "ExpectCompoundColumnsToBeUnique": E.ExpectCompoundColumnsToBeUnique(column_list=["code", "grp"]),
    }
    used = {type(e).__name__ for check in SUITES for e in check.expectations()}
    assert used <= set(cases) == set(SUSPECT_SQL)
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas("p")
        .add_dataframe_asset("t")
        .add_batch_definition_whole_dataframe("whole")
    )
    text_set = E.ExpectColumnValuesToBeInSet(column="code", value_set=["a", "c"])
    for name, expectation in [*cases.items(), ("text set", text_set)]:
        everything = con.execute("SELECT * FROM t").df()
        sql, params = suspects_sql("SELECT * FROM t", [expectation])
        suspects = con.execute(sql, params).df()
        full = batch.get_batch(batch_parameters={"dataframe": everything}).validate(expectation)
        narrowed = batch.get_batch(batch_parameters={"dataframe": suspects}).validate(expectation)
        assert not full.success, f"{name}: the table must contain rows this expectation fails"
        assert (narrowed.success, narrowed.result.get("unexpected_count")) == (
            full.success,
            full.result.get("unexpected_count"),
        ), name
        assert len(suspects) < len(everything), f"{name}: nothing was narrowed away"
