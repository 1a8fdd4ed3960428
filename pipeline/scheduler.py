"""`python -m pipeline.scheduler [ARGS]` is `airflow scheduler [ARGS]`, with the third-party libraries that the
tasks use imported first, once.

Under the LocalExecutor the scheduler forks its workers when it starts, and a worker forks one process for each
task: whatever the scheduler imported, every task process has without importing it. Imported per task, dbt cost
the dbt task about 2 s and Great Expectations cost the gate about 2.5 s, every day (bench/README.md).
docker-compose.yml and the bench's resident Airflow (bench/resident.py) start the scheduler this way.

Only libraries are loaded here, which change only when the environment is reinstalled (and the scheduler with
it), and the settings under which Great Expectations is imported (`expectations/__init__.py`). The project's
modules (dags/, pipeline/, ingest/, expectations/'s modules, publish/) are still imported by each task, so an
edit to them reaches the next task without a restart of the scheduler. None of the libraries
starts a thread when imported (a fork copies no thread but the one that forks; tests/test_scheduler.py checks).
"""

from __future__ import annotations

import importlib
import sys

# The libraries the tasks import, slowest first (import time on the development machine, Airflow loaded)
PRELOADED = (
    "great_expectations",  # the quality gate: 2.5 s
    "dbt.cli.main",  # dbt_build runs dbt inside its task process (Cosmos's dbtRunner mode): 1.2 s
    "dbt.adapters.duckdb",  # dbt's DuckDB adapter: 0.8 s
    "pandas",  # the gate's frames: 0.3 s
    "cosmos.operators.local",  # every task parses the DAG file, which builds the Cosmos operator: 0.2 s
    "openpyxl",  # the centre's spreadsheets and the reminder workbooks: 0.1 s
    "duckdb",
    "msgspec",
    "psycopg2",
)


def preload() -> None:
    """Import PRELOADED into this process, Great Expectations as the gate imports it."""
    importlib.import_module("expectations")  # the package's settings only: none of its modules
    for name in PRELOADED:
        importlib.import_module(name)


def main() -> None:
    preload()
    from airflow.__main__ import main as airflow

    sys.argv = ["airflow", "scheduler", *sys.argv[1:]]
    airflow()


if __name__ == "__main__":
    main()
