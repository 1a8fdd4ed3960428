"""Shared fixtures: a small generated dataset, a real mock-feed HTTP server, and a warehouse built by the
real pipeline steps (ingest → dbt) without Airflow. Helpers that tests import live in tests/helpers.py."""

from __future__ import annotations

import os
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


# Tests that start Airflow, dbt or a pipeline build are `slow`: `make test-fast` (pytest -m "not slow") leaves
# them out. A module may also mark itself with `pytestmark = pytest.mark.slow`.
SLOW_FIXTURES = {"built", "exported", "published", "snapshots", "postgres", "reference", "two_runs"}
SLOW_MODULES = {"test_cohort", "test_end_to_end", "test_resilience"}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if SLOW_FIXTURES & set(item.fixturenames) or module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
