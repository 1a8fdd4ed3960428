"""`make dashboards WAREHOUSE=DIR SHOTS=DIR [CENTRE=350100] [DASHBOARD=slug]`: proof in a real browser that
every dashboard (or the one named) shows the marts, and only the rows its user may see.

Starts Superset over DIR/published.duckdb (own temporary state, nothing shared with `make bi`), or uses one
already running (--url, --state-dir), logs in with headless Chromium (Debian's, driven by Playwright) as the
demo login of a supervising centre (the province's by default, which sees every row), opens every
dashboard, waits for every chart's query and picture, and fails if

- a chart shows an error, or its query failed;
- a chart shows no data although the same chart's SQL, run directly on the centre's rows of the published
  file, returns rows; or a different row count (it would be reading another snapshot, or other rows);
- the picture of a chart is blank (one colour) where the chart should be;
- as a city centre: any dataset answers with another centre's rows (the chart data API asked for them by
  name, drill to detail), or SQL Lab lets the user in; as the province: a dataset hides rows.

The charts' SQL for the direct run comes from the admin (who has no row filter), so the comparison does not
trust the filter it checks. Writes one PNG per dashboard and report.json (the centre and its login, each
dashboard's charts with their rows and shown text, the access checks) into SHOTS.
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
from typing import TYPE_CHECKING, Any

import access  # bi/ is on the path: scripts run from it
import duckdb
from local_superset import ADMIN, login_password, running, set_up

if TYPE_CHECKING:
    from PIL.Image import Image
    from playwright.sync_api import APIResponse, Browser, Page, Response, ViewportSize

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
VIEWPORT: ViewportSize = {"width": 1600, "height": 1200}
# What Superset (in Chinese or English) writes in a chart that has no rows, or whose query failed.
EMPTY_TEXTS = ("此查询没有数据返回", "No results were returned", "没有数据", "No data")
ERROR_TEXTS = ("Data error", "错误：", "Unexpected error", "意外错误", "Error:")
CHART_TIMEOUT_S = 180
# A chart's picture is blank when fewer of its pixels than this differ from its most common colour: a
# big number's digits cover ~3 %, the emptiest table or "no results" picture >1 %.
MIN_INK = 0.003
# ECharts animates a chart in over 1 s, and again after a resize.
SETTLE_MS = 1500

# The state of every chart on the page: painted means its body holds a canvas, svg, table or text with a
# size, and nothing in it is still loading; `box` is the body's place on the page, in CSS pixels.
CHART_STATE_JS = """(ids) => ids.map((id) => {
  const chart = document.querySelector(`[data-test-chart-id="${id}"]`);
  if (!chart) return {id, found: false};
  const body = chart.querySelector('[data-test="slice-container"]')
    || chart.querySelector('[data-test="chart-container"]') || chart;
  const r = body.getBoundingClientRect();
  const sized = (node) => { const b = node.getBoundingClientRect(); return b.width > 0 && b.height > 0; };
  const drawn = [...body.querySelectorAll('canvas, svg, table, .header-line, img')].some(sized)
    || (body.innerText || '').trim().length > 0;
  const loading = chart.querySelectorAll('.loading, [data-test="loading-indicator"], .ant-skeleton').length;
  return {id, found: true, painted: drawn && loading === 0 && r.width > 0 && r.height > 0,
          box: [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]};
})"""
# Where the dashboard's charts end on the page (the page itself is at least as tall as the window).
GRID_BOTTOM_JS = """() => {
  const grid = document.querySelector('[data-test="grid-container"]') || document.body;
  return Math.ceil(grid.getBoundingClientRect().bottom + window.scrollY);
}"""


@dataclass
class ChartCheck:
    chart_id: int
    name: str
    viz_type: str
    rows: int | None = None
    direct_rows: int | None = None
    shown_text: str = ""
    ink: float | None = None  # share of the chart's picture that is not its background
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


@dataclass
class AccessCheck:
    """One thing the user asked Superset for, and whether the answer kept to the user's centre."""

    check: str
    expected: Any
    seen: Any
    ok: bool


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise SystemExit("chromium not found: apt-get install chromium fonts-noto-cjk (see .ci/run)")
    return path


@dataclass
class Marts:
    """Where the charts' SQL is re-run outside Superset: the published file, or another database; for a city
    centre, only that centre's rows of it."""

    published_db: Path
    database_uri: str | None = None
    password: str | None = None
    centre: str | None = None  # None: every row, as the province sees them

    @property
    def name(self) -> str:
        where = self.published_db.name if self.database_uri is None else self.database_uri.split("@")[-1]
        return where if self.centre is None else f"{where} (rows of {self.centre})"

    def rows(self, sql: str) -> int:
        """Rows the chart's own SQL returns when run on the marts directly."""
        if self.database_uri is None:
            con = self._duckdb()
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

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        """The published file; for a centre, an in-memory database whose marts.* and ops.* are views of the
        file's tables cut to that centre's rows (by supervising_centre, or by institution for tables that
        have no centre), so the SQL runs unchanged. Tables with neither are left out."""
        if self.centre is None:
            return duckdb.connect(str(self.published_db), read_only=True)
        code = self.centre
        con = duckdb.connect()
        con.execute(f"ATTACH '{self.published_db}' AS published (READ_ONLY)")
        tables = con.execute("""SELECT schema_name, table_name, list(column_name) FROM duckdb_columns()
                                WHERE database_name = 'published' GROUP BY ALL""").fetchall()
        for schema, table, columns in tables:
            if access.CENTRE_COLUMN in columns:
                where = f"{access.CENTRE_COLUMN} = '{code}'"
            elif "institution_id" in columns:
                where = (
                    "institution_id IN (SELECT institution_id FROM published.marts.renewal_eligibility "
                    f"WHERE {access.CENTRE_COLUMN} = '{code}')"
                )
            else:
                continue
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            con.execute(
                f'CREATE VIEW "{schema}"."{table}" AS SELECT * FROM published."{schema}"."{table}" WHERE {where}'
            )
        return con


class Session:
    """A login in its own browser context: its page, and Superset's API with its cookies."""

    def __init__(self, browser: Browser, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.username = username
        self.context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
        # a busy machine (tests in parallel) can take a minute to answer a page: slow is not broken
        self.context.set_default_timeout(120_000)
        self.page = self.context.new_page()
        self._csrf: str | None = None
        # The login page's own event log beacon can answer after the login and set the session cookie
        # back to an anonymous one (Flask keeps the session in the cookie), and the next page then sends the
        # browser back to the login page (`/login/?next=…`): log in until it holds.
        for attempt in range(1, 4):
            self.context.clear_cookies()
            self.page.goto(f"{base_url}/login/", wait_until="networkidle")
            self.page.fill("#username", username)
            self.page.fill("#password", password)
            self.page.keyboard.press("Enter")
            self.page.wait_for_url(lambda url: "/login" not in url or "next=" in url, timeout=180_000)
            self.page.wait_for_load_state("networkidle")
            if "/login" not in self.page.url and self.get("/api/v1/me/").ok:
                return
            log.info("logging in as %s did not hold (attempt %d): again", username, attempt)
        raise SystemExit(f"could not log in to {base_url} as {username}")

    def get(self, path: str) -> APIResponse:
        return self.context.request.get(f"{self.base_url}{path}", max_redirects=0)

    def post(self, path: str, body: Any) -> APIResponse:
        if self._csrf is None:
            self._csrf = self.get("/api/v1/security/csrf_token/").json()["result"]
        return self.context.request.post(
            f"{self.base_url}{path}",
            data=json.dumps(body),
            headers={"Content-Type": "application/json", "X-CSRFToken": self._csrf, "Referer": self.base_url},
            max_redirects=0,
        )

    def chart_data(self, body: dict) -> tuple[int, dict]:
        answer = self.post("/api/v1/chart/data", body)
        try:
            return answer.status, answer.json()
        except Exception:
            return answer.status, {"message": answer.text()[:300]}


def check_dashboard(
    user: Session, admin: Session, dashboard: dict, marts: Marts, shots: Path, index: int
) -> DashboardCheck:
    page = user.page
    charts = user.get(f"/api/v1/dashboard/{dashboard['id']}/charts").json()["result"]
    wanted = {c["id"] for c in charts}
    slug = dashboard.get("slug") or str(dashboard["id"])
    result = DashboardCheck(
        title=dashboard["dashboard_title"],
        slug=slug,
        url=f"{user.base_url}{dashboard['url']}",
        png=f"{index:02d}_{slug}.png",
    )
    answers: dict[int, dict] = {}

    def on_response(response: Response) -> None:
        if "/api/v1/chart/data" not in response.url or response.request.method != "POST":
            return
        try:
            request = response.request.post_data_json or {}
        except ValueError:
            return
        slice_id = request.get("form_data", {}).get("slice_id")
        if slice_id in wanted:
            try:
                body = response.json()
            except Exception as exc:
                body = {"message": f"unreadable response: {exc}"}
            answers[slice_id] = {"status": response.status, "body": body, "request": request}

    page.on("response", on_response)
    try:
        page.set_viewport_size(VIEWPORT)
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
        result.header = page.locator("[data-test='editable-title-input']").first.input_value(timeout=10_000)
        if result.header != result.title:
            result.problems.append(f"header shows {result.header!r}, expected {result.title!r}")
        shown = page.locator("[data-test-chart-id]").count()
        if shown != len(charts):
            result.problems.append(f"{shown} charts on the page, the dashboard has {len(charts)}")
        boxes = take_picture(page, sorted(wanted), shots / result.png, result)
        for chart in charts:
            check = check_chart(page, chart, answers.get(chart["id"]), admin, marts, result)
            check.ink = boxes.get(chart["id"])
            result.charts.append(check)
    finally:
        page.remove_listener("response", on_response)
    return result


def chart_states(page: Page, ids: list[int]) -> dict[int, dict]:
    return {int(s["id"]): s for s in page.evaluate(CHART_STATE_JS, [str(i) for i in ids])}


def wait_painted(page: Page, ids: list[int], timeout_s: float = 60) -> dict[int, dict]:
    """Waits until every chart has painted and no chart moved for half a second, then lets animations end."""
    deadline = time.monotonic() + timeout_s
    previous = None
    while True:
        states = chart_states(page, ids)
        ready = all(s.get("painted") for s in states.values())
        boxes = {i: s.get("box") for i, s in states.items()}
        if ready and boxes == previous:
            break
        if time.monotonic() > deadline:
            break
        previous = boxes if ready else None
        page.wait_for_timeout(500)
    page.wait_for_timeout(SETTLE_MS)
    return chart_states(page, ids)


def take_picture(page: Page, ids: list[int], png: Path, dashboard: DashboardCheck) -> dict[int, float]:
    """The whole dashboard as one PNG, taken with the window as tall as the page (a full-page screenshot
    otherwise resizes the window while it shoots, and Superset redraws every chart during the picture),
    once every chart has painted; then each chart's part of the PNG is checked for ink. Tries twice before
    it reports a blank chart. Returns each chart's share of non-background pixels."""
    from PIL import Image

    for attempt in (1, 2):
        for _ in range(3):  # the grid may reflow in the taller window
            height = max(VIEWPORT["height"], page.evaluate(GRID_BOTTOM_JS) + 24)
            if height == (page.viewport_size or VIEWPORT)["height"]:
                break
            page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
            page.wait_for_timeout(300)
        states = wait_painted(page, ids)
        page.screenshot(path=str(png))
        after = chart_states(page, ids)
        moved = [i for i in ids if after[i].get("box") != states[i].get("box")]
        unpainted = [i for i in ids if not states[i].get("painted")]
        with Image.open(png) as image:
            ink = {i: picture_ink(image, states[i]["box"]) for i in ids if states[i].get("found")}
        blank = [i for i, share in ink.items() if share < MIN_INK]
        if not (blank or moved or unpainted):
            return ink
        log.info(
            "%s: attempt %d, blank %s, moved %s, not painted %s",
            dashboard.title,
            attempt,
            blank,
            moved,
            unpainted,
        )
    names = {i: page.locator(f"[data-test-chart-id='{i}'] [data-test='editable-title']").first for i in ids}
    for i in blank + unpainted:
        name = names[i].inner_text(timeout=2_000) if names[i].count() else str(i)
        what = "not painted" if i in unpainted else f"only {ink.get(i, 0):.2%} of its pixels not background"
        dashboard.problems.append(f"picture {png.name} is blank where chart {name!r} should be ({what})")
    if moved:
        dashboard.problems.append(f"charts {moved} moved while {png.name} was taken")
    return ink


def picture_ink(image: Image, box: list[float]) -> float:
    """Share of the box's pixels that differ from its most common colour (0: one flat colour)."""
    left, top, width, height = (round(v) for v in box)
    crop = image.crop((left, top, left + width, top + height)).convert("RGB")
    pixels = crop.width * crop.height
    if pixels == 0:
        return 0.0
    colours = crop.getcolors(maxcolors=pixels) or []  # None only past maxcolors, which is every pixel
    return 1 - max(count for count, _ in colours) / pixels


def check_chart(
    page: Page, chart: dict, answer: dict | None, admin: Session, marts: Marts, dashboard: DashboardCheck
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
    check.direct_rows = marts.rows(unfiltered_sql(admin, answer["request"]))
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


def unfiltered_sql(admin: Session, request: dict) -> str:
    """The chart's SQL as the admin's query would be, without any centre's row filter."""
    status, body = admin.chart_data({**request, "result_type": "query"})
    if status != 200:
        raise RuntimeError(f"the admin's SQL of a chart: HTTP {status} {str(body)[:300]}")
    return body["result"][0]["query"]


def count_query(dataset_id: int, filters: list[dict]) -> dict:
    """Chart data API request: how many rows of the dataset pass the filters (its metric `count`)."""
    return {
        "datasource": {"id": dataset_id, "type": "table"},
        "force": True,
        "queries": [{"columns": [], "metrics": ["count"], "filters": filters, "row_limit": 1, "orderby": []}],
        "result_type": "full",
        "result_format": "json",
    }


def counted(session: Session, dataset_id: int, filters: list[dict]) -> int | str:
    status, body = session.chart_data(count_query(dataset_id, filters))
    if status != 200:
        return f"HTTP {status}"
    data = body["result"][0].get("data") or []
    return int(data[0]["count"] or 0) if data else 0


def check_access(
    user: Session, admin: Session, centre: access.Centre, centres: list[access.Centre]
) -> list[AccessCheck]:
    """What the user gets when asking for rows directly, outside the dashboards: every dataset's rows of each
    other centre by name through the chart data API, the dataset's samples (drill to detail), SQL Lab."""
    checks: list[AccessCheck] = []
    datasets = admin.get("/api/v1/dataset/?q=(page_size:100)").json()["result"]
    databases = {d["database"]["id"] for d in datasets}
    column = access.CENTRE_COLUMN
    for dataset in datasets:
        name, did = dataset["table_name"], dataset["id"]
        everything = counted(admin, did, [])
        if centre.is_province:
            seen = counted(user, did, [])
            checks.append(AccessCheck(f"{name}: every row", everything, seen, seen == everything))
            continue
        own = counted(admin, did, [{"col": column, "op": "==", "val": centre.code}])
        seen = counted(user, did, [])
        checks.append(AccessCheck(f"{name}: rows without a filter (its own)", own, seen, seen == own))
        for other in centres:
            if other.code == centre.code:
                continue
            there = counted(admin, did, [{"col": column, "op": "==", "val": other.code}])
            seen = counted(user, did, [{"col": column, "op": "==", "val": other.code}])
            checks.append(
                AccessCheck(
                    f"{name}: rows of {other.code} asked for by name ({there} there)", 0, seen, seen == 0
                )
            )
        samples = user.post(f"/datasource/samples?datasource_id={did}&datasource_type=table&force=true", {})
        rows = (samples.json().get("result") or {}).get("data") or [] if samples.ok else []
        shown = sorted({str(row.get(column)) for row in rows})
        checks.append(
            AccessCheck(
                f"{name}: drill to detail (samples)",
                [centre.code] if own else [],
                shown if samples.ok else f"HTTP {samples.status}",
                samples.ok and shown == ([centre.code] if own else []),
            )
        )
    page = user.get("/sqllab/")
    execute = user.post(
        "/api/v1/sqllab/execute/",
        {
            "database_id": min(databases),
            "sql": f"SELECT {column}, count(*) FROM marts.renewal_eligibility GROUP BY 1",
            "runAsync": False,
            "schema": "marts",
            "client_id": f"probe{int(time.time() * 1000) % 10**6}",
            "queryLimit": 100,
        },
    )
    if centre.is_province:
        checks.append(
            AccessCheck("SQL Lab: the province may query", 200, execute.status, execute.status == 200)
        )
    else:
        checks.append(AccessCheck("SQL Lab page refused", 403, page.status, page.status in (401, 403)))
        checks.append(AccessCheck("SQL Lab query refused", 403, execute.status, execute.status in (401, 403)))
    return checks


def check_all(
    base_url: str,
    logins: dict[str, str],
    centre: access.Centre,
    centres: list[access.Centre],
    marts: Marts,
    shots: Path,
    only: list[str] | None = None,
) -> tuple[list[DashboardCheck], list[AccessCheck]]:
    """Every dashboard the centre's login lists, or those of the slugs in `only`, then the access checks."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            admin = Session(browser, base_url, ADMIN, logins[ADMIN])
            user = Session(browser, base_url, centre.login, logins[centre.login])
            answer = user.get("/api/v1/dashboard/?q=(page_size:100)")
            if not answer.ok:
                raise SystemExit(
                    f"Superset's dashboard list failed: HTTP {answer.status} {answer.text()[:300]}"
                )
            listing = sorted(answer.json()["result"], key=lambda d: d["id"])
            if not listing:
                raise SystemExit(f"Superset shows {centre.login} no dashboards: the import did not run")
            if only:
                unknown = sorted(set(only) - {d.get("slug") for d in listing})
                if unknown:
                    raise SystemExit(
                        f"--dashboard {', '.join(unknown)}: {centre.login} has no such dashboard "
                        f"(slugs: {', '.join(sorted(str(d.get('slug')) for d in listing))})"
                    )
                listing = [d for d in listing if d.get("slug") in only]
            dashboards = [check_dashboard(user, admin, d, marts, shots, n) for n, d in enumerate(listing, 1)]
            return dashboards, check_access(user, admin, centre, centres)
        finally:
            browser.close()


def report(
    centre: access.Centre, dashboards: list[DashboardCheck], checks: list[AccessCheck], shots: Path
) -> bool:
    failed = any(d.failed for d in dashboards) or not all(c.ok for c in checks)
    (shots / "report.json").write_text(
        json.dumps(
            {
                "centre": centre.code,
                "centre_zh": centre.name_zh,
                "login": centre.login,
                "failed": failed,
                "dashboards": [{**asdict(d), "failed": d.failed} for d in dashboards],
                "access": [asdict(c) for c in checks],
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"as {centre.login} ({centre.name_zh}):")
    for d in dashboards:
        rows = sum(ch.rows or 0 for ch in d.charts)
        print(
            f"{'FAIL' if d.failed else 'ok  '} {d.title}: {len(d.charts)} charts, {rows} rows, "
            f"as of {', '.join(sorted(set(d.as_of))) or '?'} -> {shots / d.png}"
        )
        for problem in d.problems:
            print(f"       {problem}")
        for ch in d.charts:
            for problem in ch.problems:
                print(f"       chart {ch.name!r} ({ch.viz_type}): {problem}")
    bad = [c for c in checks if not c.ok]
    print(
        f"{'FAIL' if bad else 'ok  '} access: {len(checks) - len(bad)} of {len(checks)} checks kept to the centre"
    )
    for c in bad:
        print(f"       {c.check}: expected {c.expected}, got {c.seen}")
    return not failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", type=Path, required=True, help="folder holding published.duckdb")
    parser.add_argument("--shots", type=Path, required=True, help="folder for the PNGs and report.json")
    parser.add_argument(
        "--centre",
        help="supervising centre whose demo login opens the dashboards (default: the province's)",
    )
    parser.add_argument("--url", help="a Superset already running over the warehouse (else one is started)")
    parser.add_argument("--state-dir", type=Path, help="that Superset's state folder (its logins' passwords)")
    parser.add_argument(
        "--database-uri",
        help="the marts in another database than WAREHOUSE/published.duckdb, "
        "e.g. postgresql+psycopg2://bi_metabase@host:5432/marts (what docker-compose's Superset reads)",
    )
    parser.add_argument("--password-env", help="environment variable holding that database's password")
    parser.add_argument(
        "--dashboard",
        action="append",
        metavar="SLUG",
        help="only this dashboard (its slug, e.g. review-sla; repeatable); the access checks run all the same",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    centres = access.read_centres()
    # read_centres puts the province first
    centre = centres[0] if args.centre is None else next((c for c in centres if c.code == args.centre), None)
    if centre is None:
        parser.error(f"--centre {args.centre}: not in {access.SEED} ({', '.join(c.code for c in centres)})")
    if args.database_uri and not centre.is_province:
        parser.error("--centre for a city needs the DuckDB marts: its rows are cut from published.duckdb")
    password = os.environ.get(args.password_env) if args.password_env else None
    marts = Marts(
        args.warehouse.resolve() / "published.duckdb",
        args.database_uri,
        password,
        None if centre.is_province else centre.code,
    )
    shots = args.shots.resolve()

    def logins(state: Path) -> dict[str, str]:
        return {login: login_password(state, login) for login in (ADMIN, centre.login)}

    if args.url:
        if not args.state_dir:
            parser.error("--url needs --state-dir (for the logins' passwords)")
        dashboards, checks = check_all(
            args.url.rstrip("/"), logins(args.state_dir), centre, centres, marts, shots, args.dashboard
        )
    else:
        with tempfile.TemporaryDirectory(prefix="superset-") as tmp:
            state = Path(tmp)
            set_up(state, marts.published_db, args.database_uri, password)
            with running(state) as url:
                log.info("Superset answering at %s; opening the dashboards in %s", url, chromium_path())
                dashboards, checks = check_all(
                    url, logins(state), centre, centres, marts, shots, args.dashboard
                )
    return 0 if report(centre, dashboards, checks, shots) else 1


if __name__ == "__main__":
    sys.exit(main())
