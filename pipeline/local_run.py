"""`make run`: generate (or use) a dataset, serve it with the mock feed, run the daily DAG with
`airflow dags test` on an embedded SQLite metadata database, stop the feed and print a summary."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shlex
import socket
import subprocess
import sys
import time
import zoneinfo
from pathlib import Path

import requests

from pipeline.settings import FEED_CONN_ID, PROJECT_ROOT, TIMEZONE

AIRFLOW_HOME = PROJECT_ROOT / ".airflow"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def airflow_env(extra: dict[str, str]) -> dict[str, str]:
    # the local feed, not whatever feed the caller's shell points at
    env = {k: v for k, v in os.environ.items() if k not in ("FEED_URL", "FEED_TOKEN")}
    env.update({
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": TIMEZONE,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(AIRFLOW_HOME / "logs"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        "GX_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    })
    env.update(extra)
    return env


def start_feed(data: Path, token: str, feed_opts: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "mock_feed", "serve", "--data", str(data), "--port", str(port),
           "--token", token, *shlex.split(feed_opts)]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
    proc.kill()
    raise RuntimeError(f"mock feed did not become healthy on {url}")


def migrate_metadata_db(airflow: str, env: dict[str, str]) -> None:
    """`airflow db migrate`, skipped (about 7 s) when this Airflow version already migrated the database."""
    from importlib.metadata import version

    stamp = AIRFLOW_HOME / "migrated-by"
    current = f"apache-airflow {version('apache-airflow')}"
    if (AIRFLOW_HOME / "airflow.db").exists() and stamp.exists() and stamp.read_text() == current:
        return
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    stamp.write_text(current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--as-of", default=os.environ.get("AS_OF") or None)
    parser.add_argument("--data", default=os.environ.get("DATA") or None)
    parser.add_argument("--warehouse", default=os.environ.get("WAREHOUSE") or "warehouse")
    parser.add_argument("--exports", default=os.environ.get("EXPORTS") or "exports")
    parser.add_argument("--feed-opts", default=os.environ.get("FEED_OPTS", ""))
    parser.add_argument("--institutions", type=int, default=200)
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--feed-url", default=None,
                        help="use this running feed instead of starting the mock feed on DATA (benchmarks)")
    parser.add_argument("--feed-token", default=os.environ.get("FEED_TOKEN"))
    args = parser.parse_args(argv)

    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else dt.datetime.now(zoneinfo.ZoneInfo(TIMEZONE)).date()
    resolve = lambda p: (Path(p) if Path(p).is_absolute() else PROJECT_ROOT / p).resolve()
    if args.data:
        data = resolve(args.data)
        if not (data / "institutions.jsonl").exists():
            print(f"error: DATA={data} is not a dataset directory (no institutions.jsonl)", file=sys.stderr)
            return 2
    else:
        data = PROJECT_ROOT / "data" / f"demo-{as_of.isoformat()}"
        if not (data / "institutions.jsonl").exists():
            print(f"generating the demo dataset for {as_of} in {data} …", flush=True)
            subprocess.run([sys.executable, "-m", "mock_feed", "generate", "--out", str(data), "--as-of",
                            as_of.isoformat(), "--institutions", str(args.institutions)], check=True)
    warehouse, exports = resolve(args.warehouse), resolve(args.exports)

    if args.feed_url:
        feed, url, token = None, args.feed_url, args.feed_token or ""
    else:
        token = secrets.token_hex(16)
        feed, url = start_feed(data, token, args.feed_opts)
    env = airflow_env({
        # the feed's address and token reach the tasks as an Airflow connection, as in production
        f"AIRFLOW_CONN_{FEED_CONN_ID.upper()}": json.dumps({"conn_type": "http", "host": url, "password": token}),
        "DATA": str(data), "WAREHOUSE": str(warehouse), "EXPORTS": str(exports),
    })
    try:
        AIRFLOW_HOME.mkdir(exist_ok=True)
        airflow = str(Path(sys.executable).parent / "airflow")
        migrate_metadata_db(airflow, env)
        logical = f"{as_of.isoformat()}T06:00:00+08:00"
        daily = [airflow, "dags", "test", "renewal_daily", logical]
        if args.full_refresh:
            daily += ["--conf", '{"full_refresh": true}']
        # In production renewal_reminders runs when renewal_daily publishes (Asset schedule); `dags test`
        # runs one DAG, so the local run runs it next, for the same date.
        for dag_id, cmd in [("renewal_daily", daily),
                            ("renewal_reminders", [airflow, "dags", "test", "renewal_reminders", logical])]:
            print(f"running {dag_id} for {as_of} (data {data}, feed {url}) …", flush=True)
            log_path = AIRFLOW_HOME / f"dags-test-{dag_id}-{as_of.isoformat()}.log"
            with open(log_path, "w") as log:
                result = subprocess.run(cmd, check=False, env=env, stdout=log, stderr=subprocess.STDOUT)
            if result.returncode != 0 or "state=failed" in log_path.read_text(errors="replace"):
                lines = log_path.read_text(errors="replace").splitlines()
                print("\n".join(lines[-60:]), file=sys.stderr)
                # a centre file that cannot be read: its message, not the traceback, is what the person needs
                causes = sorted({line[line.index("CentreFileError: "):] for line in lines if "CentreFileError: " in line})
                for cause in causes:
                    print(f"\n{cause}", file=sys.stderr)
                print(f"\nthe run FAILED; full Airflow log: {log_path}", file=sys.stderr)
                return 1
    finally:
        if feed is not None:
            feed.terminate()
            feed.wait(timeout=10)

    from pipeline.steps import summary_text

    print()
    print(summary_text(warehouse / "published.duckdb", exports))
    print(f"Airflow logs: {AIRFLOW_HOME}/dags-test-*-{as_of.isoformat()}.log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
