"""R-FEED: a feed that stops changing is noticed. The days since the newest updated_at the feed ever served, judged on
D (not the clock), against the freshness thresholds of source feed.feed_loads: the mart feed_freshness and `dbt
source freshness` agree, the workbooks open on the mart's notice, the data team gets an alert (not for a backfill),
and the run still publishes. A fresh feed gives no warning."""

import datetime as dt
import email
import email.policy
import io
from types import SimpleNamespace

import duckdb
import pytest
import yaml
from openpyxl import load_workbook

from pipeline import steps
from pipeline.settings import DBT_PROJECT_DIR
from publish.workbook import centre_workbook
from tests.helpers import AS_OF, dbt_build, local_smtp, private_copy, reminder_row, run_dbt

SOURCES = DBT_PROJECT_DIR / "models" / "staging" / "feed" / "_feed__sources.yml"
# the small dataset's newest record is updated on AS_OF (the generator's last day): six days later the feed is
# stale (more than warn_after, 4) and not yet stopped (error_after, 10)
STALE = AS_OF + dt.timedelta(days=6)
DATA_TEAM = "data-team@example.org"
NOTICE = "注意：工作网数据已 6 天未更新（最新更新 2026-11-25），以下结果可能不是最新"
FUZHOU = {"350000": "福建省职业技能鉴定指导中心", "350100": "福州市职业技能鉴定指导中心"}


def feed_row(**overrides) -> dict:
    """The province's row of marts.feed_freshness six days after the feed's last change."""
    row = {
        "supervising_centre": "350000",
        "freshness_status": "stale",
        "freshness_status_zh": "更新滞后",
        "newest_updated_at": dt.datetime(2026, 11, 25, 14, 27, 49, tzinfo=dt.UTC),
        "newest_updated_on": AS_OF,
        "days_unchanged": 6,
        "warn_after_days": 4,
        "error_after_days": 10,
        "notice_zh": NOTICE,
        "as_of": STALE,
    }
    return row | overrides


def work_row(**overrides) -> dict:
    """One row of marts.work_items with the columns the 今日须办 sheet shows."""
    row = reminder_row(
        sort_order=1,
        supervising_centre="350100",
        supervising_centre_zh="福州市职业技能鉴定指导中心",
        urgency_group=3,
        urgency_zh="待办",
        item_codes_zh="转达续期提醒",
        actions_zh="向该机构转达续期提醒",
        has_province_task=False,
    )
    return row | overrides


def first_sheet(data: bytes):
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames[0] == "今日须办"
    return book.worksheets[0]


# -- the thresholds, the workbook, the alert: no dbt -------------------------------------------------------------


def test_the_thresholds_are_the_feeds_source_freshness_in_days():
    """The policy of R-FEED (docs/rules.md): stale after 4 days unchanged (an ordinary weekend and the 3-day
    holidays never warn), stopped after 10 (longer than Spring Festival's and National Day's gaps). A change is a
    deliberate edit here too."""
    sources = yaml.safe_load(SOURCES.read_text(encoding="utf-8"))["sources"]
    (feed,) = [s for s in sources if s["name"] == "feed"]
    (loads,) = [t for t in feed["tables"] if t["name"] == "feed_loads"]
    assert loads["config"]["freshness"] == {
        "warn_after": {"count": 4, "period": "day"},
        "error_after": {"count": 10, "period": "day"},
    }
    assert loads["config"]["loaded_at_query"] == "{{ feed_freshness_loaded_at() }}"


@pytest.mark.parametrize("province", [False, True], ids=["city", "province"])
def test_the_first_sheet_opens_on_the_notice_above_the_work_list(province):
    code = "350000" if province else "350100"
    work = [work_row(), work_row(sort_order=2, institution_id="35000002", institution_name="福州第二机构")]
    kwargs = {"centres": FUZHOU, "summary": [], "sent_by_centre": {}} if province else {"centres": FUZHOU}
    warned = first_sheet(centre_workbook(code, STALE, work, [], [], feed_notice=NOTICE, **kwargs))
    assert warned["A1"].value == NOTICE
    assert warned["A1"].font.bold
    assert [c.value for c in warned[2]][:3] == (
        ["序号", "鉴定中心", "紧急程度"] if province else ["序号", "紧急程度", "新增"]
    )
    assert [r[0] for r in warned.iter_rows(min_row=3, values_only=True)] == [1, 2]
    assert warned.merged_cells.ranges  # across the table's width
    assert (warned.freeze_panes, warned.auto_filter.ref.split(":")[0]) == ("A3", "A2")
    assert warned.print_title_rows == "$1:$2"  # on every printed page

    plain = first_sheet(centre_workbook(code, STALE, work, [], [], **kwargs))
    assert plain["A1"].value == "序号"
    assert NOTICE not in {c.value for row in plain.iter_rows() for c in row}
    assert (plain.freeze_panes, plain.print_title_rows) == ("A2", "$1:$1")


def test_an_empty_work_list_also_opens_on_the_notice():
    warned = first_sheet(centre_workbook("350100", STALE, [], [], [], centres=FUZHOU, feed_notice=NOTICE))
    assert [warned["A1"].value, warned["A2"].value] == [NOTICE, "今日无待办事项"]
    plain = first_sheet(centre_workbook("350100", STALE, [], [], [], centres=FUZHOU))
    assert plain["A1"].value == "今日无待办事项"


def test_the_alert_names_the_feeds_staleness():
    from pipeline.dag_common import feed_alert_mail

    subject, body = feed_alert_mail(feed_row(), {"status": "warn", "days": 6.0})
    assert subject == (
        "[renewal pipeline] STALE FEED for 2026-12-01: 技能人才评价工作网 unchanged for 6 days "
        "(newest update 2026-11-25)"
    )
    assert NOTICE in body
    assert "stale (更新滞后)" in body
    assert "stale after 4 days, stopped after 10" in body
    assert "warn, 6 days" in body  # dbt source freshness's word on it
    assert "{" not in body  # the notifier renders its fields with Jinja
    nothing, _ = feed_alert_mail(
        feed_row(newest_updated_at=None, newest_updated_on=None, days_unchanged=None)
    )
    assert "has served nothing" in nothing


def test_the_alert_is_mailed_to_the_data_team_and_logged_but_not_for_a_backfill(monkeypatch, caplog):
    import logging

    from pipeline.dag_common import alert_stale_feed

    with local_smtp() as smtp:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.airflow_connection)
        monkeypatch.setenv("ALERT_RECIPIENTS", DATA_TEAM)
        monkeypatch.setenv("ALERT_FROM", "renewal@example.org")
        with caplog.at_level(logging.INFO, logger="pipeline.dag_common"):
            assert alert_stale_feed({}, feed_row(), None, backfill=False)
            assert not alert_stale_feed({}, feed_row(), None, backfill=True)
        received = list(smtp.received)
    assert [e.rcpt_tos for e in received] == [[DATA_TEAM]]
    mail = email.message_from_bytes(received[0].content, policy=email.policy.default)
    assert "STALE FEED for 2026-12-01" in mail["subject"]
    assert NOTICE in mail.get_body(("html", "plain")).get_content()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert sum("STALE FEED for 2026-12-01" in m and NOTICE in m for m in errors) == 2  # logged both times
    assert any("a backfill, so no alert e-mailed" in r.getMessage() for r in caplog.records)


def test_a_stale_source_is_the_freshness_tasks_answer_and_a_dbt_error_its_failure():
    from pipeline.cosmos_config import FeedFreshnessOperator, freshness_verdict

    def result(*statuses, exception=None):
        node = SimpleNamespace(unique_id="source.renewal.feed.feed_loads", name="feed_loads")
        results = [SimpleNamespace(status=s, age=6 * 86400.0, node=node, message=s) for s in statuses]
        return SimpleNamespace(success=False, exception=exception, result=SimpleNamespace(results=results))

    operator = FeedFreshnessOperator.__new__(FeedFreshnessOperator)
    for status in ("pass", "warn", "error"):  # past error_after dbt reports `error`: still no failure
        operator.handle_exception_dbt_runner(result(status))
    for broken in (result("runtime error"), result(exception=RuntimeError("parse failed"))):
        with pytest.raises(Exception, match="dbt invocation"):
            operator.handle_exception_dbt_runner(broken)
    assert freshness_verdict(result("warn")) == {"status": "warn", "days": 6.0}
    assert freshness_verdict(result()) is None


# -- through dbt: a stale feed and a fresh one --------------------------------------------------------------------


@pytest.fixture(scope="module")
def stale(built, tmp_path_factory):
    """The built warehouse's data, judged six days after its newest update: dbt (with its data tests) for that D,
    published and exported as the DAG would."""
    settings = private_copy(built, tmp_path_factory.mktemp("stale-feed"))
    result = dbt_build(settings, STALE, "--exclude", "resource_type:unit_test")
    assert result.returncode == 0, result.stdout[-4000:]
    steps.publish(STALE, settings=settings)
    manifest = steps.export(STALE, settings=settings)
    return settings, manifest


@pytest.fixture(scope="module")
def fresh(built, tmp_path_factory):
    """The built warehouse as it is (D = the day of the feed's newest update), published and exported."""
    settings = private_copy(built, tmp_path_factory.mktemp("fresh-feed"))
    steps.publish(AS_OF, settings=settings)
    manifest = steps.export(AS_OF, settings=settings)
    return settings, manifest


def mart(db) -> list[dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute("SELECT * FROM marts.feed_freshness ORDER BY supervising_centre")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def source_freshness(settings, as_of: dt.date):
    return run_dbt(
        settings.warehouse_dir, "source", "freshness", "--select", "source:feed.feed_loads", as_of=as_of
    )


@pytest.mark.slow
def test_a_feed_unchanged_past_warn_after_is_stale_in_the_mart_and_in_dbt_source_freshness(stale):
    settings, _ = stale
    rows = mart(settings.published_db)  # published: a stale feed does not stop the run
    centres = duckdb.connect(str(settings.published_db), read_only=True)
    codes = [
        r[0] for r in centres.execute("SELECT supervising_centre FROM marts.centres ORDER BY 1").fetchall()
    ]
    centres.close()
    assert [r["supervising_centre"] for r in rows] == codes  # one row per centre, each the same
    for row in rows:
        assert (row["freshness_status"], row["freshness_status_zh"]) == ("stale", "更新滞后")
        assert (row["newest_updated_on"], row["days_unchanged"], row["as_of"]) == (AS_OF, 6, STALE)
        assert (row["warn_after_days"], row["error_after_days"]) == (4, 10)
        assert row["notice_zh"] == NOTICE
    # dbt's own check, judged on D whatever the clock says: the same days, the same verdict
    checked = source_freshness(settings, STALE)
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert "WARN freshness of feed.feed_loads" in checked.stdout
    row = steps.feed_freshness(STALE, {"status": "warn", "days": 6.0}, settings=settings)
    assert (row["freshness_status"], row["days_unchanged"]) == ("stale", 6)
    with pytest.raises(RuntimeError, match="no longer agree"):
        steps.feed_freshness(STALE, {"status": "pass", "days": 6.0}, settings=settings)
    # as of the day of the last change it was fresh, and past error_after it is an error for dbt
    assert "PASS freshness of feed.feed_loads" in source_freshness(settings, AS_OF).stdout
    stopped = source_freshness(settings, AS_OF + dt.timedelta(days=11))
    assert stopped.returncode == 1
    assert "ERROR STALE freshness of feed.feed_loads" in stopped.stdout


@pytest.mark.slow
def test_every_workbook_opens_on_the_notice_and_the_reminder_mail_says_it(stale, monkeypatch):
    settings, manifest = stale
    folder = settings.exports_dir / STALE.isoformat()
    books = sorted(folder.glob("*_续期提醒_*.xlsx"))
    assert len(books) == len(manifest["by_centre"]) > 1
    for path in books:
        sheet = load_workbook(path).worksheets[0]
        assert (sheet.title, sheet["A1"].value) == ("今日须办", NOTICE), path.name
        assert sheet["A2"].value in ("序号", "今日无待办事项"), path.name
    assert manifest["feed_freshness"] == {
        "status": "stale",
        "days_unchanged": 6,
        "newest_updated_on": AS_OF.isoformat(),
        "notice_zh": NOTICE,
    }
    code = next(c for c, n in manifest["by_centre"].items() if n)
    with local_smtp() as smtp:
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp.airflow_connection)
        monkeypatch.setenv("REMINDER_RECIPIENTS", f'{{"{code}": "centre@example.org"}}')
        steps.email(STALE, settings=settings)
        (sent,) = smtp.received
    body = email.message_from_bytes(sent.content, policy=email.policy.default).get_body(("html",))
    assert NOTICE in body.get_content()


@pytest.mark.slow
def test_a_fresh_feed_gives_no_warning(fresh):
    from pipeline.summary import summary_text

    settings, manifest = fresh
    rows = mart(settings.published_db)
    assert {(r["freshness_status"], r["days_unchanged"], r["newest_updated_on"]) for r in rows} == {
        ("fresh", 0, AS_OF)
    }
    assert {r["notice_zh"] for r in rows} == {"工作网数据正常更新（最新更新 2026-11-25）"}
    assert manifest["feed_freshness"]["status"] == "fresh"
    for path in sorted((settings.exports_dir / AS_OF.isoformat()).glob("*_续期提醒_*.xlsx")):
        sheet = load_workbook(path).worksheets[0]
        assert sheet["A1"].value in ("序号", "今日无待办事项"), path.name
        assert not any(
            str(c.value).startswith("注意") for row in sheet.iter_rows(max_row=3) for c in row if c.value
        )
    assert steps.feed_freshness(AS_OF, {"status": "pass", "days": 0.0}, settings=settings)[
        "freshness_status"
    ] == ("fresh")
    assert "PASS freshness of feed.feed_loads" in source_freshness(settings, AS_OF).stdout
    assert "Feed: fresh, newest update 2026-11-25, 0 days unchanged" in summary_text(
        settings.published_db, settings.exports_dir
    )


@pytest.mark.slow
def test_each_centres_postgresql_login_reads_the_feeds_notice(stale, postgres):
    """The feed is the province's, and every centre must see that it stopped changing: marts.feed_freshness has
    one row per centre, so the row-level security of the PostgreSQL marts shows a city login its own."""
    import psycopg2

    from publish.postgres import centre_role

    settings, _ = stale
    admin = psycopg2.connect(postgres)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute("DROP DATABASE IF EXISTS feed_marts WITH (FORCE)")
    cur.execute("CREATE DATABASE feed_marts")
    dsn = postgres.replace("dbname=postgres", "dbname=feed_marts")
    try:
        steps.publish_to_postgres(STALE, settings=settings, dsn=dsn)
        cur.execute("DROP ROLE IF EXISTS feed_reader_350100")
        cur.execute(f"CREATE ROLE feed_reader_350100 LOGIN PASSWORD 'pw' IN ROLE {centre_role('350100')}")
        city = psycopg2.connect(dsn.replace("user=postgres", "user=feed_reader_350100 password=pw"))
        try:
            rows = city.cursor()
            rows.execute("SELECT supervising_centre, freshness_status, notice_zh FROM marts.feed_freshness")
            assert rows.fetchall() == [("350100", "stale", NOTICE)]
        finally:
            city.close()
    finally:  # a database of its own, dropped: the roles stay droppable by the other PostgreSQL tests
        cur.execute("DROP DATABASE IF EXISTS feed_marts WITH (FORCE)")
        cur.execute("DROP ROLE IF EXISTS feed_reader_350100")
        admin.close()
