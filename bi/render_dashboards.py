"""`make dashboards WAREHOUSE=DIR SHOTS=DIR`: proof in a real browser that every dashboard shows the marts.

Starts Superset over DIR/published.duckdb (own temporary state, nothing shared with `make bi`), or uses one
already running (--url, --state-dir), logs in with headless Chromium (Debian's, driven by Playwright), opens
every dashboard, waits for every chart's query and render, and fails if

- a chart shows an error, or its query failed;
- a chart shows no data although the same SQL, run directly on the published file, returns rows;
- a chart's row count differs from what that SQL returns directly (it would be reading another snapshot).

Writes one PNG per dashboard and report.json (charts, rows, the as-of date shown) into SHOTS.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
from local_superset import ADMIN, admin_password, running, set_up  # bi/ is on the path: scripts run from it

log = logging.getLogger("render_dashboards")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# What Superset (in Chinese or English) writes in a chart that has no rows, or whose query failed.
EMPTY_TEXTS = ("此查询没有数据返回", "No results were returned", "没有数据", "No data")
ERROR_TEXTS = ("Data error", "错误：", "Unexpected error", "意外错误", "Error:")
CHART_TIMEOUT_S = 180


@dataclass
class ChartCheck:
    chart_id: int
    name: str
    viz_type: str
    rows: int | None = None
    direct_rows: int | None = None
    shown_text: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class DashboardCheck:
    title: str
    slug: str
    url: str
    png: str
    header: str = ""
    as_of: list[str] = field(default_factory=list)
    charts: list[ChartCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.problems or any(c.problems for c in self.charts))


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise SystemExit("chromium not found: apt-get install chromium fonts-noto-cjk (see .ci/run)")
    return path


@dataclass
class Marts:
    """Where the charts' SQL is re-run outside Superset: the published file, or another database."""

    published_db: Path
    database_uri: str | None = None
    password: str | None = None

    @property
    def name(self) -> str:
        return self.published_db.name if self.database_uri is None else self.database_uri.split("@")[-1]

    def rows(self, sql: str) -> int:
        """Rows the chart's own SQL returns when run on the marts directly."""
        if self.database_uri is None:
            con = duckdb.connect(str(self.published_db), read_only=True)
            try:
                return len(con.execute(sql).fetchall())
            finally:
                con.close()
        from sqlalchemy import create_engine
        from sqlalchemy.engine.url import make_url
        from sqlalchemy.pool import NullPool

        url = make_url(self.database_uri)
        engine = create_engine(url.set(password=self.password) if self.password else url, poolclass=NullPool)
        try:
            with engine.connect() as con:
                return len(con.exec_driver_sql(sql).fetchall())  # as Superset sent it: no bind parameters
        finally:
            engine.dispose()


def check_dashboard(
    page, base_url: str, dashboard: dict, marts: Marts, shots: Path, index: int
) -> DashboardCheck:
    charts = page.request.get(f"{base_url}/api/v1/dashboard/{dashboard['id']}/charts").json()["result"]
    wanted = {c["id"] for c in charts}
    slug = dashboard.get("slug") or str(dashboard["id"])
    result = DashboardCheck(
        title=dashboard["dashboard_title"],
        slug=slug,
        url=f"{base_url}{dashboard['url']}",
        png=f"{index:02d}_{slug}.png",
    )
    answers: dict[int, dict] = {}

    def on_response(response) -> None:
        if "/api/v1/chart/data" not in response.url or response.request.method != "POST":
            return
        try:
            slice_id = (response.request.post_data_json or {}).get("form_data", {}).get("slice_id")
        except ValueError:
            return
        if slice_id in wanted:
            try:
                body = response.json()
            except Exception as exc:
                body = {"message": f"unreadable response: {exc}"}
            answers[slice_id] = {"status": response.status, "body": body}

    page.on("response", on_response)
    try:
        page.goto(result.url, wait_until="domcontentloaded")
        deadline = time.monotonic() + CHART_TIMEOUT_S
        while time.monotonic() < deadline:
            loading = page.locator("[data-test='grid-container'] .loading").count()
            if wanted <= set(answers) and loading == 0:
                break
            page.wait_for_timeout(500)
        else:
            missing = sorted(c["slice_name"] for c in charts if c["id"] not in answers)
            result.problems.append(f"charts still loading after {CHART_TIMEOUT_S} s: {missing}")
        page.wait_for_timeout(2500)  # ECharts animates its first frame in
        result.header = page.locator("[data-test='editable-title-input']").first.input_value(timeout=10_000)
        if result.header != result.title:
            result.problems.append(f"header shows {result.header!r}, expected {result.title!r}")
        shown = page.locator("[data-test-chart-id]").count()
        if shown != len(charts):
            result.problems.append(f"{shown} charts on the page, the dashboard has {len(charts)}")
        for chart in charts:
            result.charts.append(check_chart(page, chart, answers.get(chart["id"]), marts, result))
        page.screenshot(path=str(shots / result.png), full_page=True)
    finally:
        page.remove_listener("response", on_response)
    return result


def check_chart(
    page, chart: dict, answer: dict | None, marts: Marts, dashboard: DashboardCheck
) -> ChartCheck:
    check = ChartCheck(
        chart_id=chart["id"],
        name=chart["slice_name"],
        viz_type=(chart.get("form_data") or {}).get("viz_type", ""),
    )
    element = page.locator(f"[data-test-chart-id='{chart['id']}']").first
    check.shown_text = element.inner_text(timeout=10_000) if element.count() else ""
    if answer is None:
        check.problems.append("no query answered")
        return check
    body = answer["body"]
    results = body.get("result") or []
    if answer["status"] != 200 or not results:
        check.problems.append(
            f"query failed (HTTP {answer['status']}): {str(body.get('message') or body)[:300]}"
        )
    for part in results:
        if part.get("error") or part.get("status") == "failed":
            check.problems.append(f"query error: {str(part.get('error'))[:300]}")
    if any(text in check.shown_text for text in ERROR_TEXTS):
        check.problems.append(f"shows an error: {check.shown_text[:300]!r}")
    if check.problems:
        return check
    main = results[0]
    # sql_rowcount: rows the SQL returned, before post-processing (a stacked bar pivots them to one per bar)
    check.rows = main.get("sql_rowcount", main.get("rowcount"))
    check.direct_rows = marts.rows(main["query"])
    shows_empty = any(text in check.shown_text for text in EMPTY_TEXTS)
    if check.direct_rows and (not check.rows or shows_empty):
        check.problems.append(f"shows no data, but its SQL returns {check.direct_rows} rows on {marts.name}")
    elif check.rows != check.direct_rows:
        check.problems.append(
            f"{check.rows} rows in Superset, {check.direct_rows} from {marts.name} directly"
        )
    for row in main.get("data") or []:
        if "as_of_text" in row:  # the 数据截至 chart: the date must be on the page, not only in the answer
            dashboard.as_of.append(row["as_of_text"])
            if row["as_of_text"] not in check.shown_text:
                check.problems.append(f"as-of date {row['as_of_text']} not shown")
    return check


def check_all(base_url: str, password: str, marts: Marts, shots: Path) -> list[DashboardCheck]:
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1200}, locale="zh-CN")
            page.goto(f"{base_url}/login/")
            page.fill("#username", ADMIN)
            page.fill("#password", password)
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
            answer = page.request.get(f"{base_url}/api/v1/dashboard/?q=(page_size:100)")
            if not answer.ok:
                raise SystemExit(
                    f"Superset's dashboard list failed: HTTP {answer.status} {answer.text()[:300]}"
                )
            listing = sorted(answer.json()["result"], key=lambda d: d["id"])
            if not listing:
                raise SystemExit("Superset has no dashboards: the import did not run")
            return [check_dashboard(page, base_url, d, marts, shots, n) for n, d in enumerate(listing, 1)]
        finally:
            browser.close()


def report(checks: list[DashboardCheck], shots: Path) -> bool:
    (shots / "report.json").write_text(
        json.dumps([{**asdict(c), "failed": c.failed} for c in checks], ensure_ascii=False, indent=2),
        encoding="utf-8",
    )
    ok = True
    for c in checks:
        rows = sum(ch.rows or 0 for ch in c.charts)
        print(
            f"{'FAIL' if c.failed else 'ok  '} {c.title}: {len(c.charts)} charts, {rows} rows, "
            f"as of {', '.join(sorted(set(c.as_of))) or '?'} -> {shots / c.png}"
        )
        for problem in c.problems:
            print(f"       {problem}")
        for ch in c.charts:
            for problem in ch.problems:
                print(f"       chart {ch.name!r} ({ch.viz_type}): {problem}")
        ok = ok and not c.failed
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True, help="folder holding published.duckdb")
    parser.add_argument("--shots", type=Path, required=True, help="folder for the PNGs and report.json")
    parser.add_argument("--url", help="a Superset already running over the warehouse (else one is started)")
    parser.add_argument("--state-dir", type=Path, help="that Superset's state folder (its admin_password)")
    parser.add_argument(
        "--database-uri",
        help="the marts in another database than WAREHOUSE/published.duckdb, "
        "e.g. postgresql+psycopg2://bi_metabase@host:5432/marts (what docker-compose's Superset reads)",
    )
    parser.add_argument("--password-env", help="environment variable holding that database's password")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    password = os.environ.get(args.password_env) if args.password_env else None
    marts = Marts(args.warehouse.resolve() / "published.duckdb", args.database_uri, password)
    shots = args.shots.resolve()
    if args.url:
        if not args.state_dir:
            parser.error("--url needs --state-dir (for the admin password)")
        checks = check_all(args.url.rstrip("/"), admin_password(args.state_dir), marts, shots)
    else:
        with tempfile.TemporaryDirectory(prefix="superset-") as tmp:
            state = Path(tmp)
            set_up(state, marts.published_db, args.database_uri, password)
            with running(state) as url:
                log.info("Superset answering at %s; opening the dashboards in %s", url, chromium_path())
                checks = check_all(url, admin_password(state), marts, shots)
    return 0 if report(checks, shots) else 1


if __name__ == "__main__":
    sys.exit(main())
