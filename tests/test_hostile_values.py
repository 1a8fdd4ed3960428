"""Values from the feed and the centres' spreadsheets are hostile until proven otherwise: an institution named
=HYPERLINK(…) or +cmd|…, a contact starting with `-`, names with `/`, `..`, control characters or CON, an
institution whose id is ../../x. Exports hold them as text (never a formula, never a field code), names made from
them stay inside the export folder, and a malformed institution_id is quarantined at landing, with its plans,
certificates and occupations, without stopping the run, failing the gate or changing anyone else's verdict."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import shutil
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb
import orjson
import pytest
from openpyxl import load_workbook

from ingest.centre_records import load_centre_records
from ingest.feed_client import FeedClient
from ingest.land import pull
from ingest.warehouse import FEED_RESOURCES, INSTITUTION_ID_PATTERN, connect
from publish.exports import FORMULA_TRIGGERS, _csv_bytes
from publish.forms import Institution, annex1_xlsx, annex2_docx, cannot_apply_notice_docx
from publish.names import MAX_NAME_BYTES, UnsafeExportPath, export_path, inside, safe_name
from publish.returns import _xlsx_bytes
from publish.workbook import centre_workbook
from tests.helpers import AS_OF, RunningFeed, make_settings, reminder_row, run_pipeline_steps

BAD_ID = "../../x"
REASON = f"institution_id: does not match ^{INSTITUTION_ID_PATTERN}$, got '{BAD_ID}'"
HYPERLINK = '=HYPERLINK("http://x","点此续期")'
DDE = "+cmd|' /C calc'!A0"
# what the test feeds in, as institution names (each export shows it as text, the control characters as U+FFFD)
HOSTILE_NAMES = [
    HYPERLINK,
    DDE,
    "@SUM(1+1)",
    "-2+3福州培训中心",
    "福州/闽侯\\培训中心",
    "../../etc/passwd",
    "机构\x07\x1b[31m名称\x7f",
    "CON",
    "\t=1+1",
    "#REF!",
    "福" * 100,  # 300 bytes of UTF-8
]
PLAIN_FILES = re.compile(r"^(?![\s.])[^\x00-\x1f\x7f-\x9f/\\<>:\"|?*]+(?<![\s.])$")


# ---- names ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("35000001_福州闽江鞋业有限公司", "35000001_福州闽江鞋业有限公司"),
        ("350100_福州市职业技能鉴定指导中心_续期提醒_2026-11-25.xlsx", None),  # as it is
        ("a/b\\c", "a_b_c"),
        ("../../x", "____x"),
        ("..", "_"),
        (".", "_"),
        ("", "_"),
        ("a..b", "a_b"),
        (".hidden", "hidden"),
        ("名称\x00\x07\x1b\x7f\x85尾", "名称_____尾"),
        ("line\nbreak\ttab\r", "line_break_tab_"),
        ('<>:"|?*', "_______"),
        ("trailing dot.", "trailing dot"),
        ("trailing space ", "trailing space"),
        ("CON", "_CON"),
        ("con", "_con"),
        ("CON.txt", "_CON.txt"),
        ("nul.tar.gz", "_nul.tar.gz"),
        ("COM1", "_COM1"),
        ("LPT9.docx", "_LPT9.docx"),
        ("COM¹", "_COM¹"),
        ("COM10", "COM10"),
        ("CONSOLE", "CONSOLE"),
        ("AUX .txt", "_AUX .txt"),
    ],
)
def test_a_name_from_outside_becomes_one_safe_file_name(text, expected):
    name = safe_name(text)
    assert name == (text if expected is None else expected)
    assert PLAIN_FILES.match(name), name
    assert ".." not in name
    assert safe_name(name) == name  # safe names stay as they are


def test_a_long_name_is_cut_to_255_bytes_and_keeps_its_extension():
    text = "福" * 100 + ".xlsx"  # 305 bytes
    name = safe_name(text)
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert name.startswith("福" * 70)
    assert name.endswith(".xlsx")
    assert re.search(r"~[0-9a-f]{12}\.xlsx$", name)
    name.encode("utf-8").decode("utf-8")  # cut on a character boundary
    # 300 bytes of 4-byte characters, no extension
    assert len(safe_name("𠀀" * 75).encode("utf-8")) <= MAX_NAME_BYTES


def test_two_long_names_with_the_same_240_byte_prefix_get_different_names():
    prefix = "闽" * 80  # 240 bytes: all that is left of either name once cut
    first, second = safe_name(prefix + "甲职业培训学校"), safe_name(prefix + "乙职业培训学校")
    assert first != second
    assert first.startswith(prefix)
    assert second.startswith(prefix)
    assert re.fullmatch(r"~[0-9a-f]{12}", first.removeprefix(prefix))
    assert all(len(n.encode("utf-8")) <= MAX_NAME_BYTES for n in (first, second))
    assert safe_name(prefix + "甲职业培训学校") == first  # the same name, the same result


def test_export_paths_stay_inside_the_export_folder(tmp_path):
    path = export_path("350100_福州_申请材料", f"{BAD_ID}_名称", "附件1_..xlsx")
    assert path.count("/") == 2
    assert inside(tmp_path, path).resolve().is_relative_to(tmp_path.resolve())
    for escape in ("../x", "a/../../x", "/etc/passwd", "."):
        with pytest.raises(UnsafeExportPath, match="outside the export folder"):
            inside(tmp_path, escape)


# ---- cells, fields and runs ------------------------------------------------------------------------------


def hostile_reminder(name: str, n: int = 1) -> dict:
    """A reminder row (marts.reminders' columns the CSV and the workbook use) carrying hostile text."""
    return reminder_row(
        institution_id=f"3500000{n}",
        institution_name=name,
        institution_type_zh="用人单位",
        registration_no="=1+2",
        days_left=-3,
        contact_person="-2+3",
        contact_phone="+86 591 8888 0000",
        responsible_person="@admin",
        responsible_phone="\r=cmd",
        email=HYPERLINK,
    )


def csv_fields(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def assert_csv_is_inert(data: bytes) -> None:
    """No field a spreadsheet would run: each starting with a trigger is a number of ours (days_left)."""
    for row in csv_fields(data)[1:]:
        for field in row:
            if field.startswith(FORMULA_TRIGGERS):
                assert re.fullmatch(r"-\d+(\.\d+)?", field), field


def test_csv_fields_a_spreadsheet_would_run_get_a_leading_quote():
    rows = [hostile_reminder(name, n) for n, name in enumerate(HOSTILE_NAMES)]
    data = _csv_bytes(rows)
    assert_csv_is_inert(data)
    fields = csv_fields(data)
    header = fields[0]
    by_column = [dict(zip(header, row, strict=True)) for row in fields[1:]]
    names = [r["机构名称"] for r in by_column]
    assert names[:4] == ["'" + HYPERLINK, "'" + DDE, "'@SUM(1+1)", "'-2+3福州培训中心"]
    assert names[HOSTILE_NAMES.index("\t=1+1")] == "'\t=1+1"
    assert names[HOSTILE_NAMES.index("CON")] == "CON"  # nothing to neutralise
    first = by_column[0]
    assert first["联系人手机号码"] == "'+86 591 8888 0000"
    assert (first["评价业务联系人"], first["评价业务负责人"]) == ("'-2+3", "'@admin")
    assert first["负责人手机号码"] == "'\r=cmd"
    assert first["机构备案号"] == "'=1+2"
    assert first["剩余天数"] == "-3"  # a number of ours stays a number
    assert first["应提醒起始日期"] == "2026-11-01"
    # the phone columns are still quoted as a whole (their leading 0 survives a spreadsheet)
    assert '"\'+86 591 8888 0000"' in data.decode("utf-8-sig")


def test_a_line_break_inside_a_csv_field_cannot_start_a_row_of_its_own():
    forged = "福州培训中心\r\n=1+1"  # (no comma, which would have the field quoted anyway)
    row = hostile_reminder(forged) | {"contact_phone": "1380000\n0000", "email": "a@b.cn\r"}
    fields = csv_fields(_csv_bytes([row]))
    assert len(fields) == 2
    assert len(fields[1]) == len(fields[0])
    assert dict(zip(fields[0], fields[1], strict=True))["机构名称"] == forged
    assert dict(zip(fields[0], fields[1], strict=True))["联系人手机号码"] == "1380000\n0000"


def sheet_xml(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/sheet")}


def assert_no_formula(data: bytes) -> list:
    """No sheet of the workbook holds a formula, in its XML or as openpyxl reads it; returns every cell value."""
    for name, xml in sheet_xml(data).items():
        assert not re.search(r"<f[ >/]", xml), name
        assert 't="e"' not in xml, name
    values = []
    for ws in load_workbook(io.BytesIO(data)).worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type not in ("f", "e"), (ws.title, cell.coordinate, cell.value)
                values.append(cell.value)
    return values


def hostile_institution(name: str, can_apply_now: bool = True) -> Institution:
    plan = {
        "plan_no": "=PLAN()",
        "occupation_name": "@电工",
        "work_type": "-高压",
        "level_zh": "四级/中级工",
        "candidates": 20,
        "passed": 18,
        "certificates_online": True,
        "assessment_year": 2025,
        "assessment_date": dt.date(2025, 3, 1),
        "is_counting": True,
        "certificates_all_queryable": True,
    }
    return Institution(
        institution_id="35000001",
        name=name,
        institution_type="school",
        institution_type_zh="院校",
        registration_no="=1+2",
        address="@SUM(1+1)\x0b福州",
        registered_on=dt.date(2023, 3, 1),
        expires_on=dt.date(2026, 12, 31),
        responsible_person="-2+3",
        responsible_phone="+86 591 8888 0000",
        contact_person=DDE,
        contact_phone="=1+1",
        email=HYPERLINK,
        centre_name="福州市职业技能鉴定指导中心",
        batch_count=1,
        plans=[plan],
        by_occupation_level=[
            {
                "occupation_name": HYPERLINK,
                "work_type": None,
                "level_zh": "四级/中级工",
                "batches": 1,
                "candidates": 20,
                "passed": 18,
            }
        ],
        facts={"occupations_added": 1, "occupations_added_list": '{ HYPERLINK "http://x" }'},
        eligibility={
            "can_apply_now": can_apply_now,
            "expected_certificates": 18,
            "issued_certificates": 18,
            "queryable_certificates": 18,
            "certificates_all_queryable": True,
            "meets_batch_threshold": False,
            "conditions_zh": "不予受理",
            "renewal_verdict_zh": "不予受理",
            "lifecycle_stage_zh": "续期申请期",
            "reasons_zh": "=整改未完成",
            "message_institution_zh": "@请完成整改",
        },
    )


def test_workbook_cells_from_data_are_text_never_formulas():
    rows = [hostile_reminder(name, n) for n, name in enumerate(HOSTILE_NAMES)]
    workbook = centre_workbook(
        "350100", AS_OF, [], [], rows, centres={"350100": "福州市职业技能鉴定指导中心"}
    )
    values = assert_no_formula(workbook)
    assert HYPERLINK in values
    assert DDE in values
    assert "#REF!" in values
    assert "\t=1+1" in values
    assert "机构\ufffd\ufffd[31m名称\x7f" in values  # what XML cannot hold is shown as U+FFFD
    assert 6 in values  # numbers stay numbers
    assert dt.datetime(2026, 11, 1) in values  # dates stay dates

    form = annex1_xlsx(hostile_institution(HYPERLINK), AS_OF)
    values = assert_no_formula(form)
    assert {HYPERLINK, "=1+2", "=1+1", "=PLAN()", DDE, "@SUM(1+1)\ufffd福州"} <= set(values)
    assert 20 in values
    assert dt.datetime(2026, 12, 31) in values

    returned = {
        "source_file": "=cmd|' /C calc'!A0.csv",
        "sheet": None,
        "row_number": 2,
        "institution_id": HYPERLINK,
        "column_header": "机构编号",
        "reason_zh": "机构编号格式不正确",
        "expected_zh": "技能人才评价工作网上的机构编号，如 35000001",
        "cells": json.dumps({"申请编号": "=1+1", "机构编号": HYPERLINK + "\x01"}, ensure_ascii=False),
    }
    values = assert_no_formula(_xlsx_bytes([returned], "福建省职业技能鉴定指导中心", AS_OF))
    assert HYPERLINK in values
    assert "=cmd|' /C calc'!A0.csv" in values


@pytest.mark.parametrize("can_apply_now", [True, False], ids=["附件2", "告知"])
def test_documents_hold_data_as_plain_runs_only(can_apply_now):
    inst = hostile_institution(HYPERLINK + "\x0c" + DDE, can_apply_now)
    docx = annex2_docx(inst, AS_OF) if can_apply_now else cannot_apply_notice_docx(inst, AS_OF)
    with zipfile.ZipFile(io.BytesIO(docx)) as z:
        body = z.read("word/document.xml").decode()
        relations = z.read("word/_rels/document.xml.rels").decode()
    # no field code, no hyperlink, no external relation: a value is text in a w:t and nothing else
    for markup in ("w:fldSimple", "w:instrText", "w:fldChar", "w:hyperlink", "w:object", "w:dde"):
        assert markup not in body
    assert "External" not in relations
    texts = "".join(re.findall(r"<w:t(?: [^>]*)?>([^<]*)</w:t>", body))
    assert "=HYPERLINK(&quot;http://x&quot;,&quot;点此续期&quot;)" in texts or HYPERLINK in texts
    assert "\ufffd" + DDE in texts.replace("&amp;", "&")


# ---- institution_id at ingest ----------------------------------------------------------------------------


class PagesFeed(FeedClient):
    """A feed serving one page body, read by the client's own code."""

    def __init__(self, body: bytes) -> None:
        super().__init__("http://feed.invalid")
        self.body = body

    def request_json(self, method, target, what, body=None, parse=None):
        assert parse_qs(urlsplit(target).query).get("cursor", ["0"]) == ["0"]
        return self.body, parse(self.body)


MALFORMED_IDS = [
    BAD_ID,
    "=cmd|' /C calc'!A0",
    "a b",
    "-35000001",
    "_x",
    "35000001\n",
    "福州01",
    "x" * 65,
    "a/b",
]
WELL_FORMED_IDS = ["35000001", "A", "REV-OVERDUE", "x" * 64, "Y3500_01"]


def feed_item(resource: str, n: int, institution_id: str) -> dict:
    stamp = "2024-02-17T10:00:00+08:00"
    return {
        "institutions": {
            "institution_id": institution_id,
            "name": f"机构{n}",
            "institution_type": "school",
            "supervising_centre": "350100",
            "registered_on": "2023-01-01",
            "expires_on": "2026-12-31",
            "status": "active",
            "updated_at": stamp,
        },
        "registered-occupations": {
            "institution_id": institution_id,
            "occupation_code": f"6-31-01-{n:02d}",
            "registered_on": "2023-01-01",
            "updated_at": stamp,
        },
        "plans": {
            "plan_no": f"P{n}",
            "institution_id": institution_id,
            "occupation_code": "6-31-01-03",
            "level": 3,
            "assessment_date": "2024-01-01",
            "status": "completed",
            "updated_at": stamp,
        },
        "certificates": {
            "certificate_no": f"S17993500000124300{n:04d}",
            "plan_no": "P1",
            "institution_id": institution_id,
            "issued_on": "2024-02-17",
            "holder_name": "付怡浩",
            "holder_id_no": "350521196510134129",
            "updated_at": stamp,
        },
    }[resource]


@pytest.mark.parametrize("flat_reads", [True, False], ids=["flat", "json"])
@pytest.mark.parametrize("resource", list(FEED_RESOURCES))
def test_a_feed_record_with_a_malformed_institution_id_is_quarantined(tmp_path, resource, flat_reads):
    ids = WELL_FORMED_IDS + MALFORMED_IDS
    items = [feed_item(resource, n, iid) for n, iid in enumerate(ids)]
    con = connect(tmp_path / "w.duckdb")
    result = pull(
        con,
        PagesFeed(orjson.dumps({"items": items, "next_cursor": None})),
        resource,
        "L1",
        b"k",
        False,
        dt.timedelta(days=1),
        flat_reads,
    )
    table = FEED_RESOURCES[resource]
    landed = [r[0] for r in con.execute(f"SELECT institution_id FROM raw.{table}").fetchall()]
    quarantined = con.execute(
        "SELECT record->>'institution_id', field, reason FROM raw.quarantine WHERE source = 'feed' AND file = ?",
        [resource],
    ).fetchall()
    assert sorted(landed) == sorted(WELL_FORMED_IDS)
    assert result.quarantined == len(MALFORMED_IDS)
    assert sorted(q[0] for q in quarantined) == sorted(MALFORMED_IDS)
    for iid, field, reason in quarantined:
        assert field == "institution_id"
        assert reason == f"institution_id: does not match ^{INSTITUTION_ID_PATTERN}$, got '{iid[:40]}'"


def test_a_centre_row_naming_a_malformed_institution_id_is_quarantined_with_its_reason(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    con.execute(
        "INSERT INTO raw.institutions (load_id, page_no, institution_id) VALUES ('L1', 0, '35000001')"
    )
    folder = tmp_path / "centre_records"
    folder.mkdir()
    rows = [("XQ1", "35000001"), ("XQ2", BAD_ID), (DDE, HYPERLINK), ("XQ4", "35000002")]
    with open(folder / "renewal_applications.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(
            [
                "application_id",
                "institution_id",
                "received_on",
                "incentive_evidence",
                "force_majeure_statement",
            ]
        )
        writer.writerows([application_id, iid, "2026-09-01", "是", "否"] for application_id, iid in rows)
    result = load_centre_records(con, folder, "L1")
    assert result.loaded["renewal_applications"] == 1
    reasons = dict(
        con.execute("SELECT row_number, reason FROM raw.quarantine WHERE field = 'institution_id'").fetchall()
    )
    assert set(reasons) == {3, 4, 5}
    assert reasons[3].startswith("机构编号格式不正确：../../x")
    assert reasons[3].endswith(f"（{REASON}）")
    assert f"got '{HYPERLINK}'" in reasons[4]
    assert "不在技能人才评价工作网的机构名单中" in reasons[5]  # well-formed, but not in the feed


def test_the_documented_pattern_is_the_one_checked():
    root = Path(__file__).resolve().parent.parent
    for doc in ("README.md", "docs/trust_boundaries.md", "docs/centre_records.md"):
        assert f"^{INSTITUTION_ID_PATTERN}$" in (root / doc).read_text(encoding="utf-8"), doc


def test_every_institution_id_the_generator_makes_matches_the_pattern(dataset):
    pattern = re.compile(INSTITUTION_ID_PATTERN)
    for name in ("institutions", "registered_occupations", "plans"):
        for line in (dataset / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            assert pattern.fullmatch(json.loads(line)["institution_id"]), line


# ---- the whole run -----------------------------------------------------------------------------------------


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def hostile_copy(dataset: Path, folder: Path, renamed: list[str]) -> dict[str, int]:
    """The dataset with the institutions `renamed` given hostile names and contacts, and one more institution,
    id ../../x, with its occupations, plans, certificates and centre rows; returns how many records name it."""
    shutil.copytree(dataset, folder)
    institutions = _jsonl(folder / "institutions.jsonl")
    by_id = {r["institution_id"]: r for r in institutions}
    for iid, name in zip(renamed, HOSTILE_NAMES, strict=False):
        by_id[iid] |= {
            "name": name,
            "contact_person": "-2+3" if len(name) % 2 else "@admin",
            "contact_phone": "+86 591 8888 0000",
            "responsible_person": "\r=cmd",
            "email": HYPERLINK,
            "address": "@SUM(1+1)",
            "registration_no": "=1+2",
        }
    source = institutions[0]["institution_id"]
    institutions.append(by_id[source] | {"institution_id": BAD_ID, "name": HYPERLINK})
    _write_jsonl(folder / "institutions.jsonl", institutions)

    occupations = _jsonl(folder / "registered_occupations.jsonl")
    bad_occupations = [o | {"institution_id": BAD_ID} for o in occupations if o["institution_id"] == source]
    _write_jsonl(folder / "registered_occupations.jsonl", occupations + bad_occupations)

    plans = _jsonl(folder / "plans.jsonl")
    bad_plans = {
        p["plan_no"]: p | {"plan_no": f"PX-HOSTILE-{n}", "institution_id": BAD_ID}
        for n, p in enumerate(p for p in plans if p["institution_id"] == source)
    }
    _write_jsonl(folder / "plans.jsonl", plans + list(bad_plans.values()))

    bad_certificates = []
    with open(folder / "certificates.jsonl", encoding="utf-8") as fh:
        for line in fh:
            c = json.loads(line)
            if c["plan_no"] in bad_plans:
                n = len(bad_certificates)
                bad_certificates.append(
                    c
                    | {
                        "certificate_no": f"S99993599999924{c['level']}{n:06d}",
                        "plan_no": bad_plans[c["plan_no"]]["plan_no"],
                        "institution_id": BAD_ID,
                    }
                )
    with open(folder / "certificates.jsonl", "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in bad_certificates))

    applications = folder / "centre_records" / "renewal_applications.csv"
    with open(applications, "a", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["XQ-HOSTILE-1", BAD_ID, "2026-09-01", "true", "false", "", "", ""])
        writer.writerow([DDE, HYPERLINK, "2026-09-01", "true", "false", "", "", ""])
    return {
        "institutions": 1,
        "registered-occupations": len(bad_occupations),
        "plans": len(bad_plans),
        "certificates": len(bad_certificates),
    }


def verdicts(db: Path) -> dict[str, tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            """SELECT institution_id, lifecycle_stage, renewal_verdict, reasons, batch_count,
                      issued_certificates, queryable_certificates, can_apply_now
               FROM marts.renewal_eligibility"""
        ).fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


def files_below(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_hostile_values_run_through_the_pipeline_and_the_export(built, dataset, tmp_path_factory):
    from pipeline import steps

    # the institutions reminded today in the clean run, those that can apply now and those that cannot
    con = duckdb.connect(str(built.warehouse_db), read_only=True)
    reminded = con.execute(
        """SELECT DISTINCT r.institution_id, e.can_apply_now FROM marts.reminders r
           JOIN marts.renewal_eligibility e USING (institution_id)
           WHERE r.first_due_on <= ? ORDER BY e.can_apply_now DESC, r.institution_id""",
        [AS_OF],
    ).fetchall()
    con.close()
    packs = [iid for iid, can in reminded if can]
    notices = [iid for iid, can in reminded if not can]
    assert packs
    assert notices
    renamed = (packs[: len(HOSTILE_NAMES) - 2] + notices[:2])[: len(HOSTILE_NAMES)]

    root = tmp_path_factory.mktemp("hostile")
    injected = hostile_copy(dataset, root / "data", renamed)
    feed = RunningFeed(root / "data")
    try:
        settings = make_settings(root, root / "data", feed.url)
        run_pipeline_steps(settings)  # ingest, then dbt with its data tests
    finally:
        feed.stop()

    # the records naming ../../x are quarantined with their reason, and nothing of them landed
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    try:
        counted = dict(
            con.execute(
                "SELECT file, count(*) FROM raw.quarantine WHERE source = 'feed' AND reason = ? GROUP BY file",
                [REASON],
            ).fetchall()
        )
        centre = con.execute(
            "SELECT reason FROM raw.quarantine WHERE source = 'centre_records' AND field = 'institution_id' "
            "AND reason LIKE '%does not match%' ORDER BY row_number"
        ).fetchall()
        landed = con.execute(
            "SELECT count(*) FROM (SELECT institution_id FROM raw.institutions UNION ALL "
            "SELECT institution_id FROM raw.plans UNION ALL SELECT institution_id FROM raw.certificates UNION ALL "
            "SELECT institution_id FROM raw.registered_occupations) WHERE institution_id = ?",
            [BAD_ID],
        ).fetchone()[0]
    finally:
        con.close()
    assert counted == injected
    assert all(injected.values())
    assert [r[0].endswith(f"got '{v}'）") for r, v in zip(centre, (BAD_ID, HYPERLINK), strict=True)] == [
        True
    ] * 2
    assert landed == 0

    steps.quality_gate(AS_OF, settings=settings)  # raises GateFailed on any failed expectation
    steps.publish(AS_OF, settings=settings)
    before = files_below(root)
    steps.export(AS_OF, settings=settings)
    after = files_below(root)

    # nothing written outside EXPORTS but the warehouse's own files (ledger, form cache, run metrics)
    exports = settings.exports_dir.resolve()
    for path in after:
        if after[path] != before.get(path):
            resolved = path.resolve()
            assert resolved.is_relative_to(exports) or resolved.is_relative_to(
                settings.warehouse_dir.resolve()
            ), path
    written = sorted(p for p in (settings.exports_dir / AS_OF.isoformat()).rglob("*") if p.is_file())
    assert not any(p.name == "x" or p.name.startswith("x_") for p in after)
    for path in written:
        for part in path.relative_to(settings.exports_dir).parts:
            assert safe_name(part) == part
            assert PLAIN_FILES.match(part), part

    # every workbook: no formula; the hostile names are there, as text
    cell_values = set()
    for path in (p for p in written if p.suffix == ".xlsx"):
        cell_values |= {v for v in assert_no_formula(path.read_bytes()) if isinstance(v, str)}
    assert {HYPERLINK, DDE, "@SUM(1+1)", "#REF!", "\t=1+1", "=1+2"} <= cell_values
    assert any(v.startswith("机构\ufffd\ufffd[31m名称") for v in cell_values)
    assert BAD_ID in cell_values  # the centre row naming it, in the province's 退回清单
    # every CSV: each field a spreadsheet would run has its leading quote
    csv_values = set()
    for path in (p for p in written if p.suffix == ".csv"):
        assert_csv_is_inert(path.read_bytes())
        csv_values |= {f for row in csv_fields(path.read_bytes()) for f in row}
    assert {"'" + HYPERLINK, "'" + DDE, "'@SUM(1+1)", "'+86 591 8888 0000", "'=1+2"} <= csv_values
    # every document: plain runs
    for path in (p for p in written if p.suffix == ".docx"):
        with zipfile.ZipFile(path) as z:
            body = z.read("word/document.xml").decode()
        assert not re.search(r"w:fldSimple|w:instrText|w:fldChar|w:hyperlink", body), path

    # every other institution's verdict is the clean run's
    assert verdicts(settings.published_db) == verdicts(built.warehouse_db)
