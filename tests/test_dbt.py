"""dbt's own checks on the built warehouse: unit tests of the rules (boundary days) and data tests."""

from tests.conftest import AS_OF, dbt_build


def test_rule_unit_tests_pass(built):
    result = dbt_build(built, AS_OF, "--select", "test_type:unit", command="test")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "PASS=3 " in result.stdout


def test_as_of_is_required(built):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from pipeline.settings import DBT_PROJECT_DIR

    env = dict(os.environ, WAREHOUSE_DB=str(built.warehouse_db))
    result = subprocess.run([str(Path(sys.executable).parent / "dbt"), "run", "--profiles-dir", ".", "--select",
                             "renewal_eligibility", "--target-path", str(built.warehouse_dir / "t2")],
                            check=False, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "as_of" in result.stdout
