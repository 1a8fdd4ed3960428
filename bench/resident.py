"""The daily run as production runs it: one resident Airflow (api-server, scheduler with the LocalExecutor,
dag-processor; PostgreSQL metadata), started once, each day's run triggered into it, not `airflow dags test`."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import requests

from pipeline.commands import python_module
from pipeline.dag_common import SCHEDULER_TUNING
from pipeline.local_run import airflow_env, free_port, local_pseudonym_key
from pipeline.settings import FEED_CONN_ID, WRITER_POOL, WRITER_POOL_DESCRIPTION

DAGS = ("renewal_daily", "renewal_reminders")
FINISHED = ("success", "failed")


class ResidentAirflow:
    """Start with `with ResidentAirflow(...) as airflow:`; `airflow.run_day(D, feed)` triggers renewal_daily for
    D and waits for it and for the renewal_reminders run its publication starts."""

    def __init__(
        self,
        home: Path,
        postgres_dsn: str,
        warehouse: Path,
        exports: Path,
        data: Path,
        extra: dict | None = None,
    ) -> None:
        self.home = home
        self.db_url = self._create_database(postgres_dsn, "airflow_resident")
        self.port = free_port()
        self.env = airflow_env(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "2",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                # the scheduler and worker settings of production (docker-compose.yml)
                **SCHEDULER_TUNING,
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                # runs are triggered by the bench, not by the cron schedule (it would start one for today)
                "RENEWAL_DAILY_SCHEDULE": "none",
                "DATA": str(data),
                "WAREHOUSE": str(warehouse),
                "EXPORTS": str(exports),
                "PSEUDONYM_KEY": local_pseudonym_key(),
                **(extra or {}),
            }
        )
        self.airflow = str(Path(sys.executable).parent / "airflow")
        self.procs: dict[str, subprocess.Popen] = {}

    @staticmethod
    def _create_database(dsn: str, name: str) -> str:
        con = psycopg2.connect(dsn)
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
            cur.execute(f"CREATE DATABASE {name}")
        con.close()
        parts = dict(p.split("=", 1) for p in dsn.split())
        return f"postgresql+psycopg2://{parts['user']}@{parts['host']}:{parts['port']}/{name}"

    def _cli(self, *args: str) -> str:
        run = subprocess.run([self.airflow, *args], env=self.env, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
            )
        return run.stdout

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        con = psycopg2.connect(self.db_url.replace("postgresql+psycopg2", "postgresql"))
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            con.close()

    def __enter__(self) -> ResidentAirflow:
        self.home.mkdir(parents=True, exist_ok=True)
        self._cli("db", "migrate")
        self._cli("pools", "set", WRITER_POOL, "1", WRITER_POOL_DESCRIPTION)
        components = {
            "api-server": [self.airflow, "api-server", "--port", str(self.port)],
            # as docker-compose.yml starts it: the tasks' libraries imported once (pipeline/scheduler.py)
            "scheduler": python_module("pipeline.scheduler"),
            "dag-processor": [self.airflow, "dag-processor"],
        }
        for name, command in components.items():
            log = open(self.home / f"{name}.log", "w")
            self.procs[name] = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self._wait(self._ready, 300, "the resident Airflow to parse both DAGs and serve its API")
        return self

    def _ready(self) -> bool:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.home}/{name}.log")
        try:
            if not requests.get(f"http://127.0.0.1:{self.port}/api/v2/monitor/health", timeout=2).ok:
                return False
        except requests.RequestException:
            return False
        parsed = self._query("SELECT dag_id FROM dag WHERE dag_id IN %s AND NOT is_paused", (DAGS,))
        return len(parsed) == len(DAGS)

    @staticmethod
    def _wait(done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.2)

    def set_feed(self, url: str, token: str) -> None:
        """The feed connection in the metadata database: each day may have a new feed process."""
        if self._query("SELECT 1 FROM connection WHERE conn_id = %s", (FEED_CONN_ID,)):
            self._cli("connections", "delete", FEED_CONN_ID)
        conn = json.dumps({"conn_type": "http", "host": url, "password": token})
        self._cli("connections", "add", FEED_CONN_ID, "--conn-json", conn)

    def run_day(self, as_of: dt.date, run_id: str, rerun: int = 0) -> dict[str, float]:
        """Trigger renewal_daily for D and wait for both DAGs. `run_s`: by Airflow's own clock, from the run's
        creation (queued_at) to the end of the renewal_reminders run it started, as a scheduled run is timed;
        `*_from_trigger_s`: from before the `airflow dags trigger` command (its ~1.6 s of start-up included).
        A rerun of the same D (the incremental run) is triggered `rerun` seconds after 06:00: a DAG has one
        run per logical date, and D is the logical date's day in Asia/Shanghai."""
        before = {r[0] for r in self._query("SELECT run_id FROM dag_run WHERE dag_id = 'renewal_reminders'")}
        logical = dt.datetime.combine(as_of, dt.time(6, 0, rerun)).isoformat() + "+08:00"
        started = time.perf_counter()
        self._cli("dags", "trigger", "renewal_daily", "--run-id", run_id, "--logical-date", logical)
        times = {"renewal_daily_from_trigger_s": self._finish("renewal_daily", lambda: run_id, started)}

        def reminders_run() -> str | None:
            runs = self._query("SELECT run_id FROM dag_run WHERE dag_id = 'renewal_reminders'")
            return next((r[0] for r in runs if r[0] not in before), None)

        times["both_dags_from_trigger_s"] = self._finish("renewal_reminders", reminders_run, started)
        (queued, daily_end), (reminders_end,) = (
            self._query(
                "SELECT queued_at, end_date FROM dag_run WHERE dag_id = 'renewal_daily' AND run_id = %s",
                (run_id,),
            )[0],
            self._query(
                "SELECT end_date FROM dag_run WHERE dag_id = 'renewal_reminders' AND run_id = %s",
                (reminders_run(),),
            )[0],
        )
        times["renewal_daily_run_s"] = round((daily_end - queued).total_seconds(), 1)
        times["run_s"] = round((reminders_end - queued).total_seconds(), 1)
        return times

    def _finish(self, dag_id: str, run_id, started: float) -> float:
        state: list[str] = []

        def finished() -> bool:
            found = run_id()
            rows = (
                self._query("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, found))
                if found
                else []
            )
            state[:] = [rows[0][0]] if rows else []
            return bool(state) and state[0] in FINISHED

        self._wait(finished, 3600, f"{dag_id} to finish")
        if state[0] != "success":
            raise RuntimeError(f"{dag_id} ended {state[0]}; logs in {self.home}/logs")
        return round(time.perf_counter() - started, 1)

    def task_times(self, dag_id: str) -> dict[str, float]:
        latest = self._query(
            "SELECT run_id FROM dag_run WHERE dag_id = %s ORDER BY id DESC LIMIT 1", (dag_id,)
        )
        rows = self._query(
            "SELECT task_id, duration FROM task_instance WHERE dag_id = %s AND run_id = %s",
            (dag_id, latest[0][0]),
        )
        return {task: round(duration or 0, 2) for task, duration in rows}

    def __exit__(self, *exc) -> None:
        for proc in reversed(self.procs.values()):
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
