"""`make soak FROM= TO= [INSTITUTIONS=] [OUT=]`: the daily DAGs day after day over one timeline, as production runs
them, with the days production has: a day the scheduler was down, a retried day, a run killed half-way.

1. A timeline of the province from FROM to TO (mock_feed/timeline.py: records registered, plans completed and
   corrected, certificates uploaded on time or a month late, spreadsheet rows rejected and fixed).
2. For each day in turn, `python -m pipeline.local_run` for that day on one warehouse and exports folder: the
   feed serves the timeline as it stood that day, watermarks, the reminder ledger and the reminders DAG all on.
   Some days are skipped (the scheduler was down), some run twice (a retry), and one run is killed at a random
   moment with SIGKILL to its whole process group, then run again.
   Each day's runs stand on that day's clock, 06:00 Asia/Shanghai when production's scheduled run starts
   (DayClock: the pipeline's clock for every process of the run, and the files they wrote dated on it
   afterwards). So what ages by the clock ages as in production: retention removes superseded versions, old
   loads and lookup answers, Airflow's logs, the killed run's leftovers; found certificates are looked up again
   after 30 days.
3. After every day, a from-scratch rebuild of that day (an empty warehouse, the same day's data, the same ledger
   as before the day) must publish the same marts and export the same files, byte for byte. Skipped days are
   rebuilt too, for the reminders that fell due on them.
4. Over the whole period: every (institution, period, reminder type) that fell due went out exactly once, in the
   export of a day on or after its first_due_on, with its line in the ledger; none was missed.

Writes OUT/soak.json (default bench/soak.json) and prints a table and a chart of time and size against day. Exits
1 when an invariant fails. The work (timeline, warehouse, exports, logs) is under OUT/soak-work/.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import datetime as dt
import functools
import json
import os
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# the in-thread mock feed and the file digests the tests use (tests/helpers.py)
sys.path.insert(1, str(ROOT / "tests"))

import duckdb  # noqa: E402
from helpers import RunningFeed, file_digests, make_settings  # noqa: E402

from ingest import clock  # noqa: E402
from mock_feed.timeline import generate_timeline, timeline_span, view  # noqa: E402
from pipeline import local_run  # noqa: E402
from pipeline.dags_test import DagRunner  # noqa: E402
from pipeline.settings import DBT_PROJECT_DIR, TIMEZONE, Settings  # noqa: E402

DAY = dt.timedelta(days=1)
# renewal_history's columns that compare a day with the run before it: a rebuild from scratch has no run before
HISTORY_RUN_COLUMNS = {
    "previous_as_of",
    "previous_stage",
    "previous_verdict",
    "stage_changed",
    "verdict_changed",
}
# what the soak's runs do not take from its own environment: `make soak FROM= TO=` puts FROM and TO in it, where
# local_run reads a backfill; the runs' folders, feed and clock are the soak's
IGNORED = {
    "FROM",
    "TO",
    "AS_OF",
    "DATA",
    "WAREHOUSE",
    "EXPORTS",
    "FEED_URL",
    "FEED_TOKEN",
    "FULL_REFRESH",
    clock.OFFSET_ENV,
}
REMINDER_CSV = "_续期提醒_"  # the per-centre CSV of the reminders sent that day (publish/exports.py)


@dataclass
class Day:
    day: str
    skipped: bool = False
    rerun: bool = False
    killed: bool = False
    run_s: float | None = None
    run_cpu_s: float | None = None
    warehouse_bytes: int = 0
    marts_equal_rebuild: bool | None = None
    exports_equal_clean: bool | None = None
    feed_versions: int = 0  # feed records new or changed that day: the size of the day's change
    rerun_s: float | None = None
    # what the day's retention removed (raw.run_metrics, step retention): rows of the warehouse, files
    retention_rows_removed: int = 0
    retention_files_removed: int = 0
    killed_after_s: float | None = None
    runner_rss_mb: float | None = None  # the resident DAG runner's memory after the day
    runner_started: bool = False  # the day's run started a DAG runner (the first day's, and after a kill)
    differences: list[str] = field(default_factory=list)


# -- the plan of days -----------------------------------------------------------------------------------------
def day_plan(days: list[dt.date], seed: int, every: int = 1) -> dict[dt.date, Day]:
    """About one day in ten skipped and one in ten rerun, never the first or last day, never a skip twice in a row;
    one killed run in the middle. Four days or more always have one of each.

    every > 1: the scheduler runs only every `every`-th day from the first (and on the last), as over a long
    outage or a weekly schedule; the days between are skipped. Of the days it runs, about one in ten is rerun and
    the middle one is killed."""
    rng = random.Random(f"soak:{seed}:{days[0]}:{days[-1]}" + (f":every {every}" if every > 1 else ""))
    plan = {d: Day(d.isoformat()) for d in days}
    if every > 1:
        for n, d in enumerate(days):
            plan[d].skipped = n % every != 0 and d != days[-1]
    ran = [d for d in days if not plan[d].skipped]
    inner = ran[1:-1]
    if len(inner) < 2:
        return plan
    killed = inner[len(inner) // 2]
    plan[killed].killed = True
    others = [d for d in inner if d != killed]
    count = max(1, len(ran) // 10)
    if every == 1:
        for d in rng.sample(others, min(count, len(others))):
            if not plan.get(d - DAY, Day("")).skipped:
                plan[d].skipped = True
    reruns = [d for d in inner if not plan[d].skipped]
    for d in rng.sample(reruns, min(count, len(reruns))):
        plan[d].rerun = True
    return plan


# -- the day's clock ------------------------------------------------------------------------------------------
SCHEDULED_AT = dt.time(6, 0)  # renewal_daily's schedule (pipeline/dag_common.py)


@dataclass
class DayClock:
    """The clock of one day's runs: D at 06:00 Asia/Shanghai, when production's scheduled run starts, at the day's
    first attempt, then running at the wall clock's pace. One offset serves every attempt of the day, so a rerun
    comes after the run it repeats, as it does in production, and each day comes after the last.

    Every process of a run reads it as the pipeline's clock (ingest/clock.py, RENEWAL_CLOCK_OFFSET_S). File times
    are the kernel's: `date_files` moves the times of what an attempt wrote onto the day's clock once it has
    ended, so that the next days' retention sees their true ages."""

    day: dt.date
    offset_s: int

    @classmethod
    def starting_now(cls, day: dt.date) -> DayClock:
        scheduled = dt.datetime.combine(day, SCHEDULED_AT, zoneinfo.ZoneInfo(TIMEZONE))
        return cls(day, round(scheduled.timestamp() - time.time()))

    def env(self) -> dict[str, str]:
        return {clock.OFFSET_ENV: str(self.offset_s)}

    def date_files(self, folders: list[Path], written_since: float) -> int:
        """Move the times of the files and folders written from `written_since` until now (wall clock) onto the
        day's clock; returns how many. What earlier attempts wrote is left as dated, even when its day is later
        than the wall clock."""
        until = time.time()
        moved = 0
        for folder in folders:
            if not folder.exists():
                continue
            for path in (folder, *folder.rglob("*")):
                try:
                    st = path.lstat()
                except FileNotFoundError:
                    continue
                if written_since <= st.st_mtime <= until:
                    times = (st.st_atime + self.offset_s, st.st_mtime + self.offset_s)
                    os.utime(path, times, follow_symlinks=False)
                    moved += 1
        return moved


# -- one day's run --------------------------------------------------------------------------------------------
DAGS = ("renewal_daily", "renewal_reminders")


class Runner:
    """The day's runs on the soak's warehouse as `make run` makes them (pipeline/local_run.py: the mock feed
    serving the day's view of the timeline, renewal_daily then renewal_reminders, each judged from Airflow's
    metadata, then Airflow's old records cleaned), all through one resident DAG runner (pipeline/dags_test.py)
    kept from day to day, as production keeps its scheduler, in a process group of its own. It pays Airflow's
    start-up and the imports of dbt and Great Expectations once, not each day (about 20 s a day)."""

    def __init__(self, work: Path, timeline: Path, key: str) -> None:
        self.work, self.timeline = work, timeline
        self.warehouse, self.exports = work / "warehouse", work / "exports"
        self.home = local_run.airflow_home(self.warehouse)
        self.env = {k: v for k, v in local_run.airflow_env(self.home, {}).items() if k not in IGNORED} | {
            "WAREHOUSE": str(self.warehouse),
            "EXPORTS": str(self.exports),
            "PSEUDONYM_KEY": key,
        }
        self.clock: DayClock | None = None
        self.dag_runner: DagRunner | None = None
        self.feed: subprocess.Popen | None = None
        self.earlier: dict[str, set[str]] = {}  # each DAG's runs for the day before the attempt
        (work / "logs").mkdir(parents=True, exist_ok=True)

    def start(self, day: dt.date) -> tuple[DagRunner, subprocess.Popen]:
        """Serve the day's view and send its runs to the DAG runner (started first when there is none); returns
        the DAG runner and the feed."""
        if self.clock is None or self.clock.day != day:
            self.clock = DayClock.starting_now(day)
        if self.dag_runner is None:
            local_run.migrate_metadata_db(str(Path(sys.executable).parent / "airflow"), self.env)
            self.dag_runner = DagRunner(self.env, self.home / "dags-test-runner.log", own_group=True)
        data = local_run.day_view(self.timeline, self.warehouse, day)
        token = secrets.token_hex(16)
        self.feed, url = local_run.start_feed(data, token, "")
        runs: list[tuple[str, dt.date, dict]] = [(dag_id, day, {}) for dag_id in DAGS]
        self.earlier = {dag_id: local_run.run_ids(self.home, dag_id, day) for dag_id in DAGS}
        env = local_run.dataset_env(url, token, data) | self.clock.env()
        self.dag_runner.send({"runs": local_run.dag_run_plan(self.home, runs), "env": env})
        return self.dag_runner, self.feed

    def ended(self, day: dt.date, attempt: str, written_since: float) -> None:
        """An attempt ended: the feed stopped, the runs' Airflow logs kept beside the soak's, and what it wrote dated
        on the day's clock."""
        assert self.clock is not None  # set by start()
        if self.feed is not None:
            self.feed.terminate()
            self.feed.wait(timeout=60)
            self.feed = None
        for dag_id in DAGS:
            log = local_run.dags_test_log(self.home, dag_id, day)
            if log.exists():
                shutil.copy(log, self.work / "logs" / f"{day}-{attempt}-{dag_id}.log")
        self.clock.date_files([self.warehouse, self.exports], written_since)

    def judge(self, day: dt.date, attempt: str) -> None:
        """Each run judged as `make run` judges it; its tasks in logs/<D>-<attempt>.log."""
        lines = []
        try:
            for dag_id in DAGS:
                run, tis = local_run.dag_run_now(self.home, dag_id, day, self.earlier[dag_id])
                state = run[1] if run else None
                lines += [f"{dag_id} {state}"] + [f"  {t:<40} {s} {d or 0:6.1f} s" for t, s, d, _ in tis]
                local_run.judge_run(dag_id, day, state, tis)
        except local_run.RunFailed as exc:
            raise SystemExit(f"the run for {day} ({attempt}) failed: {exc}; {self.work / 'logs'}") from None
        finally:
            (self.work / "logs" / f"{day}-{attempt}.log").write_text(
                "\n".join(lines) + "\n", encoding="utf-8"
            )

    def run(self, day: dt.date, attempt: str) -> tuple[float, float]:
        """The day's run to its end: (wall seconds, CPU seconds of the DAG runner, the programs it started and the
        feed). The CPU time is the steadier measure of what a day costs on a machine that does other work too."""
        started, wall, cpu = time.monotonic(), time.time(), self._cpu()
        try:
            dag_runner, _ = self.start(day)
            dag_runner.reply()
            self.judge(day, attempt)
            dag_runner.send({"clean": True})  # every run judged a success: Airflow's old records may go
            if (dag_runner.reply() or {}).get("status") != 0:
                print(f"{day}: Airflow's old records were not cleaned: {self.home / 'dags-test-runner.log'}")
        finally:
            self.ended(day, attempt, wall)
        return round(time.monotonic() - started, 1), round(self._cpu() - cpu, 1)

    def kill_midway(self, day: dt.date, rng: random.Random, within_s: float) -> float:
        """Send the day's runs and SIGKILL the DAG runner's whole process group (Airflow's task, dbt, the forms
        workers) and the feed at a random moment within `within_s` seconds, as a power cut would; the next
        attempt starts a new DAG runner. A run that ended first is tried again with a shorter span. Returns
        when it was killed."""
        for attempt in range(4):
            after_s = rng.uniform(2, within_s / 2**attempt)
            wall = time.time()
            try:
                dag_runner, feed = self.start(day)
                if dag_runner.reply(timeout=after_s) is None:
                    pid = dag_runner.proc.pid
                    os.killpg(pid, signal.SIGKILL)
                    feed.kill()
                    dag_runner.close()
                    self.dag_runner = None
                    _wait_for_group_gone(pid)
                    return after_s
            finally:
                self.ended(day, "killed", wall)
        raise SystemExit(f"every run for {day} ended before the kill: {self.work / 'logs'}")

    def close(self) -> None:
        if self.dag_runner is not None:
            self.dag_runner.close()
            self.dag_runner = None

    def rss_mb(self) -> float | None:
        """The DAG runner's resident memory now (MB): what it keeps from day to day."""
        if self.dag_runner is None:
            return None
        for line in Path(f"/proc/{self.dag_runner.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return None

    def _cpu(self) -> float:
        """CPU seconds so far of the DAG runner and its waited-for children, and of this process's waited-for
        children (the feeds, DAG runners that ended)."""
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = usage.ru_utime + usage.ru_stime
        if self.dag_runner is not None:
            fields = Path(f"/proc/{self.dag_runner.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        return total


def _live_in_group(pgid: int) -> list[int]:
    """The processes of a process group that still run (Linux /proc; zombies are dead, whoever reaps them)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            live.append(int(stat.parent.name))
    return live


def _wait_for_group_gone(pgid: int, timeout_s: float = 30) -> None:
    """Wait until no process of the group runs (the leader is reaped first; the others, killed with it, die a
    moment later), so that nothing of a killed run writes after its files were dated."""
    deadline = time.monotonic() + timeout_s
    while live := _live_in_group(pgid):
        if time.monotonic() > deadline:
            raise SystemExit(f"processes {live} of the killed run still run {timeout_s:g} s after SIGKILL")
        time.sleep(0.05)


# -- the from-scratch rebuild ---------------------------------------------------------------------------------
def rebuild(timeline: Path, day: dt.date, folder: Path, ledger_before: Path | None, key: str) -> Settings:
    """The day from nothing: its data, an empty warehouse, the pipeline's steps in order, dbt's models, the
    publication and, with the ledger as it was before the day, the export."""
    from pipeline import steps

    shutil.rmtree(folder, ignore_errors=True)
    view(timeline, day, folder / "data")
    feed = RunningFeed(folder / "data")
    try:
        settings = replace(make_settings(folder, folder / "data", feed.url), pseudonym_key=key.encode())
        load_id = f"{day.isoformat()}:rebuild"
        steps.extract_feed(day, load_id, settings=settings)
        steps.load_local_sources(day, load_id, settings=settings)
        steps.verify_certificates(day, load_id, settings=settings)
    finally:
        feed.stop()
    # dbt in this process (dbtRunner, as the DAG's dbt task runs it): from the second day on its imports are
    # warm, which saves ~5 s of each rebuild. The target folder is beside the rebuild's folder, not in it: kept
    # from day to day, with D in the environment and not in --vars, dbt's partial parse stays valid (a full parse
    # is ~5 s a day).
    from dbt.cli.main import dbtRunner

    from pipeline.dbt_handle import release_dbt_duckdb

    build = [
        *("build", "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR)),
        *("--exclude", "resource_type:unit_test", "resource_type:test"),  # the marts, as the run builds them
        *("--target-path", str(folder.parent / f"{folder.name}-dbt-target")),
        *("--log-path", str(folder / "dbt-logs"), "--quiet"),
    ]
    with _environment(
        WAREHOUSE_DB=str(settings.warehouse_db),
        RENEWAL_AS_OF=day.isoformat(),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    ):
        try:
            done = dbtRunner().invoke(build)
        finally:
            release_dbt_duckdb()  # publish opens the warehouse next, in this process
    if not done.success:
        raise SystemExit(
            f"the rebuild's dbt build for {day} failed: {done.exception or 'see ' + str(folder / 'dbt-logs')}"
        )
    steps.publish(day, settings=settings)
    if ledger_before is not None:
        settings.reminder_ledger_db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ledger_before, settings.reminder_ledger_db)
    return settings


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """This process's environment with `values` for the block (dbt reads its profile and D from it)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def mart_differences(published: Path, rebuilt: Path, day: dt.date) -> list[str]:
    """The marts whose rows differ between the soak's publication and the rebuild (renewal_history: the day's rows,
    without the columns that compare with the previous run)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{published}' AS soak (READ_ONLY)")
        con.execute(f"ATTACH '{rebuilt}' AS fresh (READ_ONLY)")
        tables = [
            t
            for (t,) in con.execute(
                "SELECT DISTINCT table_name FROM duckdb_tables() WHERE schema_name = 'marts' ORDER BY 1"
            ).fetchall()
        ]
        differ = []
        for table in tables:
            columns = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = 'fresh' AND schema_name = 'marts' "
                    "AND table_name = ? ORDER BY column_index",
                    [table],
                ).fetchall()
                if not (table == "renewal_history" and c in HISTORY_RUN_COLUMNS)
            ]
            where = f"WHERE as_of = DATE '{day.isoformat()}'" if table == "renewal_history" else ""
            select = ", ".join(f'"{c}"' for c in columns)
            diff = con.execute(
                f"""SELECT count(*) FROM (
                      (SELECT {select} FROM soak.marts.{table} {where} EXCEPT ALL SELECT {select} FROM fresh.marts.{table})
                      UNION ALL
                      (SELECT {select} FROM fresh.marts.{table} EXCEPT ALL SELECT {select} FROM soak.marts.{table} {where}))"""
            ).fetchone()[0]
            if diff:
                differ.append(f"marts.{table}: {diff} rows differ")
        return differ
    finally:
        con.close()


def due_reminders(published: Path, day: dt.date) -> set[tuple[str, str, str]]:
    """(institution, period, reminder type) of the reminders due on the day: what its run must have sent by then."""
    con = duckdb.connect(str(published), read_only=True)
    try:
        rows = con.execute(
            "SELECT institution_id, expires_on::VARCHAR, reminder_type FROM marts.reminders WHERE first_due_on <= ?",
            [day],
        ).fetchall()
        return {tuple(r) for r in rows}
    finally:
        con.close()


# -- the invariants over the period ---------------------------------------------------------------------------
def reminder_check(ledger_db: Path, exports: Path, due: set[tuple[str, str, str]]) -> dict:
    """Each reminder sent once: one ledger row, one CSV line in the export of its sent_on day, and no line for it
    in any other day's export; sent on or after first_due_on; every reminder that fell due is in the ledger."""
    con = duckdb.connect(str(ledger_db), read_only=True)
    try:
        ledger = con.execute(
            "SELECT institution_id, period_expires_on::VARCHAR, reminder_type, first_due_on, sent_on "
            "FROM reminder_ledger"
        ).fetchall()
    finally:
        con.close()
    lines: collections.Counter[tuple[str, str, str]] = collections.Counter()  # (institution, period, day)
    by_type: collections.Counter[tuple[str, str, str]] = (
        collections.Counter()
    )  # (institution, period, type zh)
    for path in sorted(exports.glob(f"*/*{REMINDER_CSV}*.csv")):
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                lines[(row["机构编号"], row["备案到期时间"], path.parent.name)] += 1
                by_type[(row["机构编号"], row["备案到期时间"], row["提醒类型"])] += 1
    # retention prunes an export folder to its manifest after 180 days: a longer soak checks the days not pruned
    pruned = {
        folder.name
        for folder in exports.glob("*/")
        if (folder / "manifest.json").exists() and not any(folder.glob(f"*{REMINDER_CSV}*.csv"))
    }
    in_ledger = collections.Counter(
        (iid, period, sent.isoformat())
        for iid, period, _, _, sent in ledger
        if sent.isoformat() not in pruned
    )
    problems = []
    if lines != in_ledger:
        problems.append(
            f"exports and ledger disagree on {len(set(lines.items()) ^ set(in_ledger.items()))} lines"
        )
    twice = [k for k, n in by_type.items() if n > 1]
    if twice:
        problems.append(f"{len(twice)} reminders went out more than once, e.g. {twice[:3]}")
    early = [r for r in ledger if r[4] < r[3]]
    if early:
        problems.append(f"{len(early)} reminders sent before their first_due_on, e.g. {early[:3]}")
    missed = due - {(iid, period, kind) for iid, period, kind, _, _ in ledger}
    if missed:
        problems.append(f"{len(missed)} reminders fell due and were never sent, e.g. {sorted(missed)[:3]}")
    return {
        "reminders_sent": len(ledger),
        "reminders_sent_once": not twice and lines == in_ledger and not early,
        "reminders_missed": len(missed),
        "reminder_problems": problems,
    }


# -- the soak -------------------------------------------------------------------------------------------------
def warehouse_bytes(warehouse: Path) -> int:
    """What the pipeline keeps: the warehouse folder without Airflow's home and the day's view of the timeline."""
    skip = {warehouse / ".airflow", warehouse / ".timeline-view"}
    return sum(
        p.stat().st_size
        for p in warehouse.rglob("*")
        if p.is_file() and not p.is_symlink() and not any(s in p.parents for s in skip)
    )


def retention_removed(warehouse_db: Path, day: dt.date) -> tuple[int, int]:
    """Rows and files the day's retention removed, over all its runs (raw.run_metrics, step retention)."""
    con = duckdb.connect(str(warehouse_db), read_only=True)
    try:
        rows, files = con.execute(
            """SELECT coalesce(sum(value) FILTER (WHERE metric = 'rows_removed'), 0),
                      coalesce(sum(value) FILTER (WHERE metric = 'files_removed'), 0)
               FROM raw.run_metrics WHERE step = 'retention' AND as_of = ?""",
            [day],
        ).fetchone()
        return int(rows), int(files)
    finally:
        con.close()


def feed_versions(timeline: Path, day: dt.date) -> int:
    """The feed records new or changed on the day: versions whose updated_at falls on it."""
    prefix = f'"updated_at":"{day.isoformat()}T'
    count = 0
    for name in ("institutions.jsonl", "registered_occupations.jsonl", "plans.jsonl", "certificates.jsonl"):
        with open(timeline / name, encoding="utf-8") as lines:
            count += sum(prefix in line for line in lines)
    return count


def soak_day(runner: Runner, entry: Day, day: dt.date, last_run_s: float, rng: random.Random) -> Path:
    """One day's runs as planned, measured. Returns where the reminder ledger as it was before the day was kept
    (the file is absent when there was none), for the day's check."""
    ledger = runner.warehouse / "reminder_ledger.duckdb"
    before = runner.work / "checks" / f"ledger-before-{day}.duckdb"
    before.parent.mkdir(exist_ok=True)
    if ledger.exists():
        shutil.copy(ledger, before)
    if entry.killed:
        entry.killed_after_s = round(runner.kill_midway(day, rng, 0.6 * last_run_s), 1)
    entry.runner_started = runner.dag_runner is None
    entry.run_s, entry.run_cpu_s = runner.run(day, "run")
    if entry.rerun:
        entry.rerun_s, _ = runner.run(day, "rerun")
    entry.runner_rss_mb = runner.rss_mb()
    entry.warehouse_bytes = warehouse_bytes(runner.warehouse)
    entry.retention_rows_removed, entry.retention_files_removed = retention_removed(
        runner.warehouse / "warehouse.duckdb", day
    )
    return before


def check_day(runner: Runner, entry: Day, day: dt.date, key: str, before: Path, published: Path) -> set:
    """The day's publication (a copy of it: the next day's run replaces the file) and export compared with a
    rebuild of the day from nothing; returns the reminders due on the day."""
    fresh = rebuild(runner.timeline, day, runner.work / "rebuild", before if before.exists() else None, key)
    from pipeline import steps

    steps.export(day, settings=fresh)
    entry.differences = mart_differences(published, fresh.published_db, day)
    entry.marts_equal_rebuild = not entry.differences
    ours, clean = (
        file_digests(runner.exports / day.isoformat()),
        file_digests(fresh.exports_dir / day.isoformat()),
    )
    entry.exports_equal_clean = ours == clean
    if not entry.exports_equal_clean:
        changed = sorted(k for k in ours.keys() | clean.keys() if ours.get(k) != clean.get(k))
        entry.differences.append(f"exports: {len(changed)} files differ, e.g. {changed[:3]}")
    before.unlink(missing_ok=True)
    published.unlink()
    return due_reminders(fresh.published_db, day)


class Checks:
    """The days' checks, one at a time, each after the day's runs. `beside`: each in a thread beside the next
    day's runs instead. A check works in this process (the rebuild, dbt, the comparisons) while the runs work in
    the DAG runner's, so on two cores the check then costs the soak little time, but the runs share the cores
    with it and take longer by the clock, more as the data grows. A check's row is printed when it is done, so
    the rows stay in day order."""

    def __init__(self, beside: bool) -> None:
        self.beside = beside
        self.due: set[tuple[str, str, str]] = set()
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None

    def start(self, entry: Day, check: Callable[[], set] | None) -> None:
        """Start the day's check (after the one before has ended); None: the day has none, only its row."""
        self.wait()

        def work() -> None:
            try:
                self.due |= check() if check else set()
                print(row_text(entry), flush=True)
            except BaseException as exc:  # re-raised in the soak's own thread by wait()
                self._failed = exc

        if self.beside:
            self._thread = threading.Thread(target=work, name=f"check {entry.day}", daemon=True)
            self._thread.start()
        else:
            work()
            self.wait()

    def wait(self) -> None:
        """Until the check under way has ended; raises what it raised."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._failed is not None:
            raise self._failed


def soak_key(work: Path) -> str:
    """The pseudonym key of the soak's runs and rebuilds, which must pseudonymise alike: made for each soak, kept
    in the work folder (owner only) so that later days can be run on its warehouse."""
    key = secrets.token_hex(32)
    path = work / "pseudonym_key"
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(key)
    return key


def run_days(
    runner: Runner, plan: dict[dt.date, Day], key: str, seed: int, every: int, checks: Checks
) -> set[tuple[str, str, str]]:
    """Each day of the plan in turn, its row printed once it is checked; returns the reminders that fell due on
    the days checked."""
    rng = random.Random(f"soak-kill:{seed}")
    last_run_s = 40.0
    for day, entry in plan.items():
        entry.feed_versions = feed_versions(runner.timeline, day)
        if entry.skipped:  # the scheduler was down: only what the day would have owed is noted
            entry.warehouse_bytes = warehouse_bytes(runner.warehouse) if runner.warehouse.exists() else 0
            # A stricter check than R-REMIND asks: a reminder that held only on a skipped day must still go
            # out. Over a gap of days a reminder may rightly stop holding before the next run (an institution
            # that applied), so with `every` the run days' own due reminders are checked.
            owed = functools.partial(rebuild_due, runner.timeline, day, runner.work / "rebuild", key)
            checks.start(entry, owed if every == 1 else None)
            continue
        before = soak_day(runner, entry, day, last_run_s, rng)
        last_run_s = entry.run_s or last_run_s
        published = runner.work / "checks" / f"published-{day}.duckdb"
        checks.wait()  # the check before used the rebuild's folder
        shutil.copy(runner.warehouse / "published.duckdb", published)
        checks.start(entry, functools.partial(check_day, runner, entry, day, key, before, published))
    checks.wait()
    return checks.due


def rebuild_due(timeline: Path, day: dt.date, folder: Path, key: str) -> set:
    """The reminders due on a day, from a rebuild of it from nothing."""
    return due_reminders(rebuild(timeline, day, folder, None, key).published_db, day)


def run_soak(
    start: dt.date,
    end: dt.date,
    institutions: int,
    out: Path,
    seed: int,
    timeline_end: dt.date | None = None,
    every: int = 1,
    checks_beside: bool = False,
) -> dict:
    """The soak of start … end; the timeline runs to timeline_end (default end), so that later days can be run
    on the soak's warehouse afterwards. every > 1: the scheduler runs every `every`-th day (day_plan)."""
    work = out / "soak-work"
    timeline = work / "timeline"
    span = (start, max(end, timeline_end or end))
    if not (timeline / "timeline.json").exists() or timeline_span(timeline) != span:
        shutil.rmtree(work, ignore_errors=True)
        print(f"generating the timeline {span[0]} … {span[1]} ({institutions} institutions) …", flush=True)
        generate_timeline(timeline, *span, institutions, seed)
    for folder in ("warehouse", "exports", "logs", "checks", "rebuild", "rebuild-dbt-target"):
        shutil.rmtree(work / folder, ignore_errors=True)
    key = soak_key(work)
    runner = Runner(work, timeline, key)
    days = [start + DAY * n for n in range((end - start).days + 1)]
    plan = day_plan(days, seed, every)
    # no `make run` on the soak's warehouse while it runs (local_run's own locks)
    with local_run.exclusive_run(runner.warehouse / ".run.lock", runner.exports / ".run.lock"):
        try:
            due = run_days(runner, plan, key, seed, every, Checks(checks_beside))
        finally:
            runner.close()
    result = {
        "days": [asdict(plan[d]) for d in days],
        **reminder_check(runner.warehouse / "reminder_ledger.duckdb", runner.exports, due),
        "warehouse": str(runner.warehouse),
        "institutions": institutions,
        "every": every,
        "checks_beside": checks_beside,
    }
    result |= cost_summary(result["days"])
    return result


def cost_summary(days: list[dict]) -> dict:
    """The last day's time against the first incremental day's (the first run loads everything; a run that started
    a DAG runner, after the kill, pays its start-up and is left out too), and the growth."""
    ran = [d for d in days if not d["skipped"] and d["run_s"] is not None]
    incremental = [d for d in ran[1:] if not d.get("runner_started")]
    summary: dict = {}
    if len(incremental) >= 2:
        summary["time_ratio_last_to_first"] = round(incremental[-1]["run_s"] / incremental[0]["run_s"], 2)
        summary["cpu_ratio_last_to_first"] = round(
            incremental[-1]["run_cpu_s"] / incremental[0]["run_cpu_s"], 2
        )
    if len(ran) >= 2:
        growth = ran[-1]["warehouse_bytes"] - ran[0]["warehouse_bytes"]
        changes = sum(d["feed_versions"] for d in days[days.index(ran[0]) + 1 :])
        summary["warehouse_growth_bytes"] = growth
        summary["feed_versions_after_first_day"] = changes
        summary["bytes_per_feed_version"] = round(growth / changes) if changes else None
    return summary


def row_text(d: Day) -> str:
    flags = " ".join(f for f, on in (("skipped", d.skipped), ("rerun", d.rerun), ("killed", d.killed)) if on)
    verdict = "" if d.skipped else ("ok" if d.marts_equal_rebuild and d.exports_equal_clean else "DIFFERS")
    run = (
        f"{d.run_s:6.1f} s {d.run_cpu_s or 0:6.1f} cpu-s" if d.run_s is not None else "     - s      - cpu-s"
    )
    pruned = f"{d.retention_rows_removed:6d} rows {d.retention_files_removed:4d} files pruned"
    return f"{d.day}  {run}  {d.warehouse_bytes / 1e6:7.1f} MB  {d.feed_versions:6d} changes  {pruned}  {verdict:8} {flags}"


def chart(days: list[dict], width: int = 40) -> str:
    """Time and size against day, as bars."""
    top_s = max((d["run_s"] or 0) for d in days) or 1
    top_b = max(d["warehouse_bytes"] for d in days) or 1
    lines = [
        f"{'day':10}  {'run time (max ' + str(top_s) + ' s)':{width}}  warehouse size (max {top_b / 1e6:.1f} MB)"
    ]
    for d in days:
        run = "#" * round(width * (d["run_s"] or 0) / top_s) if not d["skipped"] else "(skipped)"
        size = "=" * round(width * d["warehouse_bytes"] / top_b)
        lines.append(f"{d['day']:10}  {run:{width}}  {size}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--from", dest="start", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--to", dest="end", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--institutions", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument(
        "--every",
        type=int,
        default=1,
        help="run every N-th day only (the days between skipped, as over a weekly schedule): a long period in "
        "fewer runs",
    )
    parser.add_argument(
        "--checks-beside",
        action="store_true",
        help="check each day in a thread beside the next day's runs: the soak takes less time, and its run times "
        "are no measure of cost (the runs share the cores with the checks)",
    )
    parser.add_argument(
        "--timeline-to",
        type=dt.date.fromisoformat,
        default=None,
        help="generate the timeline to this later day (later days can then be run on the soak's warehouse)",
    )
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error(f"TO={args.end} is before FROM={args.start}")
    if args.every < 1:
        parser.error(f"--every {args.every}: give 1 (every day) or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = run_soak(
        args.start,
        args.end,
        args.institutions,
        out,
        args.seed,
        args.timeline_to,
        args.every,
        args.checks_beside,
    )
    (out / "soak.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print()
    print(chart(result["days"]))
    print()
    ok = (
        all(d["marts_equal_rebuild"] and d["exports_equal_clean"] for d in result["days"] if not d["skipped"])
        and result["reminders_sent_once"]
        and result["reminders_missed"] == 0
    )
    for d in result["days"]:
        for difference in d["differences"]:
            print(f"{d['day']}: {difference}")
    for problem in result["reminder_problems"]:
        print(problem)
    print(
        f"{result['reminders_sent']} reminders sent; sent once: {result['reminders_sent_once']}; missed: "
        f"{result['reminders_missed']}; last/first incremental day: {result.get('time_ratio_last_to_first')} "
        f"(CPU {result.get('cpu_ratio_last_to_first')}); "
        f"{out / 'soak.json'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
