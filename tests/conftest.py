"""Shared fixtures: a small generated dataset, a real mock-feed HTTP server, and a warehouse built by the
real pipeline steps (ingest → dbt) without Airflow. Helpers that tests import live in tests/helpers.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mock_feed.generate import generate_dataset
from pipeline.settings import Settings
from tests.helpers import AS_OF, RunningFeed, make_settings, run_pipeline_steps


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    generate_dataset(out, AS_OF, institutions=60, seed=7)
    return out


@pytest.fixture(scope="session")
def feed(dataset):
    running = RunningFeed(dataset)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def built(tmp_path_factory, dataset, feed) -> Settings:
    """A warehouse built once from the small dataset (ingest + dbt), before the gate."""
    settings = make_settings(tmp_path_factory.mktemp("built"), dataset, feed.url)
    run_pipeline_steps(settings)
    return settings


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server from Debian's packages (.ci/run installs them), started for the tests and
    stopped after. Yields a libpq DSN for a superuser."""
    from pgserver import postgres_bin, running_postgres

    bindir = postgres_bin()
    if bindir is None:
        if os.environ.get("REQUIRE_SYSTEM_PACKAGES"):
            pytest.fail(
                "PostgreSQL is required (REQUIRE_SYSTEM_PACKAGES) but /usr/lib/postgresql/*/bin is missing"
            )
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    with running_postgres(bindir) as dsn:
        yield dsn


# Test tiers are markers (pyproject.toml). `slow`: the test starts Airflow, Superset, a browser or a database
# server, or builds a warehouse with dbt; `make test-fast` (pytest -m "not slow") leaves it out. These fixtures do
# one of those: a test that uses one without the marker stops the collection, so that it cannot land in the
# fast tier unnoticed.
SLOW_FIXTURES = {
    "built",
    "exported",
    "published",
    "snapshots",
    "postgres",
    "reference",
    "two_runs",
    "short_soak",
}
# What a fast test may not start (a program run by subprocess): the collection cannot see a test body.
SLOW_PROGRAMS = {
    "airflow",
    "superset",
    "chromium",
    "initdb",
    "pg_ctl",
    "postgres",
    "docker",
    "podman",
    "make",
}
# The project's own program that is Airflow, run as `python -m <module>` (pipeline/commands.py)
SLOW_MODULES = {"pipeline.dags_test": "airflow"}


# The longest test files, longest first (`make test` on 2 cores: about 450, 310, 300, 220, 170, 125, 125, 110, 105,
# 95, 75 and 70 s): `make test` runs files in parallel, one worker each, whole, in this order (Makefile: PYTEST_XDIST),
# so that no long file starts last and runs alone at the end.
LONGEST_FIRST = [
    "test_dashboards",
    "test_operable",
    "test_soak",
    "test_crash_safety",
    "test_gate",
    "test_dbt",
    "test_resilience",
    "test_retention",
    "test_end_to_end",
    "test_check_scope",
    "test_feed_freshness",
    "test_hostile_values",
]


def pytest_collection_modifyitems(items):
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.module.__name__.rsplit(".", 1)[-1], len(rank)))
    unmarked = sorted(
        f"{item.nodeid} (uses {', '.join(sorted(SLOW_FIXTURES & set(item.fixturenames)))})"
        for item in items
        if SLOW_FIXTURES & set(item.fixturenames) and item.get_closest_marker("slow") is None
    )
    if unmarked:
        raise pytest.UsageError(
            "tests that start a slow fixture without @pytest.mark.slow:\n  " + "\n  ".join(unmarked)
        )


@pytest.fixture(autouse=True)
def _fast_tests_start_nothing_slow(request, monkeypatch):
    """A test without the slow marker that starts Airflow, Superset, a browser, a database server or make
    fails, naming the program; dbt only under the `dbt` marker (the rules' unit tests on an empty warehouse)."""
    if request.node.get_closest_marker("slow") is not None:
        return
    refused = SLOW_PROGRAMS if request.node.get_closest_marker("dbt") else SLOW_PROGRAMS | {"dbt"}
    original = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        argv = [str(a) for a in args] if isinstance(args, list | tuple) else str(args).split()
        program = Path(argv[0]).name
        if argv[1:2] == ["-m"] and len(argv) > 2:
            program = SLOW_MODULES.get(argv[2], program)
        if program in refused:
            raise pytest.fail.Exception(
                f"{request.node.nodeid} starts {program}: mark it slow"
                + (" (or dbt, when it runs dbt on an empty warehouse)" if program == "dbt" else "")
            )
        original(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
