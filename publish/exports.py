"""Reminder exports for the supervising centres (R-REMIND, issue: reminders city centres can act on).

For a date D: the reminders of `marts.reminders` (published, as of D) that the ledger has not seen sent
before D. Each (institution, registration period, reminder type) is sent once: in the first export on or after
its first_due_on. Per centre one .xlsx (publish/workbook.py: first the centre's work list 今日须办, which is a
standing to-do list of mart work_items, not "sent once", under the notice of mart feed_freshness when the feed
has stopped changing (R-FEED); the province's roll-up and own tasks; 预警; then one sheet per reminder type with
today's reminders) and one UTF-8-with-BOM .csv of today's reminders; per institution reminded, the pre-filled
附件1 and 附件2 if it can apply now, else a one-page 告知 (publish/forms.py); a manifest.json with counts, the
feed's freshness and the sha256 of every file.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.crash_points import crash_point
from ingest.warehouse import dict_rows, open_duckdb, scalar
from pipeline.settings import province_code
from publish.form_cache import FormCache
from publish.forms import Institution, build_forms
from publish.names import export_path, inside
from publish.returns import return_lists
from publish.workbook import centre_workbook

log = logging.getLogger(__name__)

# The CSV: the reminders sent today, each once (docs/rules.md R-REMIND); ISO dates, phone numbers quoted so
# that a leading 0 survives, text from outside that a spreadsheet would run neutralised (csv_text). (column in
# marts.reminders, Chinese header)
CSV_COLUMNS = [
    ("institution_id", "机构编号"),
    ("institution_name", "机构名称"),
    ("institution_type_zh", "机构类型"),
    ("registration_no", "机构备案号"),
    ("reminder_type_zh", "提醒类型"),
    ("audience_zh", "提醒对象"),
    ("first_due_on", "应提醒起始日期"),
    ("deadline", "关键日期"),
    ("deadline_label_zh", "关键日期含义"),
    ("days_left", "剩余天数"),
    ("expires_on", "备案到期时间"),
    ("lifecycle_stage_zh", "当前阶段"),
    ("conditions_zh", "续期条件（截至统计日期）"),
    ("batch_count", "认定批次数"),
    ("queryable_certificates", "可查询证书数"),
    ("expected_certificates", "应发证书数"),
    ("reasons_zh", "原因"),
    ("next_step_centre_zh", "下一步工作（致本中心）"),
    ("message_institution_zh", "转告机构的提示"),
    ("contact_person", "评价业务联系人"),
    ("contact_phone", "联系人手机号码"),
    ("responsible_person", "评价业务负责人"),
    ("responsible_phone", "负责人手机号码"),
    ("email", "电子邮箱"),
]
PHONE_COLUMNS = {"contact_phone", "responsible_phone"}
# A spreadsheet program opening the CSV takes a field that starts with one of these for a formula (=HYPERLINK(…),
# +cmd|' /C calc'!A0, @SUM(…), -2+3; tab and CR are skipped before the test): OWASP's CSV-injection guidance
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

LEDGER_DDL = """CREATE TABLE IF NOT EXISTS reminder_ledger (
    institution_id VARCHAR NOT NULL, period_expires_on DATE NOT NULL, reminder_type VARCHAR NOT NULL,
    first_due_on DATE NOT NULL, sent_on DATE NOT NULL,
    PRIMARY KEY (institution_id, period_expires_on, reminder_type))"""


class NotPublishedForDate(RuntimeError):
    """The published marts are for another as-of date; reminders for D need the marts of D."""


def select_reminders(published_db: Path, ledger_db: Path, as_of: dt.date) -> list[dict]:
    """Reminders due on D and not sent by an export before D (a rerun for D selects the same rows)."""
    con = open_duckdb(published_db, read_only=True)
    try:
        published_as_of = scalar(con, "SELECT max(as_of) FROM marts.renewal_eligibility")
        if published_as_of != as_of:
            raise NotPublishedForDate(
                f"{published_db} holds the marts as of {published_as_of}, not {as_of}: run "
                f"renewal_daily for {as_of} first"
            )
        sent = (
            "SELECT NULL::VARCHAR AS institution_id, NULL::DATE AS period_expires_on, NULL AS reminder_type, "
            "NULL::DATE AS sent_on WHERE false"
        )
        if ledger_db.exists():
            con.execute(f"ATTACH '{ledger_db}' AS ledger (READ_ONLY)")
            sent = "SELECT * FROM ledger.reminder_ledger"
        return dict_rows(
            con,
            f"""
            SELECT r.*
            FROM marts.reminders r
            LEFT JOIN ({sent}) s
              ON s.institution_id = r.institution_id AND s.period_expires_on = r.expires_on
             AND s.reminder_type = r.reminder_type
            WHERE r.first_due_on <= $as_of AND (s.sent_on IS NULL OR s.sent_on >= $as_of)
            ORDER BY r.supervising_centre, r.deadline NULLS LAST, r.institution_id, r.reminder_type""",
            {"as_of": as_of},
        )
    finally:
        con.close()


def record_sent(ledger_db: Path, rows: list[dict], as_of: dt.date) -> int:
    """Write the reminders of the export for D into the ledger (idempotent for reruns of D)."""
    crash_point("export:before_ledger")  # exports/<D>/ is in place, the ledger does not know it was sent
    con = open_duckdb(ledger_db)
    try:
        con.execute(LEDGER_DDL)
        before = scalar(con, "SELECT count(*) FROM reminder_ledger")
        if rows:  # one statement: the columns as lists, unnested side by side
            con.execute(
                """INSERT OR IGNORE INTO reminder_ledger
                   SELECT unnest($ids), unnest($periods), unnest($types), unnest($first_due), $as_of""",
                {
                    "ids": [r["institution_id"] for r in rows],
                    "periods": [r["expires_on"] for r in rows],
                    "types": [r["reminder_type"] for r in rows],
                    "first_due": [r["first_due_on"] for r in rows],
                    "as_of": as_of,
                },
            )
        return scalar(con, "SELECT count(*) FROM reminder_ledger") - before
    finally:
        con.close()


def csv_text(value: object) -> object:
    """A CSV field as written: text that starts with a FORMULA_TRIGGERS character gets a leading `'`, which a
    spreadsheet shows as text and does not run (OWASP). Every text may come from the feed or a centre's file, a
    phone number +86… included; numbers (days_left may be negative) and dates are ours and stay as they are."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


class _PhoneQuotingWriter:
    """csv.writer that quotes the phone columns always (a spreadsheet opening the file then keeps their leading
    0) and other fields only where needed."""

    def __init__(self, buf: io.StringIO) -> None:
        self.buf = buf

    def writerow(self, values: list, quoted: set[int]) -> None:
        cells = []
        for i, value in enumerate(values):
            text = str(value)
            if i in quoted and text:
                cells.append('"' + text.replace('"', '""') + '"')
            elif not text:
                cells.append("")  # (a csv.writer given one empty field alone writes "")
            else:
                # the file's own line terminator: csv.writer quotes a field holding one of its characters, so a
                # CR or LF inside a name stays in its field (with "" it was written bare, starting a new row)
                one = io.StringIO()
                csv.writer(one, lineterminator="\r\n").writerow([value])
                cells.append(one.getvalue().removesuffix("\r\n"))
        self.buf.write(",".join(cells) + "\r\n")


def _csv_bytes(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = _PhoneQuotingWriter(buf)
    writer.writerow([h for _, h in CSV_COLUMNS], set())
    quoted = {i for i, (c, _) in enumerate(CSV_COLUMNS) if c in PHONE_COLUMNS}
    for row in rows:
        writer.writerow([csv_text(row.get(c)) for c, _ in CSV_COLUMNS], quoted)
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def _centres(published_db: Path) -> dict[str, str]:
    """Every supervising centre (mart centres, from the seed supervising_centres): code -> name, in code order."""
    con = open_duckdb(published_db, read_only=True)
    try:
        rows = con.execute(
            "SELECT supervising_centre, supervising_centre_zh FROM marts.centres ORDER BY supervising_centre"
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def feed_freshness(published_db: Path) -> dict[str, dict[str, Any]]:
    """Mart feed_freshness (R-FEED) by supervising centre: one identical row each, saying whether the feed still
    changes on D. Empty for a snapshot published before the mart existed."""
    con = open_duckdb(published_db, read_only=True)
    try:
        present = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'marts' AND table_name = 'feed_freshness'"
        ).fetchone()
        if not present or not present[0]:
            log.warning(
                "%s has no marts.feed_freshness: the exports say nothing of the feed's freshness",
                published_db,
            )
            return {}
        rows = dict_rows(con, "SELECT * FROM marts.feed_freshness ORDER BY supervising_centre")
    finally:
        con.close()
    return {row["supervising_centre"]: row for row in rows}


def feed_notice(row: dict[str, Any] | None) -> str | None:
    """The line the centre's workbook opens on when the feed is not fresh (R-FEED), else None."""
    if row is None or row["freshness_status"] == "fresh":
        return None
    return row["notice_zh"]


def _work_lists(published_db: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """work_items (R-WORK), renewal_warnings (R-WARN) and centre_summary, in their display order."""
    con = open_duckdb(published_db, read_only=True)
    try:
        work = dict_rows(con, "SELECT * FROM marts.work_items ORDER BY list_centre, sort_order")
        warnings = dict_rows(
            con,
            """SELECT * FROM marts.renewal_warnings
                                  ORDER BY supervising_centre, window_opens_on, institution_id""",
        )
        summary = dict_rows(
            con, "SELECT * FROM marts.centre_summary ORDER BY supervising_centre, lifecycle_stage"
        )
    finally:
        con.close()
    return work, warnings, summary


def _name_label(text: str) -> str:
    """An institution's name as part of its folder's name: short (the whole path stays readable, and within
    Windows' 260 characters), without spaces; publish.names.safe_name makes the whole name safe."""
    return re.sub(r'[\\/:*?"<>|\s]+', "_", text).strip("_")[:60]


def form_institutions(published_db: Path, rows: list[dict]) -> list[Institution]:
    """Everything the forms need for the institutions reminded, from the published marts."""
    ids = sorted({r["institution_id"] for r in rows})
    if not ids:
        return []
    con = open_duckdb(published_db, read_only=True)
    try:

        def query(sql: str) -> list[dict]:
            return dict_rows(con, sql, [ids])

        base = {
            r["institution_id"]: r
            for r in query("SELECT * FROM marts.renewal_eligibility WHERE list_contains(?, institution_id)")
        }
        plans = query(
            "SELECT * FROM marts.evaluation_plans WHERE list_contains(?, institution_id) ORDER BY plan_no"
        )
        levels = query("""SELECT institution_id, occupation_name, work_type, level, level_zh, sum(batches) AS batches,
                                 sum(candidates) AS candidates, sum(passed) AS passed
                          FROM marts.batch_counts WHERE list_contains(?, institution_id)
                          GROUP BY ALL ORDER BY institution_id, occupation_name, work_type, level""")
        facts = {
            r["institution_id"]: r
            for r in query(
                "SELECT * FROM marts.renewal_application_facts WHERE list_contains(?, institution_id)"
            )
        }
    finally:
        con.close()
    contacts = {r["institution_id"]: r for r in rows}
    result = []
    for iid in ids:
        b, c = base[iid], contacts[iid]
        result.append(
            Institution(
                institution_id=iid,
                name=b["institution_name"],
                institution_type=b["institution_type"],
                institution_type_zh=b["institution_type_zh"],
                registration_no=b["registration_no"],
                address=c.get("address"),
                registered_on=b["registered_on"],
                expires_on=b["expires_on"],
                responsible_person=c.get("responsible_person"),
                responsible_phone=c.get("responsible_phone"),
                contact_person=c.get("contact_person"),
                contact_phone=c.get("contact_phone"),
                email=c.get("email"),
                centre_name=b["supervising_centre_zh"],
                batch_count=b["batch_count"],
                eligibility=b,
                plans=[p for p in plans if p["institution_id"] == iid],
                by_occupation_level=[x for x in levels if x["institution_id"] == iid],
                facts=facts.get(iid, {}),
            )
        )
    return result


def _feed_summary(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """The feed's freshness as the manifest records it (the reminder mails read it from there)."""
    if row is None:
        return None
    return {
        "status": row["freshness_status"],
        "days_unchanged": row["days_unchanged"],
        "newest_updated_on": row["newest_updated_on"].isoformat() if row["newest_updated_on"] else None,
        "notice_zh": row["notice_zh"],
    }


@dataclass
class _ExportInputs:
    """What the export for D is made of, read from the published marts, the ledger and the forms."""

    rows: list[dict]  # the reminders sent today
    centres: dict[str, str]  # every centre's name by code, in code order
    by_centre: dict[str, list[dict]]  # the reminders of each centre (every centre, none or not)
    work: list[dict]
    warnings: list[dict]
    summary: list[dict]
    feed: dict[str, dict[str, Any]]
    institutions: dict[str, Institution]
    forms: dict[str, tuple[bytes, ...]]


def _export_inputs(
    published_db: Path, ledger_db: Path, as_of: dt.date, form_cache: FormCache | None
) -> _ExportInputs:
    """Everything the export for D writes: the reminders not sent before D, the work lists, the feed's freshness
    and the forms of the institutions reminded."""
    rows = select_reminders(published_db, ledger_db, as_of)
    centres = _centres(published_db)
    by_centre: dict[str, list[dict]] = {code: [] for code in centres}
    for row in rows:
        by_centre.setdefault(row["supervising_centre"], []).append(row)
    work, warnings, summary = _work_lists(published_db)
    feed = feed_freshness(published_db)
    institutions = {i.institution_id: i for i in form_institutions(published_db, rows)}
    # 附件1/附件2 only for an institution that can apply now; any other gets a one-page 告知 instead
    make = build_forms if form_cache is None else form_cache.forms
    forms = dict(zip(institutions, make(list(institutions.values()), as_of), strict=True))
    return _ExportInputs(rows, centres, by_centre, work, warnings, summary, feed, institutions, forms)


def _centre_files(inputs: _ExportInputs, code: str, as_of: dt.date) -> dict[str, bytes]:
    """A centre's CSV of today's reminders and its workbook, by path in the export."""
    name = inputs.centres.get(code, code)
    stem = f"{code}_{name}_续期提醒_{as_of.isoformat()}"
    centre_rows = inputs.by_centre[code]
    province = code == province_code()
    centre_work = [r for r in inputs.work if r["list_centre"] == code]
    centre_warnings = (
        inputs.warnings if province else [r for r in inputs.warnings if r["supervising_centre"] == code]
    )
    # the province's workbook sums up every centre's
    sent_by_centre = {c: len(r) for c, r in inputs.by_centre.items()} if province else None
    return {
        export_path(f"{stem}.csv"): _csv_bytes(centre_rows),
        export_path(f"{stem}.xlsx"): centre_workbook(
            code,
            as_of,
            centre_work,
            centre_warnings,
            centre_rows,
            inputs.summary if province else None,
            sent_by_centre,
            new_ids={r["institution_id"] for r in (inputs.rows if province else centre_rows)},
            centres=inputs.centres,
            feed_notice=feed_notice(inputs.feed.get(code)),
        ),
    }


def _form_files(inputs: _ExportInputs, code: str) -> tuple[dict[str, bytes], int, int]:
    """The forms of a centre's institutions reminded today, by path, and how many application packs (附件1 and
    附件2) and how many 告知 they are."""
    name = inputs.centres.get(code, code)
    files: dict[str, bytes] = {}
    packs = notices = 0
    for iid in sorted({r["institution_id"] for r in inputs.by_centre[code]}):
        inst = inputs.institutions[iid]
        folder = (f"{code}_{name}_申请材料", f"{iid}_{_name_label(inst.name)}")
        made = inputs.forms[iid]
        if len(made) == 2:
            files[export_path(*folder, f"附件1_备案续期申请表_{iid}.xlsx")] = made[0]
            files[export_path(*folder, f"附件2_认定工作总结_{iid}.docx")] = made[1]
            packs += 1
        else:
            files[export_path(*folder, f"告知_暂不能申请续期_{iid}.docx")] = made[0]
            notices += 1
    return files, packs, notices


def _manifest(
    inputs: _ExportInputs, as_of: dt.date, files: dict[str, bytes], packs: int, notices: int
) -> dict[str, Any]:
    """manifest.json: the counts per centre and type, the feed's freshness, and the sha256 of every file."""
    rows, work, warnings, centres = inputs.rows, inputs.work, inputs.warnings, inputs.centres
    return {
        "as_of": as_of.isoformat(),
        "reminders": len(rows),
        "institutions": len(inputs.institutions),
        "application_packs": packs,
        "cannot_apply_notices": notices,
        "by_centre": {code: len(r) for code, r in inputs.by_centre.items()},
        "by_type": {
            t: sum(1 for r in rows if r["reminder_type"] == t)
            for t in sorted({r["reminder_type"] for r in rows})
        },
        "work_items": {code: sum(1 for r in work if r["list_centre"] == code) for code in centres},
        "warnings": {code: sum(1 for r in warnings if r["supervising_centre"] == code) for code in centres},
        "feed_freshness": _feed_summary(inputs.feed.get(province_code())),
        "files": {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())},
    }


def _write_files(staging: Path, files: dict[str, bytes]) -> None:
    """Each file at its path below `staging`, which it must not leave."""
    for path, data in files.items():
        destination = inside(staging, path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data)


def _swap_in(staging: Path, target: Path, exports_dir: Path, as_of: dt.date) -> None:
    """Put the complete export in place of D's folder by renames: a reader sees the old export or the new one."""
    if target.exists():
        old = exports_dir / f".{as_of.isoformat()}.{uuid.uuid4().hex}.old"
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old)
    else:
        staging.rename(target)


def export_reminders(
    published_db: Path,
    exports_dir: Path,
    as_of: dt.date,
    ledger_db: Path,
    form_cache: FormCache | None = None,
) -> dict:
    """Write the export for D, then record it in the ledger; returns the manifest. With a form_cache, only the
    forms whose inputs changed are made (the files are the same bytes either way)."""
    inputs = _export_inputs(published_db, ledger_db, as_of, form_cache)
    target = exports_dir / as_of.isoformat()
    staging = exports_dir / f".{as_of.isoformat()}.{uuid.uuid4().hex}.tmp"
    staging.mkdir(parents=True)
    files: dict[str, bytes] = {}
    packs = notices = 0
    try:
        # every file name is built from values of the feed or the seeds: each part goes through safe_name
        # (export_path), and each path is checked to stay inside the export folder when written (inside)
        for code in inputs.by_centre:
            files |= _centre_files(inputs, code, as_of)
            forms, centre_packs, centre_notices = _form_files(inputs, code)
            files |= forms
            packs, notices = packs + centre_packs, notices + centre_notices
        # each centre's 退回清单, in the manifest too
        files |= return_lists(published_db, as_of, inputs.centres)
        manifest = _manifest(inputs, as_of, files, packs, notices)
        files["manifest.json"] = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
        _write_files(staging, files)
        crash_point("export:staged")  # every file written, not yet in exports/<D>/
        _swap_in(staging, target, exports_dir, as_of)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    if form_cache is not None:
        form_cache.keep_only_used()
    recorded = record_sent(ledger_db, inputs.rows, as_of)
    log.info(
        "exported %s reminders for %d institutions (%d application packs, %d 告知; %d newly recorded as sent) "
        "and %d work-list rows to %s",
        f"{len(inputs.rows):,}",
        len(inputs.institutions),
        packs,
        notices,
        recorded,
        len(inputs.work),
        target,
    )
    return manifest
