"""The command lines that start the project's own programs as child processes: the mock feed's generator and
server, the local run, the scheduler, a forms worker. Each runs as `python -m <module>` under the interpreter
running now, so the child has the same virtualenv and the same installed packages as its parent, whatever is
first on PATH."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path


def python_module(module: str, *args: str) -> list[str]:
    """`python -m module args…` under this interpreter."""
    return [sys.executable, "-m", module, *args]


def mock_feed_command(command: str, *args: str) -> list[str]:
    """`python -m mock_feed <command> args…` (generate, serve: docs/contract.md §2). The mock feed runs from the
    checkout: it is not part of the installed package."""
    return python_module("mock_feed", command, *args)


def generate_command(out: Path, as_of: dt.date, institutions: int, *args: str) -> list[str]:
    """The generator writing the dataset for D with that many institutions into `out` (further options in
    `args`: --seed, --candidates-scale)."""
    return mock_feed_command(
        "generate",
        "--out",
        str(out),
        "--as-of",
        as_of.isoformat(),
        "--institutions",
        str(institutions),
        *args,
    )


def serve_command(data: Path, port: int, *args: str) -> list[str]:
    """The mock feed serving the dataset in `data` on `port` (0: any free port); further options in `args`
    (--token, the fault options)."""
    return mock_feed_command("serve", "--data", str(data), "--port", str(port), *args)


def dags_test_command(log: Path) -> list[str]:
    """The resident DAG runner (pipeline/dags_test.py): `airflow dags test` for each run it is sent, in one
    process; what it says outside the runs goes to `log`."""
    return python_module("pipeline.dags_test", "--serve", str(log))


def local_run_command(*args: str) -> list[str]:
    """`make run`'s program (pipeline/local_run.py) with its options."""
    return python_module("pipeline.local_run", *args)
