"""Shared fixtures: a small generated dataset, a real mock-feed HTTP server, and a warehouse built by the
real pipeline steps (ingest → dbt → gate) without Airflow."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mock_feed.generate import generate_dataset
from mock_feed.server import FaultOptions, FeedData, FeedServer
from pipeline.settings import DBT_PROJECT_DIR, PROJECT_ROOT, Settings

AS_OF = dt.date(2026, 11, 25)
TOKEN = "test-token"


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    generate_dataset(out, AS_OF, institutions=60, seed=7)
    return out


class RunningFeed:
    def __init__(self, data: Path, faults: FaultOptions | None = None, token: str | None = TOKEN) -> None:
        self.server = FeedServer(("127.0.0.1", 0), FeedData(data), token, faults or FaultOptions())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.data.close()


@pytest.fixture(scope="session")
def feed(dataset):
    running = RunningFeed(dataset)
    yield running
    running.stop()


def make_settings(tmp: Path, dataset: Path, feed_url: str) -> Settings:
    return Settings(
        warehouse_dir=tmp / "warehouse",
        exports_dir=tmp / "exports",
        data_dir=dataset,
        feed_url=feed_url,
        feed_token=TOKEN,
        pseudonym_key=b"test-key",
    )


DBT_SKIP_TESTS = ("--exclude", "resource_type:unit_test", "resource_type:test")  # seeds and models only


def dbt_build(
    settings: Settings, as_of: dt.date, *extra: str, command: str = "build"
) -> subprocess.CompletedProcess:
    env = dict(os.environ, WAREHOUSE_DB=str(settings.warehouse_db), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            *command.split(),
            "--profiles-dir",
            ".",
            "--vars",
            f"{{as_of: '{as_of.isoformat()}'}}",
            "--target-path",
            str(settings.warehouse_dir / "dbt-target"),
            *extra,
        ],
        check=False,
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )


def run_pipeline_steps(settings: Settings, as_of: dt.date = AS_OF, data_tests: bool = True) -> None:
    """The DAG's steps in order, without Airflow (the DAG itself is exercised by test_end_to_end)."""
    from pipeline import steps

    load_id = f"{as_of}-test"
    steps.extract_feed(as_of, load_id, settings=settings)
    steps.load_calendar(settings=settings)
    steps.load_centre(as_of, load_id, settings=settings)
    steps.verify_certificates(as_of, load_id, settings=settings)
    result = (
        dbt_build(settings, as_of, *DBT_SKIP_TESTS)
        if not data_tests
        else dbt_build(settings, as_of, "--exclude", "resource_type:unit_test")
    )
    assert result.returncode == 0, result.stdout[-4000:]


def private_copy(settings: Settings, folder: Path) -> Settings:
    """Settings on a private copy of a built warehouse (tests that change it must not touch the shared one)."""
    import shutil
    from dataclasses import replace

    copy = replace(settings, warehouse_dir=folder / "warehouse", exports_dir=folder / "exports")
    copy.warehouse_dir.mkdir(parents=True)
    shutil.copy(settings.warehouse_db, copy.warehouse_db)
    return copy


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file below a folder, by relative path."""
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def built(tmp_path_factory, dataset, feed) -> Settings:
    """A warehouse built once from the small dataset (ingest + dbt), before the gate."""
    settings = make_settings(tmp_path_factory.mktemp("built"), dataset, feed.url)
    run_pipeline_steps(settings)
    return settings


__all__ = ["AS_OF", "PROJECT_ROOT", "RunningFeed", "dbt_build", "make_settings", "run_pipeline_steps"]


def require_system_tool(name: str) -> str:
    """The path of a program from Debian's packages; fails under CI (REQUIRE_SYSTEM_PACKAGES, set by .ci/run,
    which installs them), else skips."""
    import shutil

    path = shutil.which(name)
    if path is None:
        if os.environ.get("REQUIRE_SYSTEM_PACKAGES"):
            pytest.fail(f"{name} is required (REQUIRE_SYSTEM_PACKAGES) but not installed")
        pytest.skip(f"{name} not installed (see .ci/run for the Debian packages)")
    return path


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
