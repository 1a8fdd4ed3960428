"""The scheduler that production and the bench start (pipeline/scheduler.py): Airflow's own, with the tasks'
libraries imported once for every task process that forks from it."""

import json
import subprocess
import sys

import pytest
import yaml

from pipeline.commands import python_module
from pipeline.scheduler import PRELOADED
from pipeline.settings import PROJECT_ROOT

PROJECT_PACKAGES = ("dags", "pipeline", "ingest", "expectations", "publish", "mock_feed")

PRELOAD_AND_REPORT = """
import json, logging, sys, threading
logging.basicConfig(level=logging.INFO)
from pipeline.scheduler import preload
preload()
print(json.dumps({
    "threads": [t.name for t in threading.enumerate()],
    "modules": sorted(sys.modules),
}))
"""


@pytest.fixture(scope="module")
def preloaded() -> tuple[dict, str]:
    """What a process holds after preload(), and what it logged."""
    run = subprocess.run(
        [sys.executable, "-c", PRELOAD_AND_REPORT], capture_output=True, text=True, check=True, cwd="/"
    )
    *logged, report = run.stdout.splitlines()  # Airflow's own log lines go to stdout
    return json.loads(report), "\n".join(logged) + run.stderr


@pytest.mark.slow
def test_the_scheduler_imports_the_libraries_and_none_of_the_projects_own_code(preloaded):
    report, _ = preloaded
    assert set(PRELOADED) <= set(report["modules"])
    # the project's modules stay out, so that an edit to them reaches the next task without a restart (the
    # packages pipeline/ and expectations/ hold no code: the latter says how Great Expectations is imported)
    own = [
        m
        for m in report["modules"]
        if m.split(".")[0] in PROJECT_PACKAGES and m not in ("pipeline", "pipeline.scheduler", "expectations")
    ]
    assert own == []


@pytest.mark.slow
def test_importing_the_libraries_starts_no_thread_that_a_fork_would_lose(preloaded):
    report, _ = preloaded
    assert report["threads"] == ["MainThread"]


@pytest.mark.slow
def test_great_expectations_says_nothing_when_it_is_imported(preloaded):
    _, logged = preloaded
    assert "great_expectations" not in logged, logged[:2000]


@pytest.mark.slow
def test_the_gate_imports_great_expectations_quietly_too():
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging; logging.basicConfig(level=logging.INFO); import expectations.suites",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Skipping registering function" not in run.stdout + run.stderr, run.stderr[:2000]


@pytest.mark.slow
def test_the_module_is_airflow_scheduler_with_its_arguments():
    run = subprocess.run(
        python_module("pipeline.scheduler", "--help"), capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Usage: airflow scheduler" in run.stdout


def test_production_starts_this_scheduler():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["airflow-scheduler"]["command"] == ["python", "-m", "pipeline.scheduler"]
