"""`make run` and `make backfill`: serve a dataset with the mock feed, run the DAGs with `airflow dags test` on a
SQLite metadata database, show each task as it runs, judge the run by its recorded state, print a summary."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from ingest import clock
from pipeline.commands import generate_command, serve_command
from pipeline.dags_test import CLEAN_FAILED, DagRunner
from pipeline.settings import (
    FEED_CONN_ID,
    NOTICE_DATE,
    PROJECT_ROOT,
    TIMEZONE,
    WRITER_POOL,
    WRITER_POOL_DESCRIPTION,
)

# The pseudonym key of local runs, one per checkout so that every warehouse made from it pseudonymises alike.
PSEUDONYM_KEY_FILE = PROJECT_ROOT / ".airflow" / "pseudonym_key"


def airflow_home(warehouse: Path) -> Path:
    """Airflow's home for runs on this warehouse: its SQLite metadata, logs and `dags test` logs. One per
    warehouse, so runs on different warehouses run side by side (`dags test` of one DAG and date replaces
    the earlier run in the metadata, so two runs sharing it broke each other)."""
    return warehouse / ".airflow"


class RunLocked(RuntimeError):
    """Another run holds the checkout's Airflow metadata or the warehouse."""


@contextlib.contextmanager
def exclusive_run(*lock_files: Path) -> Iterator[None]:
    """Holds each lock file (flock) for the whole run, or refuses at once naming the run that holds one. The
    kernel drops a flock when its process dies, even by SIGKILL, so a killed run never leaves a stale lock."""
    held = []
    try:
        for path in lock_files:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a+", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another run"
                handle.close()
                raise RunLocked(
                    f"another run is in progress ({holder}; lock {path}): this one did nothing. "
                    "Wait for it to finish, or stop it, then run again."
                ) from None
            handle.seek(0)
            handle.truncate()
            started = dt.datetime.now().astimezone().isoformat(timespec="seconds")
            handle.write(f"pid {os.getpid()}, `{shlex.join(sys.argv)}`, started {started}\n")
            handle.flush()
            held.append(handle)
        yield
    finally:
        for handle in held:
            handle.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def airflow_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    # the local feed, not whatever feed the caller's shell points at
    env = {k: v for k, v in os.environ.items() if k not in ("FEED_URL", "FEED_TOKEN")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": TIMEZONE,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "GX_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    env.update(extra)
    return env


def start_feed(data: Path, token: str, feed_opts: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = serve_command(data, port, "--token", token, *shlex.split(feed_opts))
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None  # stderr=PIPE
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 900  # a province-scale dataset takes minutes to load and pre-serialise
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mock feed exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.2)
    proc.terminate()  # not kill(): SIGTERM lets the feed remove its temporary copy of the dataset
    proc.wait(timeout=60)
    raise RuntimeError(f"mock feed did not become healthy on {url}")


def migrate_metadata_db(airflow: str, env: dict[str, str]) -> None:
    """`airflow db migrate` and the writer pool, skipped (about 10 s) when this Airflow version already did both."""
    from importlib.metadata import version

    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    stamp = home / "migrated-by"
    current = f"apache-airflow {version('apache-airflow')}; pool {WRITER_POOL}"
    if (home / "airflow.db").exists() and stamp.exists() and stamp.read_text() == current:
        return
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [airflow, "pools", "set", WRITER_POOL, "1", WRITER_POOL_DESCRIPTION],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    stamp.write_text(current)


def local_pseudonym_key() -> str:
    """PSEUDONYM_KEY from the environment, else a random key made once and kept in .airflow/ (so reruns of
    `make run` give identical pseudonyms, and no built-in key exists that anyone could know)."""
    if os.environ.get("PSEUDONYM_KEY"):
        return os.environ["PSEUDONYM_KEY"]
    path = PSEUDONYM_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}")
        partial.write_text(secrets.token_hex(32))
        partial.chmod(0o600)
        with contextlib.suppress(FileExistsError):  # a run beside this one made it first: use that one
            os.link(partial, path)
        partial.unlink()
    return path.read_text().strip()


class RunFailed(RuntimeError):
    """A DAG run that did not succeed, or in which no task ran."""


def _metadata(home: Path, query: str, params: tuple) -> list[tuple]:
    con = sqlite3.connect(f"file:{home / 'airflow.db'}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(query, params).fetchall()
    except sqlite3.OperationalError:  # locked for a moment by the run itself: try at the next poll
        return []
    finally:
        con.close()


def logical_date(as_of: dt.date) -> dt.datetime:
    """The logical date of D's run: 06:00 on D in Asia/Shanghai, when the daily schedule starts it."""
    return dt.datetime.combine(as_of, dt.time(6), zoneinfo.ZoneInfo(TIMEZONE))


def logical_key(as_of: dt.date) -> str:
    """The logical date of D's run as the metadata database stores it (UTC, no offset)."""
    return logical_date(as_of).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def run_ids(home: Path, dag_id: str, as_of: dt.date) -> set[str]:
    return {
        r[0]
        for r in _metadata(
            home,
            "SELECT run_id FROM dag_run WHERE dag_id = ? AND logical_date = ?",
            (dag_id, logical_key(as_of)),
        )
    }


def dag_run_now(
    home: Path, dag_id: str, as_of: dt.date, earlier: set[str], seen: tuple[str, str] | None = None
) -> tuple[tuple[str, str] | None, list[tuple]]:
    """(run_id, state) of this DAG's run for D whose run_id was not among `earlier` (`dags test` replaces an
    earlier run of the same date), else `seen` (what an earlier read found: the database may be locked for a
    moment); and the run's task instances (task, state, seconds, try), as the metadata database has them now."""
    found = [
        r
        for r in _metadata(
            home,
            "SELECT run_id, state FROM dag_run WHERE dag_id = ? AND logical_date = ?",
            (dag_id, logical_key(as_of)),
        )
        if r[0] not in earlier
    ]
    run = found[0] if found else seen
    if run is None:
        return None, []
    tis = _metadata(
        home,
        """SELECT task_id, state, duration, try_number FROM task_instance
                   WHERE dag_id = ? AND run_id = ? ORDER BY start_date""",
        (dag_id, run[0]),
    )
    return run, tis


def watch_dag_run(
    home: Path, finished: Callable[[], bool], dag_id: str, as_of: dt.date, earlier: set[str]
) -> tuple[str | None, list[tuple]]:
    """Print each task of the run as it starts and ends (task, state, seconds) while it runs; return the run's
    final state and its task instances, read from the metadata database, once the run has ended or `finished()`
    says that whatever ran it has stopped."""
    shown: dict[str, str] = {}
    run: tuple[str, str] | None = None
    while True:
        stopped = finished()
        run, tis = dag_run_now(home, dag_id, as_of, earlier, run)
        for task_id, state, duration, tries in tis:
            if state and shown.get(task_id) != state:
                if state == "running":
                    print(f"  {task_id} …", flush=True)
                elif state in ("success", "failed", "skipped", "upstream_failed", "up_for_retry"):
                    took = f" {duration:6.1f} s" if duration is not None else ""
                    retry = f" (try {tries})" if tries and tries > 1 else ""
                    print(f"  {task_id:<40} {state}{took}{retry}", flush=True)
                shown[task_id] = state
        if stopped or (run and run[1] in ("success", "failed")):
            return (run[1] if run else None), tis
        time.sleep(0.5)


def judge_run(dag_id: str, as_of: dt.date, state: str | None, tis: list[tuple]) -> None:
    """Raise RunFailed unless the DAG run succeeded and at least one of its tasks ran and succeeded."""
    if state is None:
        raise RunFailed(f"{dag_id} for {as_of}: Airflow recorded no DAG run at all")
    bad = [(t, s) for t, s, *_ in tis if s not in ("success", "skipped")]
    if state != "success" or bad:
        detail = ", ".join(f"{t}={s}" for t, s in bad) or "no task failed"
        raise RunFailed(f"{dag_id} for {as_of}: the DAG run ended {state} ({detail})")
    if not any(s == "success" for _, s, *_ in tis):
        raise RunFailed(
            f"{dag_id} for {as_of}: the DAG run ran no task (is {as_of} before the DAG's start_date?); "
            "nothing was published"
        )


def dags_test_log(home: Path, dag_id: str, as_of: dt.date) -> Path:
    """The output of `airflow dags test DAG D`, as local runs keep it."""
    return home / f"dags-test-{dag_id}-{as_of.isoformat()}.log"


def dag_run_plan(home: Path, runs: list[tuple[str, dt.date, dict]]) -> list[dict]:
    """The runs as pipeline/dags_test.py takes them, each with its log; a log left by an earlier run of the same
    DAG and date is removed, so that it is never read as this one's."""
    plan = []
    for dag_id, as_of, conf in runs:
        log = dags_test_log(home, dag_id, as_of)
        log.unlink(missing_ok=True)
        plan.append(
            {
                "dag_id": dag_id,
                "logical_date": logical_date(as_of).isoformat(),
                "conf": conf or None,
                "log": str(log),
            }
        )
    return plan


def run_dags(env: dict[str, str], runs: list[tuple[str, dt.date, dict]]) -> None:
    """`airflow dags test DAG D` for each (DAG, D, conf) in turn, all in one process (pipeline/dags_test.py), with
    progress on the terminal; each run judged by its recorded state before the next is looked at. Raises
    RunFailed at the first run that did not succeed (the process stops there too). When every run succeeded,
    the same process removes Airflow's records older than the retention policy's 30 days (README, Retention); a
    failure there is a warning, not a failed run."""
    home = Path(env["AIRFLOW_HOME"])
    plan = dag_run_plan(home, runs)
    earlier = {(dag_id, as_of): run_ids(home, dag_id, as_of) for dag_id, as_of, _ in runs}
    # what the process says outside any run: Airflow's start-up warnings
    runner_log = home / "dags-test-runner.log"
    runner_log.unlink(missing_ok=True)
    runner = DagRunner(env, runner_log)
    try:
        runner.send({"runs": plan})
        for dag_id, as_of, _ in runs:
            print(f"{dag_id} for {as_of}:", flush=True)
            started = time.monotonic()
            stopped = lambda: runner.reply(timeout=0) is not None  # noqa: E731 - it answers after the last run
            state, tis = watch_dag_run(home, stopped, dag_id, as_of, earlier[(dag_id, as_of)])
            try:
                judge_run(dag_id, as_of, state, tis)
            except RunFailed:
                runner.reply()  # it stops at a failed run; its log is then whole
                report_failed_run(dags_test_log(home, dag_id, as_of), runner_log)
                raise
            print(f"  {dag_id} succeeded in {time.monotonic() - started:.0f} s", flush=True)
        runner.reply()
        # every run judged a success: Airflow's old records may go now
        runner.send({"clean": True})
        if (runner.reply() or {}).get("status") == CLEAN_FAILED:
            print(f"warning: Airflow's old records were not cleaned: {runner_log}", file=sys.stderr)
    finally:
        runner.close()


def report_failed_run(log_path: Path, runner_log: Path) -> None:
    """The end of a failed run's log on stderr, and what a person must act on first."""
    path = log_path if log_path.exists() and log_path.stat().st_size else runner_log
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    print("\n".join(lines[-60:]), file=sys.stderr)
    # a centre file that cannot be read: its message, not the traceback, is what the person needs
    for cause in sorted(
        {line[line.index("CentreFileError: ") :] for line in lines if "CentreFileError: " in line}
    ):
        print(f"\n{cause}", file=sys.stderr)
    print(f"\nfull Airflow log: {path}", file=sys.stderr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--as-of", default=os.environ.get("AS_OF") or None)
    parser.add_argument(
        "--from",
        dest="backfill_from",
        default=os.environ.get("FROM") or None,
        help="backfill: first as-of date (with --to); rebuilds marts and history, sends nothing",
    )
    parser.add_argument("--to", dest="backfill_to", default=os.environ.get("TO") or None)
    parser.add_argument("--data", default=os.environ.get("DATA") or None)
    parser.add_argument("--warehouse", default=os.environ.get("WAREHOUSE") or "warehouse")
    parser.add_argument("--exports", default=os.environ.get("EXPORTS") or "exports")
    parser.add_argument("--feed-opts", default=os.environ.get("FEED_OPTS", ""))
    parser.add_argument("--institutions", type=int, default=200)
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument(
        "--feed-url",
        default=None,
        help="use this running feed instead of starting the mock feed on DATA (benchmarks)",
    )
    parser.add_argument("--feed-token", default=os.environ.get("FEED_TOKEN"))
    return parser.parse_args(argv)


def as_of_dates(args: argparse.Namespace) -> tuple[list[dt.date], bool]:
    """The dates to run, oldest first, and whether this is a backfill; every date must be on or after the notice."""
    # the notice's date from settings, not the DAGs' START_DATE: that import would load Airflow here (~2 s)
    first = NOTICE_DATE
    if args.backfill_from or args.backfill_to:
        if not (args.backfill_from and args.backfill_to):
            raise ValueError("a backfill needs both FROM=YYYY-MM-DD and TO=YYYY-MM-DD")
        start, end = dt.date.fromisoformat(args.backfill_from), dt.date.fromisoformat(args.backfill_to)
        if end < start:
            raise ValueError(f"backfill FROM={start} is after TO={end}")
        dates, backfill = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)], True
    else:
        today = clock.now().astimezone(zoneinfo.ZoneInfo(TIMEZONE)).date()
        dates, backfill = [dt.date.fromisoformat(args.as_of) if args.as_of else today], False
    if dates[0] < first:
        raise ValueError(
            f"{dates[0]} is before {first}, the date of notice 闽劳鉴〔2022〕26号: nothing to judge"
        )
    return dates, backfill


def resolve(path: str) -> Path:
    """A path given on the command line: relative ones are relative to the checkout."""
    return (Path(path) if Path(path).is_absolute() else PROJECT_ROOT / path).resolve()


def dataset_dir(args: argparse.Namespace, as_of: dt.date) -> Path:
    """DATA, checked; without it the demo dataset for D, generated on first use."""
    if args.data:
        data = resolve(args.data)
        if not (data / "institutions.jsonl").exists():
            raise ValueError(f"DATA={data} is not a dataset directory (no institutions.jsonl)")
        return data
    data = PROJECT_ROOT / "data" / f"demo-{as_of.isoformat()}"
    if not (data / "institutions.jsonl").exists():
        print(f"generating the demo dataset for {as_of} in {data} …", flush=True)
        subprocess.run(generate_command(data, as_of, args.institutions), check=True)
    return data


def day_view(timeline: Path, warehouse: Path, as_of: dt.date) -> Path:
    """The dataset of D cut from a timeline (mock_feed/timeline.py) into `<warehouse>/.timeline-view/<D>/`, the
    day's feed and centre spreadsheets; the views of earlier runs are removed."""
    from mock_feed.timeline import view

    views = warehouse / ".timeline-view"
    shutil.rmtree(views, ignore_errors=True)
    view(timeline, as_of, views / as_of.isoformat())
    return views / as_of.isoformat()


def feed_for_run(args: argparse.Namespace, data: Path) -> tuple[subprocess.Popen | None, str, str]:
    """(the mock feed's process, or None for --feed-url; its URL; its token)."""
    if args.feed_url:
        return None, args.feed_url, args.feed_token or ""
    token = secrets.token_hex(16)
    print(f"starting the mock feed on {data} …", flush=True)
    feed, url = start_feed(data, token, args.feed_opts)
    return feed, url, token


def run_days(
    airflow: str, env: dict[str, str], dates: list[dt.date], backfill: bool, full_refresh: bool
) -> None:
    """renewal_daily for each date, oldest first, each followed by renewal_reminders unless this is a backfill."""
    migrate_metadata_db(airflow, env)
    conf: dict = ({"full_refresh": True} if full_refresh else {}) | ({"backfill": True} if backfill else {})
    runs = []
    for day in dates:
        runs.append(("renewal_daily", day, conf))
        # In production renewal_reminders runs when renewal_daily publishes (Asset schedule); `dags test`
        # runs one DAG, so the local run runs it next, for the same date. A backfill reminds nobody.
        if not backfill:
            runs.append(("renewal_reminders", day, {}))
    run_dags(env, runs)


def print_summary(dates: list[dt.date], backfill: bool, warehouse: Path, exports: Path) -> None:
    from pipeline.summary import summary_text

    print()
    if backfill:
        print(
            f"Backfilled {dates[0]} … {dates[-1]} ({len(dates)} days): marts and renewal_history rebuilt; "
            "no reminders exported, marked or e-mailed."
        )
    print(summary_text(warehouse / "published.duckdb", exports))
    print(f"Airflow logs: {airflow_home(warehouse)}/dags-test-*-{dates[-1].isoformat()}.log")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # One run at a time per warehouse (which holds its Airflow metadata) and per exports folder: a second run
    # started beside the first replaced the first's DAG run in the metadata database and broke it. Runs on
    # different warehouses and exports folders run side by side.
    try:
        with exclusive_run(resolve(args.warehouse) / ".run.lock", resolve(args.exports) / ".run.lock"):
            return _main(args)
    except RunLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace) -> int:
    from mock_feed.timeline import is_timeline

    try:
        dates, backfill = as_of_dates(args)
        data = dataset_dir(args, dates[-1])
        warehouse, exports = resolve(args.warehouse), resolve(args.exports)
        # a timeline is served as each day had it: one feed a day, on that day's view
        groups = [[day] for day in dates] if is_timeline(data) else [dates]
        airflow = str(Path(sys.executable).parent / "airflow")
        for days in groups:
            source = day_view(data, warehouse, days[0]) if is_timeline(data) else data
            if (status := _run_on(args, airflow, source, days, backfill, warehouse, exports)) != 0:
                return status
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_summary(dates, backfill, warehouse, exports)
    return 0


def dataset_env(url: str, token: str, data: Path) -> dict[str, str]:
    """What the tasks need to read a dataset: the feed serving it, as an Airflow connection as in production (its
    address and token), and the folder of the centre's spreadsheets (DATA)."""
    conn = json.dumps({"conn_type": "http", "host": url, "password": token})
    return {f"AIRFLOW_CONN_{FEED_CONN_ID.upper()}": conn, "DATA": str(data)}


def _run_on(
    args: argparse.Namespace,
    airflow: str,
    data: Path,
    dates: list[dt.date],
    backfill: bool,
    warehouse: Path,
    exports: Path,
) -> int:
    """The DAG runs for `dates` on the dataset `data`, served by a mock feed started for them."""
    feed, url, token = feed_for_run(args, data)
    env = airflow_env(
        airflow_home(warehouse),
        {
            **dataset_env(url, token, data),
            "WAREHOUSE": str(warehouse),
            "EXPORTS": str(exports),
            "PSEUDONYM_KEY": local_pseudonym_key(),
        },
    )
    try:
        run_days(airflow, env, dates, backfill, args.full_refresh)
    except RunFailed as exc:
        print(f"\nthe run FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if feed is not None:
            feed.terminate()
            feed.wait(timeout=60)  # it removes its temporary copy of the dataset (GBs at province scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
