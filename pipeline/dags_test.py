"""`airflow dags test` for several DAG runs, one after another, in one process (`make run`, `make backfill`).

Each run is exactly `airflow dags test DAG DATE [--conf JSON]`: Airflow's own command, through its own parser, as
`airflow` itself calls it. One process for all of a local run's DAG runs pays Airflow's start-up and its
in-process execution API once, not once a run (about 9 s a run, bench/README.md). Each run writes its output
to its own log file, as a separate `airflow dags test` would. The runs stop at the first one that fails, as a
chain of `airflow dags test … && airflow dags test …` does; local_run.py judges each from the metadata database.

    python -m pipeline.dags_test PLAN.json

PLAN.json: a list of {"dag_id", "logical_date" (ISO 8601), "conf" (object or null), "log" (a path)}.
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    plan = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    # as airflow/__main__.py does: the configuration first (it must be imported before Airflow's settings), then
    # the default airflow.cfg written when there is none
    from airflow import configuration  # noqa: F401
    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()
    parser = cli_parser.get_parser()
    for run in plan:
        with output_to(Path(run["log"])):
            args = parser.parse_args(dags_test_args(run))
            try:
                args.func(args)
            except SystemExit as ended:  # `dags test` ends a failed run with SystemExit("DagRun failed")
                if ended.code not in (None, 0):
                    print(ended, file=sys.stderr)
                    return 1
            except Exception:  # the DAG did not parse, the metadata database failed: said in the run's log
                traceback.print_exc()
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
