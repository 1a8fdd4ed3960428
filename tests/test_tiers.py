"""Test tiers are markers: a test that uses a fixture starting a server, Airflow or a warehouse build without
`@pytest.mark.slow` stops the collection; a fast test that starts such a program fails, naming it."""

from pathlib import Path

import pytest

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")


def test_a_slow_fixture_without_the_marker_stops_the_collection(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_unmarked="""
import pytest

def test_unmarked(postgres):
    pass

@pytest.mark.slow
def test_marked(postgres):
    pass
"""
    )
    result = pytester.runpytest_inprocess("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_unmarked.py::test_unmarked (uses postgres)*"])
    assert "test_marked" not in result.stderr.str()


def test_a_fast_test_that_starts_a_slow_program_fails_naming_it(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_starts="""
import subprocess
import pytest

def test_starts_superset():
    subprocess.run(["/opt/somewhere/bin/superset", "run"])

def test_starts_dbt():
    subprocess.run(["dbt", "build"])

@pytest.mark.dbt
def test_dbt_under_its_marker():
    with pytest.raises(FileNotFoundError):  # allowed: it gets as far as looking for the program
        subprocess.run(["/nonexistent/dbt", "--version"])

def test_starts_python():
    subprocess.run(["true"], check=True)

def test_starts_airflow_as_a_module():
    subprocess.run(["/usr/bin/python3", "-m", "pipeline.dags_test", "plan.json"])
"""
    )
    result = pytester.runpytest_subprocess("-q")  # its own process: this test's own guard stays out of it
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(["*test_starts_airflow_as_a_module starts airflow: mark it slow*"])
    result.stdout.fnmatch_lines(["*test_starts_superset starts superset: mark it slow*"])
    result.stdout.fnmatch_lines(["*test_starts_dbt starts dbt: mark it slow (or dbt*"])
