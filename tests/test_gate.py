import hashlib
import shutil

import duckdb
import pytest

from expectations.gate import GateFailed, run_gate
from pipeline import steps
from tests.conftest import AS_OF, dbt_build


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def candidate(tmp_path, built):
    """A private copy of the built warehouse, already published once (the 'last good publication')."""
    from dataclasses import replace

    settings = replace(built, warehouse_dir=tmp_path / "warehouse", exports_dir=tmp_path / "exports")
    settings.warehouse_dir.mkdir()
    shutil.copy(built.warehouse_db, settings.warehouse_db)
    steps.quality_gate(AS_OF, settings=settings)
    steps.publish(AS_OF, settings=settings)
    return settings


def test_clean_data_passes(built, tmp_path):
    result = run_gate(built.warehouse_db, AS_OF.isoformat(), tmp_path / "gate")
    assert result.success and result.evaluated >= 15
    assert (tmp_path / "gate" / "validation_results.json").exists()


def plant_and_rebuild(settings, sql):
    con = duckdb.connect(str(settings.warehouse_db))
    con.execute(sql)
    con.close()
    result = dbt_build(settings, AS_OF, "--exclude", "resource_type:unit_test", "resource_type:test")
    assert result.returncode == 0, result.stdout[-3000:]


def test_missing_lookup_blocks_publication(candidate):
    before = sha(candidate.published_db)
    con = duckdb.connect(str(candidate.warehouse_db), read_only=True)
    victim = con.execute("""SELECT c.certificate_no FROM intermediate.int_certificates_with_latest_lookup c
                            JOIN intermediate.int_plans_counted_in_period p USING (plan_no)
                            WHERE p.is_counting ORDER BY 1 LIMIT 1""").fetchone()[0]
    con.close()
    plant_and_rebuild(candidate, f"DELETE FROM raw.certificate_lookups WHERE certificate_no = '{victim}'")
    with pytest.raises(GateFailed) as failure:
        steps.quality_gate(AS_OF, settings=candidate)
    message = str(failure.value)
    assert "counting_plan_certificate_lookups" in message and "1 unexpected" in message
    assert sha(candidate.published_db) == before


def test_malformed_certificate_number_blocks_publication(candidate):
    before = sha(candidate.published_db)
    plant_and_rebuild(candidate, """INSERT INTO raw.certificates
        SELECT load_id, page_no, json_merge_patch(item, '{"certificate_no": "X123"}') FROM raw.certificates LIMIT 1""")
    with pytest.raises(GateFailed, match=r"certificates: expect_column_values_to_match_regex .*X123"):
        steps.quality_gate(AS_OF, settings=candidate)
    assert sha(candidate.published_db) == before
