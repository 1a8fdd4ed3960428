"""The run's summary for a person: institutions per stage and verdict, centre files read, and where things are."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingest.warehouse import open_duckdb, scalar
from pipeline.settings import province_code


@dataclass
class PublishedFigures:
    as_of: dt.date
    total: int
    reminders: int
    stages: list[tuple]  # (code, zh, count)
    verdicts: list[tuple]  # (code, zh, count)
    files: list[tuple]  # (note, rows)
    returned: list[tuple]  # (centre code, rows)
    feed: tuple | None = None  # (status, newest update, days unchanged, notice), R-FEED


def read_figures(con: duckdb.DuckDBPyConnection) -> PublishedFigures:
    """The summary's numbers, from the published marts."""
    as_of = scalar(con, "SELECT max(as_of) FROM marts.renewal_eligibility")
    stages = con.execute("""SELECT lifecycle_stage, lifecycle_stage_zh, count(*) FROM marts.renewal_eligibility
                            GROUP BY ALL ORDER BY 3 DESC, 1""").fetchall()
    verdicts = con.execute("""SELECT renewal_verdict, renewal_verdict_zh, count(*)
                              FROM marts.renewal_eligibility GROUP BY ALL ORDER BY 3 DESC, 1""").fetchall()
    total = scalar(con, "SELECT count(*) FROM marts.renewal_eligibility")
    reminders = scalar(con, "SELECT count(*) FROM marts.reminders")
    tables = {
        r[0]
        for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'ops'").fetchall()
    }
    # the centre files of the latest load of D as read (encoding or workbook, sheet, header row), and the rows
    # sent back to each centre in its 退回清单
    files = con.execute(
        """SELECT note, value FROM ops.run_metrics
                           WHERE metric = 'file_rows' AND load_id = (
                               SELECT arg_max(load_id, recorded_at) FROM ops.run_metrics
                               WHERE step = 'load_centre_records' AND as_of = ?)
                           ORDER BY note""",
        [as_of],
    ).fetchall()
    returned = (
        con.execute(
            """SELECT supervising_centre, count(*) FROM ops.centre_record_returns
                              WHERE as_of = ? GROUP BY ALL ORDER BY 1""",
            [as_of],
        ).fetchall()
        if "centre_record_returns" in tables
        else []
    )
    marts = {
        r[0]
        for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'").fetchall()
    }
    feed = (
        con.execute(
            """SELECT freshness_status, newest_updated_on, days_unchanged, notice_zh FROM marts.feed_freshness
               WHERE supervising_centre = ?""",
            [province_code()],
        ).fetchone()
        if "feed_freshness" in marts
        else None
    )
    return PublishedFigures(as_of, total, reminders, stages, verdicts, files, returned, feed)


def render(figures: PublishedFigures, published_db: Path, exports_dir: Path) -> str:
    """The summary as lines of text."""
    as_of = figures.as_of
    lines = [f"As of {as_of}: {figures.total} institutions, {figures.reminders} reminders due", ""]
    if figures.feed:
        status, newest, days, notice = figures.feed
        lines += [
            f"Feed: {status}, newest update {newest or 'none'}, {'?' if days is None else days} days unchanged"
            + ("" if status == "fresh" else f": {notice}"),
            "",
        ]
    lines += ["By lifecycle stage:"] + [f"  {n:>5}  {code:<14} {zh}" for code, zh, n in figures.stages]
    lines += ["", "By renewal verdict:"] + [f"  {n:>5}  {code:<28} {zh}" for code, zh, n in figures.verdicts]
    if figures.files:
        lines += ["", "Centre files read:"] + [f"  {n:>5} rows  {note}" for note, n in figures.files]
    if figures.returned:
        lines += [
            "",
            "Centre rows rejected (退回清单 in the exports): "
            + ", ".join(f"{code} {n}" for code, n in figures.returned),
        ]
    lines += ["", f"Published marts: {published_db}", f"Reminder exports: {exports_dir / str(as_of)}"]
    return "\n".join(lines)


def summary_text(published_db: Path, exports_dir: Path) -> str:
    """A short, human summary of the published marts: institutions per stage and verdict, and where things are."""
    con = open_duckdb(published_db, read_only=True)
    try:
        figures = read_figures(con)
    finally:
        con.close()
    return render(figures, published_db, exports_dir)
