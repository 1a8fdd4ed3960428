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
import json
import os
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Iterator
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
from pipeline.commands import local_run_command  # noqa: E402
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
class Runner:
    """`python -m pipeline.local_run` for a day on the soak's warehouse, in its own process group."""

    def __init__(self, work: Path, timeline: Path, env: dict[str, str]) -> None:
        self.work, self.timeline, self.env = work, timeline, env
        self.warehouse, self.exports = work / "warehouse", work / "exports"
        self.clock: DayClock | None = None
        (work / "logs").mkdir(parents=True, exist_ok=True)

    def start(self, day: dt.date, attempt: str) -> subprocess.Popen:
        if self.clock is None or self.clock.day != day:
            self.clock = DayClock.starting_now(day)
        log = open(self.work / "logs" / f"{day.isoformat()}-{attempt}.log", "w")  # noqa: SIM115 - closed by the child's end
        command = local_run_command("--as-of", day.isoformat(), "--data", str(self.timeline))
        command += ["--warehouse", str(self.warehouse), "--exports", str(self.exports)]
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env | self.clock.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def ended(self, written_since: float) -> None:
        """An attempt ended: what it wrote is dated on the day's clock."""
        assert self.clock is not None  # set by start()
        self.clock.date_files([self.warehouse, self.exports], written_since)

    def run(self, day: dt.date, attempt: str) -> tuple[float, float]:
        """The day's run to its end: (wall seconds, CPU seconds of all its processes). The CPU time is the steadier
        measure of what a day costs on a machine that does other work too."""
        started, cpu, wall = time.monotonic(), _children_cpu(), time.time()
        proc = self.start(day, attempt)
        code = proc.wait()
        elapsed = round(time.monotonic() - started, 1), round(_children_cpu() - cpu, 1)
        self.ended(wall)
        if code != 0:
            log = self.work / "logs" / f"{day}-{attempt}.log"
            raise SystemExit(f"the run for {day} ({attempt}) failed: {log}")
        return elapsed

    def kill_midway(self, day: dt.date, rng: random.Random, within_s: float) -> float:
        """Start the day's run and SIGKILL its whole process group (the run, Airflow's task, dbt, the feed) at a
        random moment within `within_s` seconds, as a power cut would; a run that ended first is tried again with
        a shorter span. Returns when it was killed."""
        for attempt in range(4):
            after_s = rng.uniform(2, within_s / 2**attempt)
            wall = time.time()
            proc = self.start(day, "killed")
            try:
                proc.wait(timeout=after_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                _wait_for_group_gone(proc.pid)
                return after_s
            finally:
                self.ended(wall)
        raise SystemExit(f"every run for {day} ended before the kill: {self.work / 'logs'}")


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


def _children_cpu() -> float:
    """User and system CPU seconds of this process's waited-for children and theirs (`make run`'s whole tree)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


def soak_day(
    runner: Runner, entry: Day, day: dt.date, key: str, last_run_s: float, rng: random.Random
) -> Day:
    """One day: its runs as planned, then the comparison with a rebuild from nothing."""
    ledger = runner.warehouse / "reminder_ledger.duckdb"
    before = runner.work / "ledger-before.duckdb"
    before.unlink(missing_ok=True)
    if ledger.exists():
        shutil.copy(ledger, before)
    if entry.killed:
        entry.killed_after_s = round(runner.kill_midway(day, rng, 0.6 * last_run_s), 1)
    entry.run_s, entry.run_cpu_s = runner.run(day, "run")
    if entry.rerun:
        entry.rerun_s, _ = runner.run(day, "rerun")
    entry.warehouse_bytes = warehouse_bytes(runner.warehouse)
    entry.retention_rows_removed, entry.retention_files_removed = retention_removed(
        runner.warehouse / "warehouse.duckdb", day
    )
    fresh = rebuild(runner.timeline, day, runner.work / "rebuild", before if before.exists() else None, key)
    from pipeline import steps

    steps.export(day, settings=fresh)
    entry.differences = mart_differences(runner.warehouse / "published.duckdb", fresh.published_db, day)
    entry.marts_equal_rebuild = not entry.differences
    ours, clean = (
        file_digests(runner.exports / day.isoformat()),
        file_digests(fresh.exports_dir / day.isoformat()),
    )
    entry.exports_equal_clean = ours == clean
    if not entry.exports_equal_clean:
        changed = sorted(k for k in ours.keys() | clean.keys() if ours.get(k) != clean.get(k))
        entry.differences.append(f"exports: {len(changed)} files differ, e.g. {changed[:3]}")
    return entry


def run_environment(key: str) -> dict[str, str]:
    """The runs' environment: this one's, with the soak's pseudonym key, and without what would make local_run
    read other days or folders (`make soak FROM= TO=` puts FROM and TO in it, where local_run reads a backfill)."""
    ignored = {
        "FROM",
        "TO",
        "AS_OF",
        "DATA",
        "WAREHOUSE",
        "EXPORTS",
        "FEED_URL",
        "FEED_TOKEN",
        "FULL_REFRESH",
    }
    return {k: v for k, v in os.environ.items() if k not in ignored and k != clock.OFFSET_ENV} | {
        "PSEUDONYM_KEY": key
    }


def soak_key(work: Path) -> str:
    """The pseudonym key of the soak's runs and rebuilds, which must pseudonymise alike: made for each soak, kept
    in the work folder (owner only) so that later days can be run on its warehouse."""
    key = secrets.token_hex(32)
    path = work / "pseudonym_key"
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(key)
    return key


def run_soak(
    start: dt.date,
    end: dt.date,
    institutions: int,
    out: Path,
    seed: int,
    timeline_end: dt.date | None = None,
    every: int = 1,
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
    for folder in ("warehouse", "exports", "logs", "rebuild", "rebuild-dbt-target"):
        shutil.rmtree(work / folder, ignore_errors=True)
    key = soak_key(work)
    runner = Runner(work, timeline, run_environment(key))
    days = [start + DAY * n for n in range((end - start).days + 1)]
    plan = day_plan(days, seed, every)
    rng = random.Random(f"soak-kill:{seed}")
    due: set[tuple[str, str, str]] = set()
    last_run_s = 40.0
    for day in days:
        entry = plan[day]
        entry.feed_versions = feed_versions(timeline, day)
        if entry.skipped:  # the scheduler was down: only what the day would have owed is noted
            if every == 1:
                # A stricter check than R-REMIND asks: a reminder that held only on a skipped day must still go
                # out. Over a gap of days a reminder may rightly stop holding before the next run (an
                # institution that applied), so with `every` the run days' own due reminders are checked.
                fresh = rebuild(timeline, day, work / "rebuild", None, key)
                due |= due_reminders(fresh.published_db, day)
            entry.warehouse_bytes = warehouse_bytes(runner.warehouse) if runner.warehouse.exists() else 0
        else:
            soak_day(runner, entry, day, key, last_run_s, rng)
            due |= due_reminders(work / "rebuild" / "warehouse" / "published.duckdb", day)
            last_run_s = entry.run_s or last_run_s
        print(row_text(entry), flush=True)
    result = {
        "days": [asdict(plan[d]) for d in days],
        **reminder_check(runner.warehouse / "reminder_ledger.duckdb", runner.exports, due),
        "warehouse": str(runner.warehouse),
        "institutions": institutions,
        "every": every,
    }
    result |= cost_summary(result["days"])
    return result


def cost_summary(days: list[dict]) -> dict:
    """The last day's time against the first incremental day's (the first run loads everything), and the growth."""
    ran = [d for d in days if not d["skipped"] and d["run_s"] is not None]
    incremental = ran[1:]
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


def main(argv: list[str] | None = None) -> int:
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
        "--timeline-to",
        type=dt.date.fromisoformat,
        default=None,
        help="generate the timeline to this later day (later days can then be run on the soak's warehouse)",
    )
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error(f"TO={args.end} is before FROM={args.start}")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.every < 1:
        parser.error(f"--every {args.every}: give 1 (every day) or more")
    result = run_soak(args.start, args.end, args.institutions, out, args.seed, args.timeline_to, args.every)
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
