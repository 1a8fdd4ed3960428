"""`airflow dags test` for many DAG runs, one after another, in one resident process (`make run`, `make backfill`,
`make soak`).

Each run is exactly `airflow dags test DAG DATE [--conf JSON]`: Airflow's own command, through its own parser, as
`airflow` itself calls it. One process for many DAG runs pays Airflow's start-up, its in-process execution API and
the imports of dbt and Great Expectations once, not once a run (bench/README.md: a 30-institution daily run takes
about 37 s in a new process and 18 s in a warm one). Each run writes its output to its own log file, as a separate
`airflow dags test` would.

    python -m pipeline.dags_test --serve LOG

Requests arrive on standard input, one JSON object a line; each is answered with one JSON line on standard
output, {"status": N}. Whatever the process says outside a run goes to LOG.
- {"runs": [{"dag_id", "logical_date" (ISO 8601), "conf" (object or null), "log" (a path)}, …], "env": {…}}: the
  runs in turn, each in the environment updated by "env" (a null value removes the variable), stopping at the
  first that fails, as a chain of `airflow dags test … && airflow dags test …` does. Status 0, or 1 at a failed
  run. The caller judges each run from the metadata database.
- {"clean": true}: Airflow's records older than the retention policy's 30 days are removed
  (pipeline.retention.clean_airflow: `airflow db clean` in this process). The caller asks for it once it has
  judged every run a success: the cleaning may remove a run it has not yet read (`dags test` dates a run's start
  on its logical date). Status 0, or 3 when the cleaning failed.
The process ends when its standard input does.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

CLEAN_FAILED = 3  # the runs succeeded, Airflow's old records were not cleaned


@contextlib.contextmanager
def output_to(log: Path, mode: str = "w") -> Iterator[None]:
    """Standard output and error, of this process and of whatever it starts, into `log` for the block: what
    `airflow dags test > log 2>&1` would catch."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, mode, encoding="utf-8") as handle:
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


def run_plan(runs: list[dict[str, Any]], env: dict[str, str | None]) -> int:
    """The runs in turn in this process, in the environment updated by `env`; 1 at the first that fails."""
    from pipeline import airflow_cli

    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    for run in runs:
        with output_to(Path(run["log"])):
            try:
                airflow_cli.run(dags_test_args(run))
            except airflow_cli.AirflowCommandFailed as failed:
                if isinstance(failed.__cause__, SystemExit):  # a failed run: SystemExit("DagRun failed")
                    print(failed, file=sys.stderr)
                else:  # the DAG did not parse, the metadata database failed: said in the run's log
                    traceback.print_exception(failed.__cause__ or failed)
                return 1
    return 0


def clean() -> int:
    from pipeline.retention import RetentionError, clean_airflow

    try:
        clean_airflow(None)
    except RetentionError as exc:
        print(f"Airflow's old records were not cleaned: {exc}", file=sys.stderr)
        return CLEAN_FAILED
    return 0


def serve(log: Path) -> int:
    """Answer requests until standard input ends (the module's docstring)."""
    # The requests and replies on descriptors of their own, which the programs a run starts do not inherit: none
    # of them can read a request or write into a reply.
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.close(nothing)
    with output_to(log, "a"):
        from pipeline import airflow_cli

        airflow_cli.parser()  # Airflow's configuration, before the first run's log
        while line := requests.readline():
            request = json.loads(line)
            status = clean() if request.get("clean") else run_plan(request["runs"], request.get("env", {}))
            replies.write(json.dumps({"status": status}) + "\n")
    return 0


class DagRunner:
    """The caller's side of `python -m pipeline.dags_test --serve LOG`: a resident process running DAG runs.
    `own_group` puts it in a process group of its own (its pid), which a caller can kill as a whole."""

    def __init__(self, env: dict[str, str], log: Path, *, own_group: bool = False) -> None:
        from pipeline.commands import dags_test_command

        self.proc = subprocess.Popen(
            dags_test_command(log),
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            process_group=0 if own_group else None,
        )
        self._stdin: IO[str] = self.proc.stdin  # type: ignore[assignment] # stdin=PIPE
        self._stdout: IO[str] = self.proc.stdout  # type: ignore[assignment] # stdout=PIPE
        self._reply: dict | None = None

    def send(self, request: dict[str, Any]) -> None:
        self._reply = None
        self._stdin.write(json.dumps(request, ensure_ascii=False) + "\n")
        self._stdin.flush()

    def reply(self, timeout: float | None = None) -> dict | None:
        """The answer to the last request: waits up to `timeout` seconds (None: until it comes) and returns None
        when it has not come by then. A process that ended without answering answers {"status": None, "ended":
        its exit status}."""
        if self._reply is None and select.select([self._stdout], [], [], timeout)[0]:
            line = self._stdout.readline()
            self._reply = json.loads(line) if line else {"status": None, "ended": self.proc.wait()}
        return self._reply

    def close(self) -> int:
        """End the process (its standard input closed) and wait for it; its exit status."""
        with contextlib.suppress(BrokenPipeError):
            self._stdin.close()
        self._stdout.close()
        return self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "--serve":
        print(__doc__, file=sys.stderr)
        return 2
    return serve(Path(argv[1]))


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
