"""The DuckDB handle that dbt-duckdb keeps open in the process that ran dbt, and how to let go of it."""

from __future__ import annotations

import sys


def release_dbt_duckdb(*_args: object, **_kwargs: object) -> None:
    """Close the DuckDB handle that dbt-duckdb keeps open in this process, if dbt ran here. Takes and ignores any
    arguments, so that it also serves as the dbt task's Cosmos callback (called with the project folder)."""
    # dbt-duckdb caches its connection after the run, and so holds the warehouse's write lock until the process
    # ends. Under a resident scheduler the next task (the gate) can start while the dbt task's process is still
    # exiting (seconds, after it reported success), and then cannot open the file; so the dbt task lets go
    # when dbt is done. Under `airflow dags test` every task runs in one process, and DuckDB refuses a second
    # open of the same file with another configuration (read-only, ATTACH) there. Harmless when dbt ran elsewhere.
    module = sys.modules.get("dbt.adapters.duckdb.connections")
    if module is None:
        return
    manager = module.DuckDBConnectionManager
    with manager._LOCK:
        if manager._ENV is not None:
            manager._ENV.close()
            manager._ENV = None
