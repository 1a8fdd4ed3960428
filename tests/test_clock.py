"""The pipeline's clock (ingest/clock.py): the wall clock unless RENEWAL_CLOCK_OFFSET_S moves it, and what a run
stores and what retention ages both read it, so a run on a moved clock (the soak's days) ages as on that day."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys

import pytest

from ingest import clock
from ingest.lookups import answer_fetcher
from ingest.warehouse import connect, record_run_metrics
from pipeline.retention import apply_retention
from pipeline.settings import PROJECT_ROOT
from tests.test_retention import L1, L2, NOW, D, query, settings_in, touch, versions_warehouse

sys.path.insert(0, str(PROJECT_ROOT / "bench"))

from soak import DayClock

WALL_SLACK = dt.timedelta(minutes=5)


def moved_to(monkeypatch, when: dt.datetime) -> None:
    """Move the pipeline's clock so that it reads `when` now."""
    monkeypatch.setenv(clock.OFFSET_ENV, str(round((when - dt.datetime.now(dt.UTC)).total_seconds())))


def test_the_clock_is_the_wall_clock_unless_moved(monkeypatch):
    monkeypatch.delenv(clock.OFFSET_ENV, raising=False)
    assert abs(clock.now() - dt.datetime.now(dt.UTC)) < WALL_SLACK
    monkeypatch.setenv(clock.OFFSET_ENV, str(-40 * 86400))
    assert abs(clock.now() - (dt.datetime.now(dt.UTC) - dt.timedelta(days=40))) < WALL_SLACK
    monkeypatch.setenv(clock.OFFSET_ENV, "40 days")
    with pytest.raises(ValueError, match=clock.OFFSET_ENV):
        clock.now()


def test_what_a_run_stores_is_stamped_on_the_moved_clock(tmp_path, monkeypatch):
    moved_to(monkeypatch, NOW)
    settings = settings_in(tmp_path)
    con = connect(settings.warehouse_db)
    try:
        record_run_metrics(con, "L", D, "extract_feed", [("plans", "landed", 1, None)])
    finally:
        con.close()
    (recorded,) = query(settings, "SELECT recorded_at FROM raw.run_metrics")[0]
    assert abs(recorded - NOW) < WALL_SLACK

    class Feed:  # the lookup answer's time is stamped here, not by the feed
        def lookup(self, batch):
            return b'{"results": []}'

    answer = json.loads(answer_fetcher(Feed())(["C1"]))
    assert abs(dt.datetime.fromisoformat(answer["checked_at"]) - NOW) < WALL_SLACK


def test_retention_ages_by_the_moved_clock(tmp_path, monkeypatch):
    """The same removals as with `now` given, and none of them on the wall clock, where those loads are new."""
    given = versions_warehouse(tmp_path / "given")
    apply_retention(given, D, now=NOW)
    expected = query(given, "SELECT plan_no, load_id FROM raw.plans ORDER BY ALL")

    wall = versions_warehouse(tmp_path / "wall")
    moved_to(monkeypatch, NOW - dt.timedelta(days=100))  # before the first load landed: nothing is old
    apply_retention(wall, D)
    assert (L1,) in query(wall, "SELECT DISTINCT load_id FROM raw.plans")

    moved = versions_warehouse(tmp_path / "moved")
    moved_to(monkeypatch, NOW)
    report = apply_retention(moved, D)
    assert query(moved, "SELECT plan_no, load_id FROM raw.plans ORDER BY ALL") == expected
    assert (L1,) not in query(moved, "SELECT DISTINCT load_id FROM raw.plans WHERE plan_no = 'P1'")
    assert (L2,) in query(moved, "SELECT DISTINCT load_id FROM raw.plans")
    assert abs(dt.datetime.fromisoformat(report.now) - NOW) < WALL_SLACK


def test_the_soak_dates_what_an_attempt_wrote_on_its_day(tmp_path):
    before = touch(tmp_path / "warehouse" / "old.log", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    since = dt.datetime.now(dt.UTC).timestamp() - 1
    written = touch(
        tmp_path / "warehouse" / "gate" / "2026-09-04" / "run" / "results.json", dt.datetime.now(dt.UTC)
    )
    day = DayClock.starting_now(dt.date(2026, 9, 4))
    scheduled = dt.datetime(2026, 9, 4, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert abs(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=day.offset_s) - scheduled) < WALL_SLACK
    assert day.env() == {clock.OFFSET_ENV: str(day.offset_s)}

    moved = day.date_files([tmp_path / "warehouse", tmp_path / "no-such-folder"], since)

    assert moved == 5  # the file and the four folders above it (written into since), not the older file
    for path in (written, written.parent, tmp_path / "warehouse" / "gate", tmp_path / "warehouse"):
        assert abs(dt.datetime.fromtimestamp(os.stat(path).st_mtime, dt.UTC) - scheduled) < WALL_SLACK
    assert dt.datetime.fromtimestamp(before.stat().st_mtime, dt.UTC) == dt.datetime(
        2026, 12, 1, tzinfo=dt.UTC
    )


def test_files_dated_on_a_later_day_than_the_wall_clock_are_dated_once(tmp_path):
    """A day after the wall clock: what its attempt wrote is dated into the future, and the next attempt, which
    dates what it wrote, leaves those as they are."""
    since = dt.datetime.now(dt.UTC).timestamp() - 1
    written = touch(tmp_path / "gate" / "results.json", dt.datetime.now(dt.UTC))
    first = DayClock.starting_now(dt.date.today() + dt.timedelta(days=400))
    first.date_files([tmp_path], since)
    dated = written.stat().st_mtime

    DayClock.starting_now(dt.date.today() + dt.timedelta(days=401)).date_files([tmp_path], since)

    assert dated > dt.datetime.now(dt.UTC).timestamp() + 300 * 86400
    assert written.stat().st_mtime == dated
