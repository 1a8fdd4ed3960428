"""Reminder exports for the supervising centres (R-REMIND, issue: reminders city centres can act on).

For a date D: the reminders of `marts.reminders` (published, as of D) that the ledger has not seen sent
before D. Each (institution, registration period, reminder type) is sent once: in the first export on or after
its first_due_on. Per centre one .xlsx (a summary sheet and one sheet per reminder type) and one UTF-8-with-BOM
.csv; per institution reminded, the pre-filled 附件1 and 附件2 (publish/forms.py); a manifest.json with counts
and the sha256 of every file.

Files are written to a temporary folder and swapped into `exports/<D>/` as a whole, then the ledger records
what was sent. Every byte is a function of the published marts, the ledger before D and D, so a rerun for the
same day reproduces identical files.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import re
import shutil
import uuid
from pathlib import Path

import duckdb
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from pipeline.centres import CENTRES
from publish.forms import INSTITUTION_TYPES_ZH, Institution, build_forms
from publish.returns import return_lists
from publish.xlsx import fixed_zip

log = logging.getLogger(__name__)

AUDIENCE_ZH = {"institution": "评价机构", "supervising_centre": "鉴定中心", "institution_and_centre": "评价机构及鉴定中心"}
REMINDER_ORDER = ["window_opens_soon", "window_open", "expiring_30d", "overdue", "grace_period", "grace_ending",
                  "abandoned"]

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
DATE_COLUMNS = {"first_due_on", "deadline", "expires_on"}

LEDGER_DDL = """CREATE TABLE IF NOT EXISTS reminder_ledger (
    institution_id VARCHAR NOT NULL, period_expires_on DATE NOT NULL, reminder_type VARCHAR NOT NULL,
    first_due_on DATE NOT NULL, sent_on DATE NOT NULL,
    PRIMARY KEY (institution_id, period_expires_on, reminder_type))"""


class NotPublishedForDate(RuntimeError):
    """The published marts are for another as-of date; reminders for D need the marts of D."""


def select_reminders(published_db: Path, ledger_db: Path, as_of: dt.date) -> list[dict]:
    """Reminders due on D and not sent by an export before D (a rerun for D selects the same rows)."""
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        published_as_of = con.execute("SELECT max(as_of) FROM marts.renewal_eligibility").fetchone()[0]
        if published_as_of != as_of:
            raise NotPublishedForDate(f"{published_db} holds the marts as of {published_as_of}, not {as_of}: run "
                                      f"renewal_daily for {as_of} first")
        sent = "SELECT NULL::VARCHAR AS institution_id, NULL::DATE AS period_expires_on, NULL AS reminder_type, " \
               "NULL::DATE AS sent_on WHERE false"
        if ledger_db.exists():
            con.execute(f"ATTACH '{ledger_db}' AS ledger (READ_ONLY)")
            sent = "SELECT * FROM ledger.reminder_ledger"
        cursor = con.execute(f"""
            SELECT r.*
            FROM marts.reminders r
            LEFT JOIN ({sent}) s
              ON s.institution_id = r.institution_id AND s.period_expires_on = r.expires_on
             AND s.reminder_type = r.reminder_type
            WHERE r.first_due_on <= $as_of AND (s.sent_on IS NULL OR s.sent_on >= $as_of)
            ORDER BY r.supervising_centre, r.deadline NULLS LAST, r.institution_id, r.reminder_type""",
                             {"as_of": as_of})
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def record_sent(ledger_db: Path, rows: list[dict], as_of: dt.date) -> int:
    """Write the reminders of the export for D into the ledger (idempotent for reruns of D)."""
    con = duckdb.connect(str(ledger_db))
    try:
        con.execute(LEDGER_DDL)
        before = con.execute("SELECT count(*) FROM reminder_ledger").fetchone()[0]
        if rows:  # one statement: the columns as lists, unnested side by side
            con.execute(
                """INSERT OR IGNORE INTO reminder_ledger
                   SELECT unnest($ids), unnest($periods), unnest($types), unnest($first_due), $as_of""",
                {"ids": [r["institution_id"] for r in rows], "periods": [r["expires_on"] for r in rows],
                 "types": [r["reminder_type"] for r in rows], "first_due": [r["first_due_on"] for r in rows],
                 "as_of": as_of})
        return con.execute("SELECT count(*) FROM reminder_ledger").fetchone()[0] - before
    finally:
        con.close()


def _display(column: str, value: object) -> object:
    if column == "institution_type":
        return INSTITUTION_TYPES_ZH.get(value, value)
    if column == "audience":
        return AUDIENCE_ZH.get(value, value)
    return value


def _csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([h for _, h, _ in COLUMNS])
    for row in rows:
        values = [_display(c, row[c]) for c, _, _ in COLUMNS]
        writer.writerow(["" if v is None else (v.isoformat() if isinstance(v, dt.date) else v) for v in values])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def _detail_sheet(wb: Workbook, title: str, rows: list[dict]) -> None:
    sheet = wb.create_sheet(title[:31])
    sheet.append([h for _, h, _ in COLUMNS])
    for row in rows:
        sheet.append([_display(c, row[c]) for c, _, _ in COLUMNS])
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDEBF7")
    for i, (column, _, width) in enumerate(COLUMNS, start=1):
        cell = sheet.cell(row=1, column=i)
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(horizontal="center", vertical="center")
        sheet.column_dimensions[get_column_letter(i)].width = width
        if column in DATE_COLUMNS:
            for r in range(2, len(rows) + 2):
                sheet.cell(row=r, column=i).number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(COLUMNS))}{len(rows) + 1}"


def _xlsx_bytes(rows: list[dict], centre_name: str, as_of: dt.date) -> bytes:
    wb = Workbook()
    stamp = dt.datetime.combine(as_of, dt.time())
    wb.properties.creator = "福建省职业技能鉴定指导中心 续期数据平台"
    wb.properties.created = wb.properties.modified = stamp
    summary = wb.active
    summary.title = "汇总"
    summary.append(["鉴定中心", centre_name])
    summary.append(["提醒日期", as_of])
    summary.append(["提醒总数", len(rows)])
    summary.append(["涉及机构数", len({r["institution_id"] for r in rows})])
    summary.append([])
    summary.append(["提醒类型", "数量", "提醒对象", "下一步工作"])
    for cell in summary[6]:
        cell.font = Font(bold=True)
    by_type: dict[str, list[dict]] = {}
    for row in rows:
        by_type.setdefault(row["reminder_type"], []).append(row)
    for reminder_type in sorted(by_type, key=lambda t: (REMINDER_ORDER.index(t) if t in REMINDER_ORDER else 99, t)):
        first = by_type[reminder_type][0]
        summary.append([first["reminder_type_zh"], len(by_type[reminder_type]), _display("audience", first["audience"]),
                        first["next_step_zh"]])
    summary["B2"].number_format = "yyyy-mm-dd"
    for column, width in zip("ABCD", (22, 14, 18, 80)):
        summary.column_dimensions[column].width = width
    for reminder_type in sorted(by_type, key=lambda t: (REMINDER_ORDER.index(t) if t in REMINDER_ORDER else 99, t)):
        _detail_sheet(wb, by_type[reminder_type][0]["reminder_type_zh"], by_type[reminder_type])
    raw = io.BytesIO()
    wb.save(raw)
    return fixed_zip(raw.getvalue(), stamp)


def _safe(text: str) -> str:
    return re.sub(r'[\\/:*?"<>|\s]+', "_", text).strip("_")[:60]


def _institutions(published_db: Path, rows: list[dict]) -> list[Institution]:
    """Everything the forms need for the institutions reminded, from the published marts."""
    ids = sorted({r["institution_id"] for r in rows})
    if not ids:
        return []
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        def query(sql: str) -> list[dict]:
            cursor = con.execute(sql, [ids])
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, r)) for r in cursor.fetchall()]

        base = {r["institution_id"]: r for r in query(
            "SELECT * FROM marts.renewal_eligibility WHERE list_contains(?, institution_id)")}
        plans = query("SELECT * FROM marts.evaluation_plans WHERE list_contains(?, institution_id) ORDER BY plan_no")
        levels = query("""SELECT institution_id, occupation_name, work_type, level, sum(batches) AS batches,
                                 sum(candidates) AS candidates, sum(passed) AS passed
                          FROM marts.batch_counts WHERE list_contains(?, institution_id)
                          GROUP BY ALL ORDER BY institution_id, occupation_name, work_type, level""")
        facts = {r["institution_id"]: r for r in query(
            "SELECT * FROM marts.renewal_application_facts WHERE list_contains(?, institution_id)")}
    finally:
        con.close()
    contacts = {r["institution_id"]: r for r in rows}
    result = []
    for iid in ids:
        b, c = base[iid], contacts[iid]
        result.append(Institution(
            institution_id=iid, name=b["institution_name"], institution_type=b["institution_type"],
            registration_no=b["registration_no"], address=c.get("address"), registered_on=b["registered_on"],
            expires_on=b["expires_on"], responsible_person=c.get("responsible_person"),
            responsible_phone=c.get("responsible_phone"), contact_person=c.get("contact_person"),
            contact_phone=c.get("contact_phone"), email=c.get("email"),
            centre_name=CENTRES.get(b["supervising_centre"], ("", b["supervising_centre"]))[1],
            batch_count=b["batch_count"],
            plans=[p for p in plans if p["institution_id"] == iid],
            by_occupation_level=[x for x in levels if x["institution_id"] == iid],
            facts=facts.get(iid, {}),
        ))
    return result


def export_reminders(published_db: Path, exports_dir: Path, as_of: dt.date, ledger_db: Path) -> dict:
    """Write the export for D, then record it in the ledger; returns the manifest."""
    rows = select_reminders(published_db, ledger_db, as_of)
    by_centre: dict[str, list[dict]] = {code: [] for code in CENTRES}
    for row in rows:
        by_centre.setdefault(row["supervising_centre"], []).append(row)
    institutions = {i.institution_id: i for i in _institutions(published_db, rows)}
    forms = dict(zip(institutions, build_forms(list(institutions.values()), as_of)))

    target = exports_dir / as_of.isoformat()
    staging = exports_dir / f".{as_of.isoformat()}.{uuid.uuid4().hex}.tmp"
    staging.mkdir(parents=True)
    files: dict[str, bytes] = {}
    try:
        for code, centre_rows in by_centre.items():
            name = CENTRES.get(code, (code, code))[1]
            stem = f"{code}_{name}_续期提醒_{as_of.isoformat()}"
            files[f"{stem}.csv"] = _csv_bytes(centre_rows)
            files[f"{stem}.xlsx"] = _xlsx_bytes(centre_rows, name, as_of)
            for iid in sorted({r["institution_id"] for r in centre_rows}):
                inst = institutions[iid]
                folder = f"{code}_{name}_申请材料/{iid}_{_safe(inst.name)}"
                annex1, annex2 = forms[iid]
                files[f"{folder}/附件1_备案续期申请表_{iid}.xlsx"] = annex1
                files[f"{folder}/附件2_认定工作总结_{iid}.docx"] = annex2
        files |= return_lists(published_db, as_of)  # each centre's 退回清单 (issue 17), in the manifest too
        manifest = {
            "as_of": as_of.isoformat(),
            "reminders": len(rows),
            "institutions": len(institutions),
            "by_centre": {code: len(r) for code, r in by_centre.items()},
            "by_type": {t: sum(1 for r in rows if r["reminder_type"] == t)
                        for t in sorted({r["reminder_type"] for r in rows})},
            "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
        }
        files["manifest.json"] = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
        for path, data in files.items():
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            (staging / path).write_bytes(data)
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
    recorded = record_sent(ledger_db, rows, as_of)
    log.info("exported %s reminders for %d institutions (%d newly recorded as sent) to %s",
             f"{len(rows):,}", len(institutions), recorded, target)
    return manifest
