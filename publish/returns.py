"""The 退回清单: per centre, the rows of the centre's spreadsheets rejected on D, for the people who can fix them.

Rendered from the published `ops.centre_record_returns` (one row per rejected row, already assigned to the
supervising centre of the institution it names, or to the province). Each row: file, sheet, row number, the
institution as written, the column, the reason in Chinese, what a valid value looks like and the row as written.
A centre with no rejected rows gets no file. The bytes are a function of the published snapshot and D.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from ingest.warehouse import dict_rows, open_duckdb, scalar
from publish.names import safe_name
from publish.xlsx import append_row, workbook_bytes

log = logging.getLogger(__name__)

# (column of ops.centre_record_returns or a derived one, Chinese header, width)
COLUMNS = [
    ("source_file", "文件", 28),
    ("sheet", "工作表", 12),
    ("row_number", "行号", 7),
    ("institution_id", "机构编号（原文）", 14),
    ("column_header", "出错列", 18),
    ("reason_zh", "退回原因", 44),
    ("expected_zh", "填写要求（正确示例）", 44),
    ("row_as_written", "原行内容", 80),
]


def return_list_name(code: str, centre: str, as_of: dt.date) -> str:
    """Beside the centre's other files of D (`<code>_<name>_…`), so that whoever sends a centre its files
    sends this one too."""
    return safe_name(f"{code}_{centre}_退回清单_{as_of.isoformat()}.xlsx")


def select_returns(published_db: Path, as_of: dt.date) -> list[dict]:
    con = open_duckdb(published_db, read_only=True)
    try:
        present = scalar(
            con,
            """SELECT count(*) FROM duckdb_tables()
               WHERE schema_name = 'ops' AND table_name = 'centre_record_returns'""",
        )
        if not present:  # a snapshot published before the 退回清单 existed
            log.warning("%s has no ops.centre_record_returns: no 退回清单 written", published_db)
            return []
        return dict_rows(
            con,
            """SELECT * FROM ops.centre_record_returns WHERE as_of = ?
                                ORDER BY supervising_centre, source_file, row_number, field""",
            [as_of],
        )
    finally:
        con.close()


def _row_as_written(cells: str | None) -> str:
    values = json.loads(cells) if cells else {}
    return "；".join(f"{header}：{value}" for header, value in values.items() if value != "") or "（空行）"


def _xlsx_bytes(rows: list[dict], centre: str, as_of: dt.date) -> bytes:
    wb = Workbook()
    stamp = dt.datetime.combine(as_of, dt.time())
    wb.properties.creator = "福建省职业技能鉴定指导中心 续期数据平台"
    wb.properties.created = wb.properties.modified = stamp
    sheet = wb.active
    sheet.title = "退回清单"
    title = (
        f"{centre} 台账退回清单（{as_of.isoformat()}）：以下 {len(rows)} 行未能载入，请按“填写要求”"
        "更正原文件后重新报送；其余行已正常载入。"
    )
    append_row(sheet, [title])
    sheet.append([h for _, h, _ in COLUMNS])
    for row in rows:
        values = dict(row, row_as_written=_row_as_written(row["cells"]))
        append_row(sheet, [values.get(c) for c, _, _ in COLUMNS])
    bold, fill, wrap = (
        Font(bold=True),
        PatternFill("solid", fgColor="FCE4D6"),
        Alignment(wrap_text=True, vertical="top"),
    )
    sheet["A1"].font = bold
    for i, (_, _, width) in enumerate(COLUMNS, start=1):
        header = sheet.cell(row=2, column=i)
        header.font, header.fill = bold, fill
        header.alignment = Alignment(horizontal="center", vertical="center")
        sheet.column_dimensions[get_column_letter(i)].width = width
        for r in range(3, len(rows) + 3):
            sheet.cell(row=r, column=i).alignment = wrap
    sheet.freeze_panes = "A3"
    sheet.auto_filter.ref = f"A2:{get_column_letter(len(COLUMNS))}{len(rows) + 2}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.print_title_rows = "2:2"
    return workbook_bytes(wb, stamp)


def return_lists(published_db: Path, as_of: dt.date, centres: Mapping[str, str]) -> dict[str, bytes]:
    """{file name: bytes} of the 退回清单 of D, one per centre with rejected rows; `centres`: name by code."""
    by_centre: dict[str, list[dict]] = {}
    for row in select_returns(published_db, as_of):
        by_centre.setdefault(row["supervising_centre"], []).append(row)
    files = {}
    for code, rows in sorted(by_centre.items()):
        centre = centres.get(code, code)
        files[return_list_name(code, centre, as_of)] = _xlsx_bytes(rows, centre, as_of)
    if by_centre:
        log.info(
            "退回清单 for %s: %s",
            as_of,
            ", ".join(f"{code} {len(r)} rows" for code, r in sorted(by_centre.items())),
        )
    return files
