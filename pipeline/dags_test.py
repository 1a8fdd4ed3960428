"""`airflow dags test` for several DAG runs, one after another, in one process (`make run`, `make backfill`).

Each run is exactly `airflow dags test DAG DATE [--conf JSON]`: Airflow's own command, through its own parser, as
`airflow` itself calls it. One process for all of a local run's DAG runs pays Airflow's start-up and its
in-process execution API once, not once a run (about 9 s a run, bench/README.md). Each run writes its output
to its own log file, as a separate `airflow dags test` would. The runs stop at the first one that fails, as a
chain of `airflow dags test … && airflow dags test …` does; local_run.py judges each from the metadata database.

    python -m pipeline.dags_test PLAN.json [--clean-airflow]

PLAN.json: a list of {"dag_id", "logical_date" (ISO 8601), "conf" (object or null), "log" (a path)}.
--clean-airflow: after the runs, when the line "clean" arrives on standard input, Airflow's records older than
the retention policy's 30 days are removed (pipeline.retention.clean_airflow: `airflow db clean` in this process).
local_run.py sends it once it has judged every run a success: the cleaning may remove a run it has not yet read
(`dags test` dates a run's start on its logical date). Exit status 3 when the cleaning failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Standard output and error, of this process and of whatever it starts, into `log` for the block: what
    `airflow dags test > log 2>&1` would catch."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "w", encoding="utf-8") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def dags_test_args(run: dict[str, Any]) -> list[str]:
    """The command line of `airflow dags test` for one run of the plan, without the leading `airflow`."""
    args = ["dags", "test", run["dag_id"], run["logical_date"]]
    return args + (["--conf", json.dumps(run["conf"])] if run.get("conf") else [])


CLEAN_FAILED = 3  # every run succeeded, Airflow's old records were not cleaned


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    clean = "--clean-airflow" in argv
    argv = [a for a in argv if a != "--clean-airflow"]
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    plan = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    from pipeline import airflow_cli

    airflow_cli.parser()  # Airflow's configuration, before the first run's log
    for run in plan:
        with output_to(Path(run["log"])):
            try:
                airflow_cli.run(dags_test_args(run))
            except airflow_cli.AirflowCommandFailed as failed:
                if isinstance(failed.__cause__, SystemExit):  # a failed run: SystemExit("DagRun failed")
                    print(failed, file=sys.stderr)
                else:  # the DAG did not parse, the metadata database failed: said in the run's log
                    traceback.print_exception(failed.__cause__ or failed)
                return 1
    if clean and sys.stdin.readline().strip() == "clean":
        from pipeline.retention import RetentionError, clean_airflow

        try:
            clean_airflow(None)
        except RetentionError as exc:
            print(f"Airflow's old records were not cleaned: {exc}", file=sys.stderr)
            return CLEAN_FAILED
    return 0


def exit_now(status: int) -> None:
    """End the process without tearing down the interpreter: with Airflow, dbt and Great Expectations loaded that
    takes ~2 s and writes nothing. What must reach the disk is there already: every run has ended and its database
    work is committed (a run is safe even when killed, README: Crash safety). Airflow's connections to its
    metadata database are closed, as its own exit does (a SQLite file left open in WAL mode is not readable
    read-only until someone recovers it), and the outputs are flushed."""
    import logging

    if "airflow.settings" in sys.modules:
        sys.modules["airflow.settings"].dispose_orm()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    exit_now(main())
