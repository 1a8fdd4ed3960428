"""Airflow's own commands in this process: `airflow ARGS…` through Airflow's own parser, as the `airflow` program
runs them, for a process that has Airflow loaded already (make run's DAG runner, pipeline/dags_test.py), which
saves starting Airflow again for each command."""

from __future__ import annotations

import argparse
import functools


class AirflowCommandFailed(Exception):
    """The command ended with a non-zero exit status or raised; its SystemExit or exception is the __cause__."""


@functools.cache
def parser() -> argparse.ArgumentParser:
    """Airflow's command-line parser, made as airflow/__main__.py makes it: the configuration first (it must be
    imported before Airflow's settings), then the default airflow.cfg written when there is none."""
    from airflow import configuration  # noqa: F401
    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()
    return cli_parser.get_parser()


def run(argv: list[str]) -> None:
    """`airflow ARGV…` (without the program's name). Returns when it succeeded, also when it ended with
    SystemExit(0) or SystemExit() as commands do; raises AirflowCommandFailed otherwise (`dags test` ends a failed
    run with SystemExit("DagRun failed"))."""
    try:
        args = parser().parse_args(argv)
        args.func(args)
    except SystemExit as ended:
        if ended.code in (None, 0):
            return
        said = f"ended with exit status {ended.code}" if isinstance(ended.code, int) else f"failed: {ended}"
        raise AirflowCommandFailed(f"`airflow {' '.join(argv)}` {said}") from ended
    except Exception as exc:
        raise AirflowCommandFailed(f"`airflow {' '.join(argv)}` failed: {exc!r}") from exc
