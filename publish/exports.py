"""Reminder exports for the supervising centres: one .xlsx and one UTF-8-with-BOM .csv per centre and day.

Files are written to a temporary folder and moved into `exports/<as-of>/` as a whole, and every byte is a
function of the published marts and the as-of date (fixed workbook and zip timestamps), so a rerun for the
same day reproduces identical files.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import shutil
import uuid
import zipfile
from pathlib import Path

import duckdb
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from pipeline.centres import CENTRES

log = logging.getLogger(__name__)

INSTITUTION_TYPES_ZH = {"employer": "用人单位", "school": "院校", "social_org": "社会培训评价组织"}
AUDIENCE_ZH = {"institution": "评价机构", "supervising_centre": "鉴定中心", "institution_and_centre": "评价机构及鉴定中心"}

# (column in marts.reminders, Chinese header, width in characters)
COLUMNS = [
    ("institution_id", "机构编号", 12),
    ("institution_name", "机构名称", 30),
    ("institution_type", "机构类型", 16),
    ("registration_no", "备案编号", 24),
    ("reminder_type_zh", "提醒类型", 18),
    ("audience", "提醒对象", 16),
    ("first_due_on", "首次提醒日期", 13),
    ("deadline", "截止日期", 12),
    ("days_left", "剩余天数", 9),
    ("expires_on", "备案有效期截止", 14),
    ("contact_person", "联系人", 10),
    ("contact_phone", "联系电话", 14),
    ("responsible_person", "负责人", 10),
    ("responsible_phone", "负责人电话", 14),
    ("email", "电子邮箱", 26),
    ("lifecycle_stage_zh", "当前阶段", 14),
    ("renewal_verdict_zh", "续期条件判定", 20),
    ("reasons_zh", "原因", 40),
    ("next_step_zh", "下一步工作", 60),
]
SELECT = f"""
SELECT {", ".join(c for c, _, _ in COLUMNS)}, supervising_centre, reminder_type
FROM marts.reminders
ORDER BY supervising_centre, deadline NULLS LAST, institution_id, reminder_type
"""
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _display(column: str, value: object) -> object:
    if column == "institution_type":
        return INSTITUTION_TYPES_ZH.get(value, value)
    if column == "audience":
        return AUDIENCE_ZH.get(value, value)
    return value


def _csv_bytes(rows: list[tuple]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([h for _, h, _ in COLUMNS])
    for row in rows:
        writer.writerow(["" if v is None else (v.isoformat() if isinstance(v, dt.date) else v) for v in row])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def _xlsx_bytes(rows: list[tuple], centre_name: str, as_of: dt.date) -> bytes:
    wb = Workbook()
    stamp = dt.datetime.combine(as_of, dt.time())
    wb.properties.creator = "福建省职业技能鉴定指导中心 续期数据平台"
    wb.properties.created = stamp
    wb.properties.modified = stamp
    summary = wb.active
    summary.title = "汇总"
    summary.append(["鉴定中心", centre_name])
    summary.append(["提醒日期", as_of])
    summary.append(["提醒总数", len(rows)])
    summary.append([])
    summary.append(["提醒类型", "数量"])
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[4]] = counts.get(row[4], 0) + 1
    for label, n in sorted(counts.items()):
        summary.append([label, n])
    summary["B2"].number_format = "yyyy-mm-dd"
    summary.column_dimensions["A"].width = 22
    summary.column_dimensions["B"].width = 36

    sheet = wb.create_sheet("提醒明细")
    sheet.append([h for _, h, _ in COLUMNS])
    for row in rows:
        sheet.append([_display(c, v) for (c, _, _), v in zip(COLUMNS, row)])
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for i, (column, _, width) in enumerate(COLUMNS, start=1):
        cell = sheet.cell(row=1, column=i)
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(horizontal="center", vertical="center")
        sheet.column_dimensions[get_column_letter(i)].width = width
        if column in ("first_due_on", "deadline", "expires_on"):
            for r in range(2, len(rows) + 2):
                sheet.cell(row=r, column=i).number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(rows) + 1}"

    raw = io.BytesIO()
    wb.save(raw)
    return _fixed_zip(raw.getvalue(), stamp)


def _fixed_zip(data: bytes, stamp: dt.datetime) -> bytes:
    """Rewrite an .xlsx with fixed entry timestamps and a fixed modified time (openpyxl stamps the save
    time into docProps/core.xml), so identical content gives identical bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                                 rb"\g<1>" + stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode() + rb"\g<2>", content)
            dst.writestr(fixed, content)
    return out.getvalue()


def export_reminders(published_db: Path, exports_dir: Path, as_of: dt.date) -> dict[str, int]:
    """Write the reminders due on `as_of` for every supervising centre; returns reminders per centre."""
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        rows = con.execute(SELECT).fetchall()
    finally:
        con.close()
    by_centre: dict[str, list[tuple]] = {code: [] for code in CENTRES}
    for row in rows:
        by_centre.setdefault(row[-2], []).append(row[:-2])

    target = exports_dir / as_of.isoformat()
    staging = exports_dir / f".{as_of.isoformat()}.{uuid.uuid4().hex}.tmp"
    staging.mkdir(parents=True)
    try:
        for code, centre_rows in by_centre.items():
            name = CENTRES.get(code, (code, code))[1]
            stem = f"{code}_{name}_续期提醒_{as_of.isoformat()}"
            (staging / f"{stem}.csv").write_bytes(_csv_bytes(centre_rows))
            (staging / f"{stem}.xlsx").write_bytes(_xlsx_bytes(centre_rows, name, as_of))
        if target.exists():
            old = exports_dir / f".{as_of.isoformat()}.{uuid.uuid4().hex}.old"
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old)
        else:
            staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    counts = {code: len(r) for code, r in by_centre.items()}
    log.info("exported %s reminders for %d centres to %s", f"{sum(counts.values()):,}", len(counts), target)
    return counts
