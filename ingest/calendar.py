"""Load the official PRC working-day calendar (holidays and 调休 make-up workdays) from chinesecalendar."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

import chinese_calendar
import duckdb
from chinese_calendar import constants

log = logging.getLogger(__name__)


# Only the years chinesecalendar ships are loaded; dbt estimates other years (docs/rules.md R-SLA) and the
# centre can add a year's official schedule in the `calendar_additions` seed.
def covered_years() -> range:
    years = {d.year for d in constants.holidays} | {d.year for d in constants.workdays}
    return range(min(years), max(years) + 1)


def calendar_rows() -> list[dict]:
    years = covered_years()
    day, end = dt.date(years.start, 1, 1), dt.date(years.stop - 1, 12, 31)
    rows = []
    while day <= end:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        rows.append(
            {
                "day": day.isoformat(),
                "is_workday": chinese_calendar.is_workday(day),
                "holiday_name": name if on_holiday and name else None,
            }
        )
        day += dt.timedelta(days=1)
    return rows


def load_calendar(con: duckdb.DuckDBPyConnection) -> int:
    rows = calendar_rows()
    payload = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()
    rel = con.read_json(
        io.BytesIO(payload),
        columns={"day": "DATE", "is_workday": "BOOLEAN", "holiday_name": "VARCHAR"},
        format="newline_delimited",
    )
    con.register("calendar_batch", rel)
    con.execute("CREATE OR REPLACE TABLE raw.prc_calendar AS SELECT * FROM calendar_batch")
    years = covered_years()
    log.info("loaded the PRC calendar for %d–%d (%s days)", years.start, years.stop - 1, f"{len(rows):,}")
    return len(rows)
