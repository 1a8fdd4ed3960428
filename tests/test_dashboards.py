"""The provincial centre's Superset dashboards, proven in a real browser: `make dashboards` on a published
warehouse of the small dataset (real Superset from bi/.venv, Debian's headless Chromium) as the province; on a
running Superset (`make bi`'s), the same check as a city centre that must see only its own rows, then the next
publication shown on refresh, and the check failing when a publication breaks a chart or a chart paints nothing;
SQL Lab's DuckDB connection that reaches nothing but the marts; the PostgreSQL marts' password kept across
restarts."""

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

import duckdb
import pytest

from pipeline import steps
from pipeline.settings import PROJECT_ROOT
from tests.helpers import AS_OF, private_copy, require_system_tool

sys.path.insert(0, str(PROJECT_ROOT / "bi"))
import import_dashboards  # bi/ is Superset's project, not a package of this one

BI_PY = PROJECT_ROOT / "bi" / ".venv" / "bin" / "python"
DASHBOARDS = {"全省续期工作看板": 11, "续期评估时限": 8, "机构明细": 5, "趋势": 6}  # title: charts
CITY, CITY_ZH, OTHER_ZH = "350100", "福州市职业技能鉴定指导中心", "厦门市职业技能鉴定指导中心"
# the dashboard a case breaks, and one beside it that must stay whole (--dashboard: only these two are opened)
BROKEN_AND_ANOTHER = ("--dashboard", "review-sla", "--dashboard", "renewal-overview")


@pytest.fixture(scope="module")
def published(built, tmp_path_factory):
    """A private copy of the built warehouse, published (published.duckdb) as the DAG's publish step does."""
    require_system_tool("chromium")
    if not BI_PY.exists():
        pytest.fail("bi/.venv is missing: `make test` installs it (make bi/.venv/.installed)")
    settings = private_copy(built, tmp_path_factory.mktemp("dashboards"))
    steps.publish(AS_OF, settings=settings)
    return settings


def render(*args: str, timeout: int = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BI_PY), "bi/render_dashboards.py", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(os.environ, **(env or {})),
    )


def read_report(shots: Path) -> dict:
    return json.loads((shots / "report.json").read_text(encoding="utf-8"))


def load_report(shots: Path) -> dict[str, dict]:
    """The report's dashboards by title."""
    return {d["title"]: d for d in read_report(shots)["dashboards"]}


def make_dashboards(published, shots: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "dashboards",
            f"WAREHOUSE={published.warehouse_dir}",
            f"SHOTS={shots}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


def probe(*args: str) -> list[dict]:
    """tests/superset_probe.py under bi/.venv: one result per SQL statement."""
    result = subprocess.run(
        [str(BI_PY), "tests/superset_probe.py", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_make_dashboards_renders_every_dashboard_with_data(published, tmp_path):
    shots = tmp_path / "shots"
    result = make_dashboards(published, shots)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    whole = read_report(shots)
    assert (whole["centre"], whole["login"], whole["failed"]) == ("350000", "centre_350000", False)
    # the province's login sees every row of every dataset, and may use SQL Lab
    assert whole["access"]
    assert all(check["ok"] for check in whole["access"]), whole["access"]
    report = load_report(shots)
    assert set(DASHBOARDS) <= set(report)  # a fifth (work_items) joins once that mart is published
    con = duckdb.connect(str(published.published_db), read_only=True)
    institutions = con.execute("SELECT count(*) FROM marts.renewal_eligibility").fetchone()[0]
    con.close()
    for title, charts in DASHBOARDS.items():
        dashboard = report[title]
        assert not dashboard["failed"], dashboard
        assert dashboard["header"] == title  # the Chinese title, read from the page
        assert len(dashboard["charts"]) == charts
        assert set(dashboard["as_of"]) == {AS_OF.isoformat()}
        png = shots / dashboard["png"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 50_000
        for chart in dashboard["charts"]:
            assert not chart["problems"], chart
            assert chart["rows"] == chart["direct_rows"], chart
            assert chart["ink"] > 0.003, chart  # its part of the picture is not blank
    charts = {c["name"]: c for d in report.values() for c in d["charts"]}
    # the overview's charts have data, with the Chinese labels of the _zh columns on the page
    assert charts["各鉴定中心机构续期阶段"]["rows"] > 0
    assert charts["续期评估结论"]["rows"] > 0
    # the feed's state heads every dashboard (R-FEED): here it changed on D
    assert charts["工作网数据状态"]["shown_text"].endswith("工作网数据正常更新（最新更新 2026-11-25）")
    assert charts["机构总数"]["shown_text"].split("\n")[1] == str(institutions)
    detail = charts["机构明细"]["shown_text"]
    assert "职业技能鉴定指导中心" in detail
    assert "备案有效期截止日" in detail
    assert any(label in detail for label in ("未到续期申请期", "续期申请期", "存续期", "视为自动放弃续期"))
    assert "Data error" not in result.stdout
    assert "FAIL" not in result.stdout


@pytest.mark.slow
def test_make_dashboards_hands_on_the_centre_and_the_dashboard():
    """`make dashboards … CENTRE= DASHBOARD=` gives render_dashboards.py what the tests here give it."""
    result = subprocess.run(
        [
            *("make", "-n", "--no-print-directory", "dashboards", "WAREHOUSE=w", "SHOTS=s"),
            *("CENTRE=350100", "DASHBOARD=review-sla"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.replace("\\\n", " ").splitlines()  # the recipe's continued lines as one
    (command,) = [line for line in lines if "render_dashboards.py" in line]
    arguments = command.split("render_dashboards.py", 1)[1].split()
    assert arguments == [
        "--warehouse",
        '"w"',
        "--shots",
        '"s"',
        "--centre",
        '"350100"',
        "--dashboard",
        '"review-sla"',
    ]


@pytest.fixture(scope="module")
def own_published(built, tmp_path_factory):
    """A published warehouse of the running Superset's own, which the last test on it publishes again (the
    module's one stays as is)."""
    require_system_tool("chromium")
    settings = private_copy(built, tmp_path_factory.mktemp("own"))
    steps.publish(AS_OF, settings=settings)
    return settings


class Served(NamedTuple):
    """A running `bi/serve.py`: its address, state folder and log, and render_dashboards.py's arguments for it."""

    url: str
    state: Path
    log: Path
    render_args: list[str]


@pytest.fixture(scope="module")
def running_superset(own_published, tmp_path_factory):
    """`bi/serve.py` (what `make bi` runs) over a published warehouse, on a free port; one server for the
    tests below, the one that changes its publication last."""
    import socket

    published = own_published
    tmp_path = tmp_path_factory.mktemp("serve")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = tmp_path / "superset-state"
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            str(BI_PY),
            "bi/serve.py",
            "--warehouse",
            str(published.warehouse_dir),
            "--state-dir",
            str(state),
            "--port",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-4000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Superset did not start in 10 minutes"
            time.sleep(2)
        render_args = ["--warehouse", str(published.warehouse_dir), "--url", url, "--state-dir", str(state)]
        yield Served(url, state, tmp_path / "serve.log", render_args)
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # serve.py and the Superset server it started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def fuzhou(running_superset, tmp_path_factory):
    """`make dashboards CENTRE=350100`'s check on the running Superset, made before the test that changes its
    publication (which asks for this fixture, so that whatever order the tests run in, this comes first)."""
    shots = tmp_path_factory.mktemp("fuzhou")
    return shots, render(*running_superset.render_args, "--shots", str(shots), "--centre", CITY)


@pytest.mark.slow
def test_dashboards_as_a_city_centre_show_only_its_rows(own_published, fuzhou):
    """Fuzhou's demo login sees Fuzhou's rows in every chart (each chart's row count is what its SQL returns on
    Fuzhou's rows of the published file), gets none of another centre's when it asks for them by name or drills
    to detail, and is refused SQL Lab."""
    published = own_published
    shots, result = fuzhou
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    whole = read_report(shots)
    assert (whole["centre"], whole["login"], whole["failed"]) == (CITY, f"centre_{CITY}", False)
    con = duckdb.connect(str(published.published_db), read_only=True)
    total, own, stages = con.execute(
        f"""SELECT count(*), count(*) FILTER (supervising_centre = '{CITY}'),
                   count(DISTINCT lifecycle_stage) FILTER (supervising_centre = '{CITY}')
            FROM marts.renewal_eligibility"""
    ).fetchone()
    con.close()
    assert 0 < own < total
    report = load_report(shots)
    for title, charts in DASHBOARDS.items():
        dashboard = report[title]
        assert not dashboard["failed"], dashboard
        assert len(dashboard["charts"]) == charts
        assert set(dashboard["as_of"]) == {AS_OF.isoformat()}  # the date, also where Fuzhou has few rows
        for chart in dashboard["charts"]:
            assert chart["rows"] == chart["direct_rows"], chart
            assert OTHER_ZH not in chart["shown_text"], chart
    charts = {c["name"]: c for d in report.values() for c in d["charts"]}
    assert charts["机构总数"]["shown_text"].split("\n")[1] == str(own)
    assert charts["各鉴定中心机构续期阶段"]["rows"] == stages  # one bar, Fuzhou's, split by stage
    assert CITY_ZH in charts["机构明细"]["shown_text"]
    checks = {c["check"]: c for c in whole["access"]}
    assert all(c["ok"] for c in checks.values()), [c for c in checks.values() if not c["ok"]]
    asked = [c for name, c in checks.items() if "asked for by name" in name]
    assert len(asked) >= 5 * 9  # every dataset, every other centre of the seed
    assert all(c["seen"] == 0 for c in asked)
    assert sum(not c["check"].endswith("(0 there)") for c in asked) > 5 * 5  # there were rows to leak
    drills = [c for name, c in checks.items() if "drill to detail" in name]
    assert drills
    assert all(c["seen"] == [CITY] for c in drills)
    assert checks["SQL Lab page refused"]["seen"] == 403
    assert checks["SQL Lab query refused"]["seen"] == 403


@pytest.mark.slow
def test_sql_lab_reaches_nothing_but_the_marts(running_superset, tmp_path):
    """Whoever writes SQL in Superset writes it in the marts' DuckDB connection: it reads the marts and
    nothing else on the machine, writes nothing, attaches and installs nothing, and cannot turn that off;
    through the engine Superset builds from the database's URI and extra, and through SQL Lab's API."""
    url, state, *_ = running_superset
    csv_file, db_file = tmp_path / "x.csv", tmp_path / "y.duckdb"
    outside = [
        "SELECT * FROM read_text('/etc/passwd')",
        f"COPY (SELECT 1) TO '{csv_file}'",
        f"ATTACH '{db_file}' (READ_WRITE)",
        "INSTALL httpfs",
    ]
    marts = "SELECT count(*) AS n FROM marts.renewal_eligibility"
    locked = ["SET enable_external_access = true", "SET lock_configuration = false"]

    stored, *engine = probe("engine", str(state), marts, *outside, *locked)
    assert "enable_external_access=false" in stored["uri"]
    assert "lock_configuration=true" in stored["uri"]
    assert engine[0]["ok"], engine[0]
    assert int(engine[0]["rows"][0][0]) > 0
    for answer in engine[1:5]:
        assert not answer["ok"], answer
        assert "disabled by configuration" in answer["error"], answer
    for answer in engine[5:]:
        assert not answer["ok"], answer
        assert "configuration has been locked" in answer["error"], answer

    lab = probe("sqllab", url, str(state), marts, *outside)
    assert lab[0]["ok"], lab[0]
    assert lab[0]["rows"][0]["n"] > 0
    for answer in lab[1:]:
        assert not answer["ok"], answer
        assert "disabled by configuration" in answer["error"], answer
    assert not csv_file.exists()
    assert not db_file.exists()


@pytest.mark.slow
def test_running_superset_shows_the_next_publication_and_a_broken_one_fails(
    own_published, running_superset, fuzhou, tmp_path
):
    published = own_published
    state, args = running_superset.state, running_superset.render_args
    printed = running_superset.log.read_text()
    password = (state / "admin_password").read_text().strip()
    assert f"password: {password}" in printed  # printed once, on first start, and kept in the state folder

    # the overview before the next publication (the city centre's check, `fuzhou`, saw every dashboard)
    first = render(*args, "--shots", str(tmp_path / "first"), "--dashboard", "renewal-overview")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert {t: d["as_of"][0] for t, d in load_report(tmp_path / "first").items()} == {
        "全省续期工作看板": AS_OF.isoformat()
    }
    unknown = render(*args, "--shots", str(tmp_path / "unknown"), "--dashboard", "no-such-board")
    assert unknown.returncode != 0
    assert "--dashboard no-such-board: centre_350000 has no such dashboard" in unknown.stderr
    assert "review-sla" in unknown.stderr  # the slugs there are

    # A chart that answers but paints nothing (its canvas hidden by the dashboard's CSS): the picture is
    # blank where the chart should be, and the check fails and names the chart.
    meta = sqlite3.connect(state / "superset.db")
    hidden = ".dashboard-chart canvas { visibility: hidden !important; }"
    meta.execute("UPDATE dashboards SET css = ? WHERE slug = 'review-sla'", [hidden])
    meta.commit()
    try:
        blank = render(*args, "--shots", str(tmp_path / "blank"), *BROKEN_AND_ANOTHER)
    finally:
        meta.execute("UPDATE dashboards SET css = '' WHERE slug = 'review-sla'")
        meta.commit()
        meta.close()
    assert blank.returncode == 1, blank.stdout[-4000:] + blank.stderr[-4000:]
    report = load_report(tmp_path / "blank")
    assert {title: d["failed"] for title, d in report.items()} == {
        "全省续期工作看板": False,
        "续期评估时限": True,
    }
    assert any("blank where chart '各鉴定中心评估时限'" in p for p in report["续期评估时限"]["problems"])
    bars = next(c for c in report["续期评估时限"]["charts"] if c["name"] == "各鉴定中心评估时限")
    assert bars["rows"] == bars["direct_rows"] > 0  # its data was there
    assert bars["ink"] < 0.003

    # The next day's publication: the real publish step renames a new file over published.duckdb while
    # Superset keeps running; a refresh must show the new as-of date.
    next_day = "2026-11-26"
    con = duckdb.connect(str(published.warehouse_db))
    for (table,) in con.execute("""SELECT table_name FROM duckdb_columns() WHERE schema_name = 'marts'
                                   AND column_name = 'as_of' AND database_name = current_database()""").fetchall():
        con.execute(f"UPDATE marts.{table} SET as_of = DATE '{next_day}'")
    con.close()
    steps.publish(AS_OF, settings=published)
    second = render(*args, "--shots", str(tmp_path / "second"))
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert {d["as_of"][0] for d in load_report(tmp_path / "second").values()} == {next_day}

    # A publication that breaks the charts of one dashboard: the check fails, and names them.
    con = duckdb.connect(str(published.warehouse_db))
    con.execute("ALTER TABLE marts.review_sla DROP COLUMN working_days_left")
    con.close()
    steps.publish(AS_OF, settings=published)
    broken = render(*args, "--shots", str(tmp_path / "broken"), *BROKEN_AND_ANOTHER)
    assert broken.returncode == 1, broken.stdout[-4000:] + broken.stderr[-4000:]
    report = load_report(tmp_path / "broken")
    assert {title: d["failed"] for title, d in report.items()} == {
        "全省续期工作看板": False,
        "续期评估时限": True,
    }
    failed = [c for c in report["续期评估时限"]["charts"] if c["problems"]]
    assert failed
    assert all("error" in " ".join(c["problems"]) for c in failed)
    assert "FAIL 续期评估时限" in broken.stdout


@contextlib.contextmanager
def password_required(postgres: str, database: str):
    """The tests' PostgreSQL trusts every local login (tests/pgserver.py); for `database`, make it ask for
    the password (scram-sha-256), so that a client without the right one is refused. pg_hba.conf is
    rewritten by the server itself (COPY as superuser: its file, its account) and restored after."""
    import psycopg2

    admin = psycopg2.connect(postgres)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute("SHOW hba_file")
    path = cur.fetchone()[0]
    cur.execute("SELECT pg_read_file(%s)", [path])
    original = cur.fetchone()[0].splitlines()

    def write(lines: list[str]) -> None:
        # CSV with separators that cannot occur in the file: each line is written as it is
        cur.execute(
            "COPY (SELECT unnest(%s::text[])) TO %s "
            "WITH (FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02', NULL E'\\x03')",
            [lines, path],
        )
        cur.execute("SELECT pg_reload_conf()")

    write([f"host {database} all 127.0.0.1/32 scram-sha-256", *original])
    try:
        yield
    finally:
        write(original)
        admin.close()


SUPERSET_TWICE = """
import json, sys
from pathlib import Path
sys.path[:0] = ["bi", "tests"]
from local_superset import running, set_up
import superset_probe

state, uri, password = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
set_up(state, database_uri=uri, database_password=password)  # the first start
set_up(state, database_uri=uri, database_password=password)  # a restart imports the bundle again
with running(state) as url:
    for answer in superset_probe.through_sql_lab(url, state, ["SELECT count(*) AS n FROM marts.renewal_eligibility"]):
        print(json.dumps(answer))
"""


@pytest.mark.slow
def test_superset_keeps_the_marts_password_across_restarts(published, postgres, tmp_path):
    """docker-compose's Superset imports the bundle over the PostgreSQL marts at every start, with the BI
    login's password from the environment and a URI without it: after the first import and after a second
    (a restart), Superset still holds the password, and SQL Lab and the charts' engine read the marts."""
    import psycopg2
    from psycopg2.extensions import parse_dsn

    admin = psycopg2.connect(postgres)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute("DROP DATABASE IF EXISTS password_marts WITH (FORCE)")
    cur.execute("CREATE DATABASE password_marts")
    try:
        dsn = postgres.replace("dbname=postgres", "dbname=password_marts")
        steps.publish_to_postgres(AS_OF, settings=published, dsn=dsn)  # makes the role bi_reader
        cur.execute("DROP ROLE IF EXISTS password_reader")
        cur.execute("CREATE ROLE password_reader LOGIN PASSWORD 'the-bi-password' IN ROLE bi_reader")
        server = parse_dsn(postgres)
        uri = f"postgresql+psycopg2://password_reader@{server['host']}:{server['port']}/password_marts"
        with password_required(postgres, "password_marts"):
            with pytest.raises(psycopg2.OperationalError, match="password"):  # the test can fail
                psycopg2.connect(f"{dsn.replace('user=postgres', 'user=password_reader')} password=wrong")
            state = tmp_path / "superset-state"
            result = subprocess.run(
                [str(BI_PY), "-c", SUPERSET_TWICE, str(state), uri, "the-bi-password"],
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=1200,
                check=False,
            )
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            (lab,) = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
            assert lab["ok"], lab
            assert lab["rows"][0]["n"] > 0
            stored, engine = probe("engine", str(state), "SELECT count(*) FROM marts.renewal_eligibility")
            assert stored["has_password"]
            assert ":XXXXXXXXXX@" in stored["uri"]  # shown masked, kept apart
            assert engine["ok"], engine
            assert int(engine["rows"][0][0]) == lab["rows"][0]["n"]
    finally:
        cur.execute("DROP DATABASE IF EXISTS password_marts WITH (FORCE)")
        cur.execute("DROP ROLE IF EXISTS password_reader")
        admin.close()


@pytest.mark.slow
def test_the_same_dashboards_on_the_postgresql_marts(published, postgres, tmp_path):
    """What docker-compose's Superset does: the same bundle imported over the PostgreSQL marts (filled by the
    DAG's publish_postgres step), read with a read-only login in role bi_reader; every chart has its data."""
    import psycopg2
    from psycopg2.extensions import parse_dsn

    admin = psycopg2.connect(postgres)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute("DROP DATABASE IF EXISTS dashboards_marts")
    cur.execute("CREATE DATABASE dashboards_marts")
    admin.close()
    try:
        dsn = postgres.replace("dbname=postgres", "dbname=dashboards_marts")
        steps.publish_to_postgres(AS_OF, settings=published, dsn=dsn)
        pg = psycopg2.connect(dsn)
        pg.autocommit = True
        cur = pg.cursor()
        cur.execute("DROP ROLE IF EXISTS dashboards_reader")
        cur.execute("CREATE ROLE dashboards_reader LOGIN PASSWORD 'pw' IN ROLE bi_reader")
        cur.execute("ALTER ROLE dashboards_reader SET default_transaction_read_only = on")
        pg.close()
        server = parse_dsn(postgres)
        uri = f"postgresql+psycopg2://dashboards_reader@{server['host']}:{server['port']}/dashboards_marts"
        shots = tmp_path / "pg"
        result = render(
            "--warehouse",
            str(published.warehouse_dir),
            "--shots",
            str(shots),
            "--database-uri",
            uri,
            "--password-env",
            "DASHBOARDS_PG_PASSWORD",
            env={"DASHBOARDS_PG_PASSWORD": "pw"},
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        report = load_report(shots)
        for title, charts in DASHBOARDS.items():
            assert not report[title]["failed"], report[title]
            assert len(report[title]["charts"]) == charts, report[title]
            assert set(report[title]["as_of"]) == {AS_OF.isoformat()}
        assert all(c["rows"] == c["direct_rows"] for d in report.values() for c in d["charts"])
        assert sum(c["rows"] for d in report.values() for c in d["charts"]) > 100
    finally:  # leave the server as a new marts-db: bi_reader must be droppable by the other PostgreSQL tests
        admin = psycopg2.connect(postgres)
        admin.autocommit = True
        admin.cursor().execute("DROP DATABASE IF EXISTS dashboards_marts WITH (FORCE)")
        admin.cursor().execute("DROP ROLE IF EXISTS dashboards_reader")
        admin.close()


def test_bundle_is_whole_and_reads_only_published_marts(tmp_path):
    """Every chart's dataset and every dashboard's chart is in the bundle; physical datasets name marts that
    the dbt project builds; titles are Chinese."""
    bundle = import_dashboards.read_bundle()
    datasets = {c["uuid"]: c for p, c in bundle.items() if p.startswith("datasets/")}
    charts = {c["uuid"]: c for p, c in bundle.items() if p.startswith("charts/")}
    dashboards = [c for p, c in bundle.items() if p.startswith("dashboards/")]
    marts = {p.stem for p in (PROJECT_ROOT / "dbt_project" / "models" / "marts").glob("*.sql")}
    assert {c["dashboard_title"] for c in dashboards} >= set(DASHBOARDS)
    for dataset in datasets.values():
        assert dataset["schema"] == "marts", dataset["table_name"]
        assert dataset["sql"] or dataset["table_name"] in marts, dataset["table_name"]
    assert all(chart["dataset_uuid"] in datasets for chart in charts.values())
    for dashboard in dashboards:
        shown = [
            item["meta"]["uuid"]
            for item in dashboard["position"].values()
            if isinstance(item, dict) and item.get("type") == "CHART"
        ]
        assert shown, dashboard["dashboard_title"]
        assert set(shown) <= set(charts), dashboard["dashboard_title"]
        for native in dashboard["metadata"]["native_filter_configuration"]:
            assert native["targets"][0]["datasetUuid"] in datasets
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in c["slice_name"]) for c in charts.values())
    # each city centre's row filter (supervising_centre = '…') applies to every dataset, and the check of
    # what a centre can reach counts rows with each dataset's metric `count`
    for dataset in datasets.values():
        assert "supervising_centre" in {c["column_name"] for c in dataset["columns"]}, dataset["table_name"]
        assert "count" in {m["metric_name"] for m in dataset["metrics"]}, dataset["table_name"]
    assert import_dashboards.access.datasets_without_centre(bundle) == []


def test_a_role_per_supervising_centre_of_the_seed():
    """The roles come from the dbt seed: the province first (it sees every row), then every other centre of
    the seed with the filter on its own code."""
    centres = import_dashboards.access.read_centres()
    seed = (PROJECT_ROOT / "dbt_project" / "seeds" / "supervising_centres.csv").read_text(encoding="utf-8")
    codes = [line.split(",")[0] for line in seed.splitlines()[1:] if line.strip()]
    assert [c.code for c in centres] == ["350000", *sorted(set(codes) - {"350000"})]
    assert len(centres) >= 10
    assert centres[0].is_province
    assert not any(c.is_province for c in centres[1:])
    fuzhou = next(c for c in centres if c.code == CITY)
    assert (fuzhou.role, fuzhou.login, fuzhou.clause) == (
        "centre_350100",
        "centre_350100",
        "supervising_centre = '350100'",
    )
    bundle = import_dashboards.read_bundle()
    (dataset,) = [p for p in bundle if p.startswith("datasets/") and p.endswith("/review_sla.yaml")]
    bundle[dataset]["columns"] = [
        c for c in bundle[dataset]["columns"] if c["column_name"] != "supervising_centre"
    ]
    assert import_dashboards.access.datasets_without_centre(bundle) == [dataset]


def test_a_dashboard_waits_for_its_mart():
    """A dashboard on a mart that is not published yet (the work list, marts.work_items) is left out of the
    import with its dataset and charts, and comes in once the mart exists; the others are untouched."""
    bundle = import_dashboards.read_bundle()
    database = next(c["uuid"] for p, c in bundle.items() if p.startswith("databases/"))
    bundle["datasets/renewal_marts/work_items.yaml"] = {
        "uuid": "d-work",
        "table_name": "work_items",
        "schema": "marts",
        "sql": None,
        "database_uuid": database,
    }
    bundle["charts/work_list.yaml"] = {"uuid": "c-work", "dataset_uuid": "d-work", "slice_name": "工作清单"}
    bundle["dashboards/work_items.yaml"] = {
        "uuid": "b-work",
        "dashboard_title": "工作清单",
        "position": {"CHART-work": {"type": "CHART", "meta": {"uuid": "c-work", "chartId": 1}}},
    }
    tables = {
        ("marts", t)
        for t in (
            "renewal_eligibility",
            "review_sla",
            "institution_flags",
            "renewal_history",
            "feed_freshness",
            "centre_summary",
        )
    }
    without = import_dashboards.without_missing_marts(bundle, tables)
    assert "dashboards/work_items.yaml" not in without
    assert "charts/work_list.yaml" not in without
    assert "datasets/renewal_marts/work_items.yaml" not in without
    assert set(bundle) - set(without) == {
        "dashboards/work_items.yaml",
        "charts/work_list.yaml",
        "datasets/renewal_marts/work_items.yaml",
    }
    assert import_dashboards.without_missing_marts(bundle, tables | {("marts", "work_items")}) == bundle
