"""`make bench`: the daily run at province scale, stage by stage, against the real mock feed and Airflow.

For each size (BENCH_SIZES, default 200,2000 institutions; BENCH_SCALE multiplies candidates per plan,
default 4.5, i.e. about 2,400 certificates an institution, so 2,000 institutions hold about 4.7 million):
1. generate the dataset (cached in bench/data/ between runs);
2. the whole daily run through Airflow (`python -m pipeline.local_run`: feed server, renewal_daily and
   renewal_reminders in `airflow dags test`), on an empty warehouse; each stage's time is read from Airflow's
   task instances, row counts from the run summary (ops.run_metrics);
3. a second, incremental run after 1% of the plans and certificates changed (updated_at moved to D), from the
   same warehouse: by `airflow dags test` as in 2, and as production runs it, triggered into a resident Airflow
   (api-server, scheduler with the LocalExecutor, dag-processor; bench/resident.py), twice: the first run after
   its start, then the measured one, timed by Airflow from the run's creation to the end of both DAGs;
4. peak RSS of the run: the highest sum over its process tree (local_run, Airflow, dbt), sampled every 0.2 s,
   and the task running then;
5. the physical limit of landing: DuckDB's read_json over the same certificate pages, fetched to files first.
The mock feed runs in its own process, started before the run as the national network would be; its load
time and peak RSS are reported apart (feed_load_s, feed_peak_rss_mb).
Once, on a smaller dataset (BENCH_PEER_INSTITUTIONS, default 60): our ingest of the certificates alone (the
median of 5 runs) against dlt's rest_api source into DuckDB (one run: ~50 s), over the same feed served the
same way. Writes bench/results.json (a size not rerun keeps its earlier entry, with the commit it was measured
on: `BENCH_SIZES=6000 make bench` adds the largest size, about 23 minutes here) and prints it; bench/README.md
holds the measured tables and the analysis.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the PostgreSQL server the tests start, shared with the bench

from pgserver import postgres_bin, running_postgres  # noqa: E402

from ingest.warehouse import open_duckdb, sql_literal  # noqa: E402
from pipeline.commands import generate_command, local_run_command  # noqa: E402
from pipeline.local_run import airflow_home  # noqa: E402

AS_OF = dt.date(2026, 11, 25)
BENCH = ROOT / "bench"
STAGES = {  # result key -> renewal_daily task ids (prefix match)
    "ingest_s": ["extract_feed"],
    "centre_records_s": ["load_local_sources"],  # the PRC calendar and the centre's spreadsheets
    "lookup_s": ["verify_certificates"],
    "dbt_build_s": ["dbt_build"],
    "gate_s": ["quality_gate"],
    "feed_freshness_s": ["feed_freshness"],  # R-FEED: dbt source freshness and the mart's verdict
    "publish_s": ["publish"],
    "publish_postgres_s": ["publish_postgres"],
}


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    mem_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "cpu": next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
            platform.machine(),
        ),
    }


def dataset(institutions: int, scale: float) -> tuple[Path, float | None]:
    out = BENCH / "data" / f"inst{institutions}-x{scale}"
    if (out / "certificates.jsonl").exists():
        return out, None
    started = time.perf_counter()
    partial = out.with_name(out.name + ".partial")  # renamed when complete: an interrupted run is not cached
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(
        generate_command(partial, AS_OF, institutions, "--candidates-scale", str(scale), "--seed", "2026"),
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    partial.rename(out)
    return out, time.perf_counter() - started


def changed_copy(data: Path, target: Path, share: float = 0.01) -> int:
    """A copy of the dataset in which `share` of the plans and certificates changed today (late corrections):
    every 1/share-th line gets today's updated_at; the rest stays byte for byte."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(data, target)
    stamp = re.compile(rb'"updated_at": ?"[^"]*"')
    today = f'"updated_at":"{AS_OF.isoformat()}T23:00:00+08:00"'.encode()
    every, changed = round(1 / share), 0
    for name in ("plans", "certificates"):
        with open(data / f"{name}.jsonl", "rb") as src, open(target / f"{name}.jsonl", "wb") as dst:
            for n, line in enumerate(src):
                if n % every == 0:
                    line, k = stamp.subn(today, line, count=1)
                    changed += k
                dst.write(line)
    return changed


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory now (VmRSS) or at its highest so far (VmHWM), in kB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += parents.get(pid, [])
    return tree


def process_title(pid: int) -> str:
    """What a process is, for the peak's breakdown: its command line (Airflow sets a task process's title)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    return " ".join(Path(a).name if a.startswith("/") else a for a in args if a)[:90]


class PeakRss:
    """Samples the summed RSS of a process tree every 0.2 s; `stop()` gives the highest sum seen (MB), and
    `at_peak` what each process held then (MB, the largest first)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kb, self._stop = pid, 0, threading.Event()
        self.at_peak: list[tuple[str, int]] = []
        self.peak_at: dt.datetime | None = None
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            sizes = {p: rss_kb(p) for p in process_tree(self.pid)}
            total = sum(sizes.values())
            if total > self.peak_kb:
                self.peak_kb = total
                self.peak_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # as Airflow's SQLite holds it
                self.at_peak = sorted(
                    ((process_title(p), round(kb / 1024)) for p, kb in sizes.items() if kb),
                    key=lambda item: -item[1],
                )

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_mb

    @property
    def peak_mb(self) -> int:
        return round(self.peak_kb / 1024)


class Feed:
    """The mock feed in its own process, as in production the national network is up before the run starts;
    its load time and memory are measured apart from the run's."""

    def __init__(self, data: Path) -> None:
        from pipeline.local_run import start_feed

        self.token = "bench-token"
        started = time.perf_counter()
        self.proc, self.url = start_feed(data, self.token, "")
        self.load_s = round(time.perf_counter() - started, 1)

    def stop(self) -> int:
        """Stop the feed; its peak RSS in MB (VmHWM, which covers the load)."""
        peak = round(rss_kb(self.proc.pid, "VmHWM") / 1024)
        self.proc.terminate()
        self.proc.wait(timeout=30)
        return peak


def local_run(data: Path, work: Path, env: dict, feed: Feed) -> tuple[float, PeakRss]:
    """The daily run through Airflow against `feed`: wall seconds, and the peak RSS of its process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        local_run_command(
            "--as-of",
            AS_OF.isoformat(),
            "--data",
            str(data),
            "--warehouse",
            str(work / "warehouse"),
            "--exports",
            str(work / "exports"),
            "--feed-url",
            feed.url,
            "--feed-token",
            feed.token,
        ),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rss = PeakRss(proc.pid)
    stdout, stderr = proc.communicate()
    rss.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"the daily run failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return time.perf_counter() - started, rss


def stage_times(warehouse: Path) -> dict[str, float]:
    """Durations of the latest renewal_daily run's tasks, from Airflow's own metadata; and each DAG's span,
    first task start to last task end (the rest of a run's wall time is Airflow's and Python's start-up)."""
    con = sqlite3.connect(airflow_home(warehouse) / "airflow.db")
    try:
        spans, tasks = {}, []
        for dag_id in ("renewal_daily", "renewal_reminders"):
            run_id = con.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", [dag_id]
            ).fetchone()[0]
            rows = con.execute(
                """SELECT task_id, duration, start_date, end_date FROM task_instance
                                  WHERE dag_id = ? AND run_id = ?""",
                [dag_id, run_id],
            ).fetchall()
            first = min(dt.datetime.fromisoformat(r[2]) for r in rows)
            last = max(dt.datetime.fromisoformat(r[3]) for r in rows)
            spans[f"{dag_id}_span_s"] = round((last - first).total_seconds(), 1)
            if dag_id == "renewal_daily":
                tasks = [(t, d) for t, d, _, _ in rows]
    finally:
        con.close()
    return stage_sums(tasks) | spans


def task_at(warehouse: Path, when: dt.datetime | None) -> str | None:
    """The task of the latest `dags test` runs that was running at `when` (where the peak RSS was)."""
    if when is None:
        return None
    con = sqlite3.connect(airflow_home(warehouse) / "airflow.db")
    try:
        rows = con.execute("SELECT dag_id, task_id, start_date, end_date FROM task_instance").fetchall()
    finally:
        con.close()
    for dag_id, task_id, start, end in rows:
        if start and end and dt.datetime.fromisoformat(start) <= when <= dt.datetime.fromisoformat(end):
            return f"{dag_id}.{task_id}"
    return "between tasks"


def stage_sums(tasks: list[tuple[str, float | None]]) -> dict[str, float]:
    """Seconds per stage of STAGES from (task id, duration) pairs."""
    return {
        key: round(
            sum(
                d or 0
                for t, d in tasks
                if any(t == p or (p.endswith(".") and t.startswith(p)) for p in prefixes)
            ),
            2,
        )
        for key, prefixes in STAGES.items()
    }


def resident_runs(data: Path, warehouse: Path, work: Path, postgres_dsn: str) -> dict:
    """The day's runs as production runs them: into a resident Airflow started beforehand (not timed), with the
    warehouse at the path it always has (production's warehouse never moves; dbt's profile names it, and a new
    path would make dbt parse the whole project). Three runs:
    - the first run after Airflow started, on a copy of the full run's warehouse (a freshly started Airflow's
      first task takes ~3 s more; every production day after the first runs with its workers warm);
    - the full run, on an empty warehouse: the ingest through Airflow (`ingest_rows_per_s`) is its extract_feed;
    - the incremental run (`incremental_run_s`), on a fresh copy of the full run's warehouse.
    Seconds by Airflow's clock, from the run's creation to the end of renewal_reminders; from the trigger command
    beside. Call it last: it replaces the `dags test` incremental run's warehouse."""
    from resident import ResidentAirflow

    copy = work / "warehouse"

    def restore(source: Path | None) -> None:
        shutil.rmtree(copy)
        if source:
            shutil.copytree(source, copy, symlinks=True)
        else:
            copy.mkdir()

    restore(warehouse)
    feed = Feed(data)
    try:
        extra = {"MARTS_POSTGRES_DSN": postgres_dsn}
        with ResidentAirflow(
            work / "airflow-resident", postgres_dsn, copy, work / "exports-resident", data, extra
        ) as af:
            af.set_feed(feed.url, feed.token)
            first = af.run_day(AS_OF, "bench-incremental-first")
            restore(None)
            full = af.run_day(AS_OF, "bench-full", rerun=1)
            full_tasks = stage_sums(list(af.task_times("renewal_daily").items()))
            full_rows = run_metrics(work)["feed_rows"]
            restore(warehouse)
            times = af.run_day(AS_OF, "bench-incremental", rerun=2)
            tasks = af.task_times("renewal_daily")
    finally:
        feed.stop()
    return {
        "incremental_run_s": times["run_s"],
        "renewal_daily_s": times["renewal_daily_run_s"],
        "incremental_run_from_trigger_s": times["both_dags_from_trigger_s"],
        "first_run_after_start_s": first["run_s"],
        "first_run_after_start_from_trigger_s": first["both_dags_from_trigger_s"],
        "full_run_s": full["run_s"],
        "full_feed_rows": full_rows,
        "full_stages": full_tasks,
    } | stage_sums(list(tasks.items()))


def run_metrics(work: Path) -> dict[str, int]:
    con = open_duckdb(work / "warehouse" / "published.duckdb", read_only=True)
    try:
        load = con.execute("SELECT max(load_id) FROM ops.run_metrics").fetchone()[0]
        rows = con.execute(
            "SELECT step, subject, metric, value FROM ops.run_metrics WHERE load_id = ?", [load]
        ).fetchall()
    finally:
        con.close()
    fetched = sum(v for s, _, m, v in rows if s == "extract_feed" and m == "fetched")
    checked = sum(v for s, sub, m, v in rows if sub == "lookups" and m == "checked")
    # the steps' own clocks (no Airflow task start-up): fetching and landing every resource, the lookups
    landing_ms = sum(v for s, _, m, v in rows if s == "extract_feed" and m == "elapsed_ms")
    lookup_ms = sum(v for s, sub, m, v in rows if sub == "lookups" and m == "elapsed_ms")
    return {
        "feed_rows": fetched,
        "certificates_checked": checked,
        "landing_s": round(landing_ms / 1000, 2),
        "lookup_step_s": round(lookup_ms / 1000, 2),
    } | form_counts(work / "warehouse")


def form_counts(warehouse: Path) -> dict[str, int]:
    """Forms built and taken from the cache by the latest export: it runs after the publication, so its
    metrics are in raw.run_metrics of warehouse.duckdb until the next day publishes them."""
    con = open_duckdb(warehouse / "warehouse.duckdb", read_only=True)
    try:
        rows = con.execute(
            """SELECT metric, sum(value) FROM raw.run_metrics
               WHERE load_id = (SELECT arg_max(load_id, recorded_at) FROM raw.run_metrics WHERE step = 'export_reminders')
                 AND step = 'export_reminders' AND metric IN ('forms_built', 'forms_from_cache')
               GROUP BY metric"""
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def our_certificates_rate(data: Path, work: Path, repeats: int = 5) -> tuple[int, list[float]]:
    """Our landing of the certificates alone, `repeats` times into a fresh database each (it takes seconds:
    the median is reported); one feed process serves all of them."""
    from ingest.feed_client import FeedClient
    from ingest.land import land_resource
    from ingest.warehouse import connect

    feed = Feed(data)
    times = []
    try:
        for n in range(repeats):
            con = connect(work / f"ours-{n}.duckdb")
            started = time.perf_counter()
            result = land_resource(
                con, FeedClient(feed.url, feed.token), "certificates", "bench", b"bench-key"
            )
            times.append(round(time.perf_counter() - started, 2))
            con.close()
    finally:
        feed.stop()
    return result.items, times


def read_json_certificates_rate(data: Path, work: Path) -> tuple[int, float]:
    """The physical limit of landing: DuckDB's own read_json over the certificate pages, fetched to files
    first (the fetch is not timed), into typed columns of a fresh database: (rows, seconds)."""
    from ingest.feed_client import FeedClient

    pages = work / "read-json-pages"
    pages.mkdir()
    feed = Feed(data)
    try:
        for page in FeedClient(feed.url, feed.token).fetch_pages("certificates"):
            (pages / f"{page.page_no:07d}.json").write_bytes(page.body)
    finally:
        feed.stop()
    con = open_duckdb(work / "read-json.duckdb")
    started = time.perf_counter()
    con.execute(
        "CREATE TABLE certificates AS SELECT unnest(items, max_depth := 2) "
        f"FROM read_json({sql_literal(str(pages / '*.json'))}, format = 'auto')"
    )
    elapsed = time.perf_counter() - started
    rows = con.execute("SELECT count(*) FROM certificates").fetchone()[0]
    con.close()
    shutil.rmtree(pages)
    return rows, elapsed


def dlt_certificates_rate(data: Path, work: Path) -> tuple[int, float]:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    feed = Feed(data)
    try:
        source = rest_api_source(
            {
                "client": {
                    "base_url": f"{feed.url}/api/v1/",
                    "auth": {"type": "bearer", "token": feed.token},
                    "paginator": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"},
                },
                "resources": [
                    {
                        "name": "certificates",
                        "endpoint": {
                            "path": "certificates",
                            "params": {"limit": 1000},
                            "data_selector": "items",
                        },
                    }
                ],
            }
        )
        pipeline = dlt.pipeline(
            pipeline_name="bench_dlt",
            destination=dlt.destinations.duckdb(str(work / "dlt.duckdb")),
            dataset_name="feed",
            pipelines_dir=str(work / "dlt-pipelines"),
        )
        started = time.perf_counter()
        pipeline.run(source)
        elapsed = time.perf_counter() - started
        con = open_duckdb(work / "dlt.duckdb", read_only=True)
        rows = con.execute("SELECT count(*) FROM feed.certificates").fetchone()[0]
        con.close()
    finally:
        feed.stop()
    return rows, elapsed


@dataclass
class MeasuredRun:
    """One daily run through Airflow against its own feed process, as bench_size reports it."""

    seconds: float
    rss: PeakRss
    feed_load_s: float
    feed_rss_mb: int
    stages: dict[str, float]
    counts: dict[str, int]


def measured_run(data: Path, work: Path, env: dict) -> MeasuredRun:
    """The daily run on `work`'s warehouse against a feed of `data` started for it: its wall time and peak RSS,
    the feed's load time and peak RSS, and the stage times and row counts the run recorded."""
    feed = Feed(data)
    try:
        seconds, rss = local_run(data, work, env, feed)
    finally:
        feed_rss = feed.stop()
    return MeasuredRun(
        seconds, rss, feed.load_s, feed_rss, stage_times(work / "warehouse"), run_metrics(work)
    )


def bench_size(institutions: int, scale: float, env: dict) -> dict:
    data, generate_s = dataset(institutions, scale)
    work = BENCH / "work" / f"inst{institutions}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with open(data / "certificates.jsonl", "rb") as fh:
        certificates = sum(1 for _ in fh)
    full = measured_run(data, work, env)
    peak_task = task_at(work / "warehouse", full.rss.peak_at)
    full_warehouse = work / "warehouse-after-full"
    shutil.copytree(work / "warehouse", full_warehouse, symlinks=True)
    changed = changed_copy(data, work / "data-changed")
    incremental = measured_run(work / "data-changed", work, env)
    if incremental.rss.peak_mb > full.rss.peak_mb:
        peak_task = task_at(work / "warehouse", incremental.rss.peak_at)
    resident = (
        resident_runs(work / "data-changed", full_warehouse, work, env["MARTS_POSTGRES_DSN"])
        if env.get("MARTS_POSTGRES_DSN")
        else None
    )
    shutil.rmtree(full_warehouse)
    shutil.rmtree(work / "data-changed")
    read_json_rows, read_json_s = read_json_certificates_rate(data, work)
    peak = max(full.rss, incremental.rss, key=lambda r: r.peak_mb)
    return {
        "institutions": institutions,
        "certificates": certificates,
        "feed_rows": full.counts["feed_rows"],
        "generate_s": round(generate_s, 1) if generate_s else None,
        "feed_load_s": full.feed_load_s,
        "feed_peak_rss_mb": max(full.feed_rss_mb, incremental.feed_rss_mb),
        "full_run_s": round(full.seconds, 1),
        "peak_rss_mb": peak.peak_mb,
        # what each process held at that moment (MB): which stage the peak is
        "peak_rss_processes": peak.at_peak[:6],
        "peak_rss_task": peak_task,
        **full.stages,
        **_rates(full, resident, round(read_json_rows / read_json_s)),
        **_incremental_figures(incremental, changed, resident),
        **_outside_tasks(full, incremental),
    }


def _rates(full: MeasuredRun, resident: dict | None, read_json_rate: int) -> dict:
    """Rows landed and certificates looked up per second, by Airflow's clock and by the steps' own."""
    stages, counts = full.stages, full.counts
    dags_test_ingest_rate = round(counts["feed_rows"] / stages["ingest_s"]) if stages["ingest_s"] else None
    resident_ingest_s = resident["full_stages"]["ingest_s"] if resident else None
    ingest_rate = (
        round(resident["full_feed_rows"] / resident_ingest_s)
        if resident and resident_ingest_s
        else dags_test_ingest_rate
    )
    return {
        # the full run's extract_feed task in the resident Airflow, as production runs it; in `dags test` beside it
        # (the first task of a `dags test` also waits ~3.5 s for the test harness to start its execution API)
        "ingest_rows_per_s": ingest_rate,
        "ingest_rows_per_s_dags_test": dags_test_ingest_rate,
        # the physical limit: DuckDB's read_json over the same certificate pages already on disk
        "read_json_rows_per_s": read_json_rate,
        "ingest_vs_read_json": round(ingest_rate / read_json_rate, 2) if ingest_rate else None,
        "lookup_certs_per_s": round(counts["certificates_checked"] / stages["lookup_s"])
        if stages["lookup_s"]
        else None,
        # the same two rates by the steps' own clocks, without the Airflow task's start-up (ingest: ~6 s)
        "landing_s": counts["landing_s"],
        "landing_rows_per_s": round(counts["feed_rows"] / counts["landing_s"])
        if counts["landing_s"]
        else None,
        "lookup_step_certs_per_s": round(counts["certificates_checked"] / counts["lookup_step_s"])
        if counts["lookup_step_s"]
        else None,
    }


def _incremental_figures(incremental: MeasuredRun, changed: int, resident: dict | None) -> dict:
    """The incremental run after `changed` rows changed: in a resident Airflow, and by `airflow dags test`."""
    counts = incremental.counts
    return {
        "incremental_changed_rows": changed,
        # a resident scheduler, as production runs it; `airflow dags test` (one process per DAG) beside it
        "incremental_run_s": resident["incremental_run_s"] if resident else None,
        "incremental_resident": resident,
        "incremental_run_dags_test_s": round(incremental.seconds, 1),
        "incremental_feed_rows": counts["feed_rows"],
        "incremental_certificates_checked": counts["certificates_checked"],
        "incremental_forms_built": counts.get("forms_built"),
        "incremental_forms_from_cache": counts.get("forms_from_cache"),
        "incremental_stages": incremental.stages,
    }


def _outside_tasks(full: MeasuredRun, incremental: MeasuredRun) -> dict:
    """Each run's wall time outside both DAGs' tasks: airflow db migrate, two `dags test` start-ups, DAG
    parsing."""

    def outside(run: MeasuredRun) -> float:
        spans = run.stages["renewal_daily_span_s"] + run.stages["renewal_reminders_span_s"]
        return round(run.seconds - spans, 1)

    return {"outside_tasks_s": outside(full), "incremental_outside_tasks_s": outside(incremental)}


def commit() -> str:
    run = subprocess.run(
        ["git", "describe", "--always", "--dirty"], check=False, cwd=ROOT, capture_output=True, text=True
    )
    return run.stdout.strip() or "unknown"


def kept_sizes(measured: list[dict], scale: float) -> list[dict]:
    """The sizes measured now, plus those of bench/results.json that were not rerun (same scale), each with
    the commit and date it was measured on: BENCH_SIZES=6000 adds the largest size without losing the others."""
    path = BENCH / "results.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    if old.get("candidates_scale") != scale:
        return measured
    rerun = {s["institutions"] for s in measured}
    return sorted(
        measured + [s for s in old.get("sizes", []) if s["institutions"] not in rerun],
        key=lambda s: s["institutions"],
    )


def main() -> int:
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "200,2000").split(",")]
    scale = float(os.environ.get("BENCH_SCALE", "4.5"))
    env = dict(os.environ)
    results: dict = {"machine": machine(), "as_of": AS_OF.isoformat(), "candidates_scale": scale, "sizes": []}
    stamp = {"commit": commit(), "measured_on": dt.date.today().isoformat()}
    bindir = postgres_bin()
    pg = running_postgres(bindir) if bindir else None
    try:
        if pg:
            env["MARTS_POSTGRES_DSN"] = pg.__enter__()
        started = time.perf_counter()
        for n in sizes:
            print(f"benchmarking {n} institutions …", flush=True)
            results["sizes"].append(bench_size(n, scale, env) | stamp)
            print(json.dumps(results["sizes"][-1], ensure_ascii=False), flush=True)
        # dlt loads about 2,000 rows/s here: compare on a smaller feed (both rates are per row)
        small, _ = dataset(int(os.environ.get("BENCH_PEER_INSTITUTIONS", "60")), scale)
        work = BENCH / "work" / "peer"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        ours_rows, ours_runs = our_certificates_rate(small, work)
        dlt_rows, dlt_s = dlt_certificates_rate(small, work)  # about 50 s: once
        results["peer"] = {
            "resource": "certificates",
            "rows": ours_rows,
            "ours_s": statistics.median(ours_runs),
            "ours_runs_s": ours_runs,
            "dlt_rows": dlt_rows,
            "dlt_s": round(dlt_s, 2),
        }
        results["bench_s"] = round(time.perf_counter() - started, 1)  # this invocation, for bench_sizes_run
        results["bench_sizes_run"] = sizes
    finally:
        if pg:
            pg.__exit__(None, None, None)
    results["sizes"] = kept_sizes(results["sizes"], scale)
    province = next((s for s in results["sizes"] if s["institutions"] == 2000), results["sizes"][-1])
    peer = results["peer"]
    results |= {
        "ingest_rows_per_s": province["ingest_rows_per_s"],
        "ingest_rows_per_s_dags_test": province.get("ingest_rows_per_s_dags_test"),
        "dlt_rows_per_s": round(peer["dlt_rows"] / peer["dlt_s"]),
        "ours_vs_dlt_ratio": round((peer["rows"] / peer["ours_s"]) / (peer["dlt_rows"] / peer["dlt_s"]), 1),
        "read_json_rows_per_s": province.get("read_json_rows_per_s"),
        "ingest_vs_read_json": province.get("ingest_vs_read_json"),
        "lookup_certs_per_s": province["lookup_certs_per_s"],
        "dbt_build_s": province["dbt_build_s"],
        "gate_s": province["gate_s"],
        "publish_s": province["publish_s"],
        "publish_postgres_s": province["publish_postgres_s"],
        "full_run_s": province["full_run_s"],
        "incremental_run_s": province["incremental_run_s"],
        "incremental_run_dags_test_s": province.get("incremental_run_dags_test_s"),
        "peak_rss_mb": province["peak_rss_mb"],
        "feed_peak_rss_mb": province["feed_peak_rss_mb"],
    }
    (BENCH / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1))
    print(json.dumps({k: v for k, v in results.items() if k not in ("sizes",)}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
