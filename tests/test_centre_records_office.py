"""The centre's spreadsheets as Chinese offices save them load the same rows and marts as the clean
files; bad rows reach the quarantine and the centre's 退回清单, and nothing thrown at the reader crashes it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from ingest.centre_records import (
    KINDS,
    CentreFileError,
    header_aliases,
    header_key,
    load_centre_records,
    parse_date,
    parse_value,
)
from ingest.warehouse import connect
from tests.helpers import AS_OF, DBT_SKIP_TESTS, dbt_build, make_settings, require_system_tool

INSTITUTIONS = {"35000001": "350100", "35000002": "350200"}
FIELDS = {kind: {f.name: f for f in fields} for kind, (fields, _) in KINDS.items()}
CLEAN = [  # renewal_applications in the contract's clean form
    ["XQ1", "35000001", "2026-09-01", "true", "false", "6-31-01-03;4-07-05-01", "approved", "2026-10-10"],
    ["XQ2", "35000002", "2026-10-02", "false", "true", "", "", ""],
    ["XQ3", "35000001", "2026-11-20", "true", "false", "", "rejected", "2026-11-24"],
    ["XQ4", "35000002", "2026-01-31", "false", "false", "6-31-01-03", "", ""],
    ["XQ5", "35000001", "2026-12-31", "true", "true", "", "approved", "2027-01-05"],
]
HEADER = [f.name for f in KINDS["renewal_applications"][0]]
# the same columns as a centre heads them: documented Chinese headers and common variants
OFFICE_HEADER = [
    "申请编号",
    "机构代码",
    "收件日期",
    "是否提供激励制度佐证材料",
    "不可抗力书面说明",
    "申请续期职业编码",
    "评估结果",
    "评估完成日期",
]
TITLE = "福州市职业技能鉴定指导中心 备案续期申请登记表（2026年）"
NOTE = "填表人：王芳    审核人：李强    填表日期：2026年11月25日"
BOOLS = [("是", "否"), ("√", "×"), ("有", "无"), ("Y", "N"), ("1", "0"), ("TRUE", "FALSE")]
CODE_ZH = {"approved": "通过", "rejected": "不通过", "add": "新增", "change": "变更"}


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def office_value(kind: str, name: str, value: str, i: int, workbook: bool) -> object:
    """One clean value as an office writes it; the form varies with the row (i) so that every form occurs."""
    f = FIELDS[kind][name]
    if value == "":
        return ["", " ", "\u3000"][i % 3] if not workbook else None
    if f.kind == "date":
        d = dt.date.fromisoformat(value)
        forms = [
            f"{d.year}年{d.month}月{d.day}日",
            f"{d.year}.{d.month}.{d.day}",
            d.strftime("%Y/%m/%d"),
            d.strftime("%Y%m%d"),
            fullwidth(value),
            f" {d.year} 年 {d.month} 月 {d.day} 日 ",
        ]
        if workbook:
            forms += [dt.datetime.combine(d, dt.time()), (d - dt.date(1899, 12, 30)).days]
        return forms[i % len(forms)]
    if f.kind == "bool":
        return BOOLS[i % len(BOOLS)][0 if value == "true" else 1]
    if f.kind == "enum":
        return CODE_ZH[value] if i % 2 == 0 else value.upper()
    if f.kind == "codes":
        return "；".join(value.split(";")) if i % 2 else fullwidth(value.replace(";", ", "))
    return ["'" + value, f"\u3000{value} ", fullwidth(value), value][i % 4]


def office_rows(kind: str, header: list[str], rows: list[list[str]], workbook: bool) -> list[list[object]]:
    return [
        [office_value(kind, name, v, i, workbook) for name, v in zip(header, row, strict=False)]
        for i, row in enumerate(rows)
    ]


def write_text(path: Path, rows: list[list[object]], encoding: str, delimiter: str = ",") -> Path:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows(
        [["" if v is None else v for v in r] for r in rows]
    )
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_xlsx(
    path: Path,
    header: list[str],
    rows: list[list[object]],
    title: str | None = TITLE,
    note: str | None = NOTE,
    sheets_before: int = 1,
    sheet_title: str = "续期申请",
) -> Path:
    """As an office builds it: an instructions sheet first, then a merged title row, a blank row, the header,
    the data, a blank row and a note row (填表人…)."""
    wb = Workbook()
    first = wb.active
    if sheets_before:
        first.title = "填表说明"
        first.append(["请按表头填写，日期格式：2026年9月1日"])
    for n in range(sheets_before - 1):
        wb.create_sheet(f"说明{n + 2}").append(["(空)"])
    ws = wb.create_sheet(sheet_title) if sheets_before else first
    if title:
        ws.append([title])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(header))
        ws.append([])
    ws.append(header)
    for r in rows:
        ws.append(r)
    if note:
        ws.append([])
        ws.append([note])
    wb.save(path)
    return path


def to_xls(xlsx: Path, tmp_path: Path) -> Path:
    """Convert through LibreOffice, as an office's Excel 97-2003 file."""
    soffice = require_system_tool("soffice")
    subprocess.run(
        [
            soffice,
            "--headless",
            f"-env:UserInstallation=file://{tmp_path}/lo-profile",
            "--convert-to",
            "xls",
            "--outdir",
            str(xlsx.parent / "xls"),
            str(xlsx),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    converted = xlsx.parent / "xls" / f"{xlsx.stem}.xls"
    target = xlsx.with_suffix(".xls")
    shutil.move(converted, target)
    xlsx.unlink()
    return target


def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(tmp_path / "w.duckdb")
    for iid, centre in INSTITUTIONS.items():
        con.execute(
            "INSERT INTO raw.institutions (load_id, page_no, institution_id, supervising_centre) "
            "VALUES ('L0', 0, ?, ?)",
            [iid, centre],
        )
    return con


def loaded(con: duckdb.DuckDBPyConnection, kind: str = "renewal_applications") -> list[tuple]:
    return con.execute(
        f"SELECT * EXCLUDE (source_file, row_number, load_id) FROM raw.centre_{kind} ORDER BY ALL"
    ).fetchall()


def quarantine(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("""SELECT row_number, field, reason, record FROM raw.quarantine
                          WHERE source = 'centre_records' ORDER BY file, row_number""").fetchall()


@pytest.fixture
def clean_rows(tmp_path) -> list[tuple]:
    folder = tmp_path / "clean" / "centre_records"
    folder.mkdir(parents=True)
    write_text(folder / "renewal_applications.csv", [HEADER, *CLEAN], "utf-8")
    con = warehouse(tmp_path / "clean")
    result = load_centre_records(con, folder, "L1")
    assert result.loaded["renewal_applications"] == len(CLEAN)
    assert result.quarantined["renewal_applications"] == 0
    return loaded(con)


def _office_text(folder: Path, encoding: str, delimiter: str = ",", suffix: str = ".csv") -> Path:
    rows = [
        [TITLE],
        [],
        OFFICE_HEADER,
        *office_rows("renewal_applications", HEADER, CLEAN, False),
        [],
        [NOTE],
    ]
    return write_text(folder / f"renewal_applications{suffix}", rows, encoding, delimiter)


FORMS = {
    # form -> (writer, what the run summary says about the file)
    "utf-8 csv": (lambda folder, tmp: _office_text(folder, "utf-8"), "CSV, UTF-8"),
    "utf-8 bom csv": (lambda folder, tmp: _office_text(folder, "utf-8-sig"), "CSV, UTF-8 with BOM"),
    "gbk csv": (lambda folder, tmp: _office_text(folder, "gbk"), "CSV, GB18030/GBK"),
    "gb18030 csv": (lambda folder, tmp: _office_text(folder, "gb18030"), "CSV, GB18030/GBK"),
    # Excel's "Unicode 文本 (*.txt)": UTF-16 little-endian with BOM, tab-separated
    "utf-16 text": (
        lambda folder, tmp: _office_text(folder, "utf-16", "\t", ".txt"),
        "tab-separated text, UTF-16",
    ),
    "xlsx": (
        lambda folder, tmp: write_xlsx(
            folder / "renewal_applications.xlsx",
            OFFICE_HEADER,
            office_rows("renewal_applications", HEADER, CLEAN, True),
        ),
        "Excel workbook (.xlsx), sheet '续期申请'",
    ),
    "xls": (
        lambda folder, tmp: to_xls(
            write_xlsx(
                folder / "renewal_applications.xlsx",
                OFFICE_HEADER,
                office_rows("renewal_applications", HEADER, CLEAN, True),
            ),
            tmp,
        ),
        "Excel 97-2003 workbook (.xls), sheet '续期申请'",
    ),
}


@pytest.mark.parametrize("form", FORMS)
def test_office_forms_load_the_same_rows_as_the_clean_file(tmp_path, clean_rows, form):
    folder = tmp_path / "office" / "centre_records"
    folder.mkdir(parents=True)
    write, described = FORMS[form]
    path = write(folder, tmp_path)
    con = warehouse(tmp_path / "office")
    result = load_centre_records(con, folder, "L1")
    assert loaded(con) == clean_rows
    # the title row is skipped, the header found below it; the note row is quarantined, with its reason
    (read,) = result.files
    assert read.note == f"{path.name}: {described}, header row 3"
    assert result.quarantined["renewal_applications"] == 1
    ((row_number, field, reason, record),) = quarantine(con)
    assert row_number == 3 + len(CLEAN) + 2
    assert field == "application_id"
    assert "备注行" in reason
    assert "王芳" not in record
    assert "李强" not in record


def test_the_run_summary_records_each_files_encoding(tmp_path):
    from pipeline import steps

    data = tmp_path / "data"
    (data / "centre_records").mkdir(parents=True)
    _office_text(data / "centre_records", "gbk")
    settings = make_settings(tmp_path, data, "http://127.0.0.1:9")  # this step does not call the feed
    con = connect(settings.warehouse_db)
    con.execute(
        "INSERT INTO raw.institutions (load_id, page_no, institution_id) VALUES ('L0', 0, '35000001')"
    )
    con.close()
    summary = steps.load_centre(AS_OF, "L1", settings=settings)
    assert summary["files"] == ["renewal_applications.csv: CSV, GB18030/GBK, header row 3"]
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    notes = con.execute(
        "SELECT subject, value, note FROM raw.run_metrics WHERE metric = 'file_rows'"
    ).fetchall()
    note = "renewal_applications.csv: CSV, GB18030/GBK, header row 3"
    assert notes == [("renewal_applications", len(CLEAN) + 1, note)]


def test_the_sheet_whose_header_matches_is_taken(tmp_path, clean_rows):
    folder = tmp_path / "centre_records"
    folder.mkdir()
    wb = Workbook()
    wb.active.title = "封面"
    wb.active.append(["福州市 2026 年台账"])
    other = wb.create_sheet("整改通知")  # another kind's sheet comes first: not taken
    other.append(["整改通知编号", "机构编号", "下达日期"])
    other.append(["ZG1", "35000001", "2026-01-01"])
    ws = wb.create_sheet("续期申请")
    ws.append(HEADER)
    for row in CLEAN:
        ws.append(row)
    wb.save(folder / "renewal_applications.xlsx")
    con = warehouse(tmp_path)
    result = load_centre_records(con, folder, "L1")
    assert loaded(con) == clean_rows
    assert result.files[0].sheet == "续期申请"
    assert "sheet '续期申请'" in result.files[0].note


def test_gb18030_characters_outside_gbk_survive(tmp_path):
    folder = tmp_path / "centre_records"
    folder.mkdir()
    reason = "机构㐀𠀀自愿终止"  # CJK extension A and B: GB18030 only
    write_text(
        folder / "terminations.csv",
        [["机构备案号", "通知日期", "终止原因"], ["３５０００００１", "2026.3.1", reason]],
        "gb18030",
    )
    con = warehouse(tmp_path)
    load_centre_records(con, folder, "L1")
    assert loaded(con, "terminations") == [("35000001", dt.date(2026, 3, 1), reason)]


BAD = [
    # (row as written, field, reason in Chinese, centre it goes back to)
    (
        ["XQ6", "35000001", "2026年13月1日", "是", "否", "", "", ""],
        "received_on",
        "收到日期无法识别：2026年13月1日",
        "350100",
    ),
    (
        ["XQ7", "35999999", "2026-10-01", "是", "否", "", "", ""],
        "institution_id",
        "机构编号不在技能人才评价工作网的机构名单中：35999999",
        "350000",
    ),
    (
        ["XQ8", "35000002", "2026-10-01", "可能", "否", "", "", ""],
        "incentive_evidence",
        "是否提供激励制度佐证材料无法识别：可能",
        "350200",
    ),
    (
        ["XQ1", "35000001", "2026-10-01", "是", "否", "", "", ""],
        "application_id",
        "申请编号重复：XQ1",
        "350100",
    ),
    (["", "35000002", "2026-10-01", "是", "否", "", "", ""], "application_id", "申请编号缺失", "350200"),
    (
        ["XQ9", "35000002", "2026-10-01", "是", "否", "6-31", "", ""],
        "occupation_codes",
        "申请续期职业编码中的职业编码无法识别：6-31",
        "350200",
    ),
    (
        ["XQ10", "35000002", "2026-10-01", "是", "否", "", "待定", ""],
        "review_result",
        "评估结果无法识别：待定",
        "350200",
    ),
]


def _bad_file(folder: Path) -> Path:
    rows = [
        [TITLE],
        OFFICE_HEADER,
        *office_rows("renewal_applications", HEADER, CLEAN, False),
        *[b[0] for b in BAD],
        [NOTE],
    ]
    return write_text(folder / "renewal_applications.csv", rows, "gbk")


def test_bad_rows_are_quarantined_with_a_chinese_reason_and_the_rest_loads(tmp_path, clean_rows):
    folder = tmp_path / "centre_records"
    folder.mkdir()
    _bad_file(folder)
    con = warehouse(tmp_path)
    result = load_centre_records(con, folder, "L1")
    assert loaded(con) == clean_rows
    assert result.quarantined["renewal_applications"] == len(BAD) + 1
    rows = quarantine(con)
    first_bad = 2 + len(CLEAN) + 1  # title, header, the good rows
    assert [r[0] for r in rows] == [*range(first_bad, first_bad + len(BAD)), first_bad + len(BAD)]
    for (row_number, field, reason, record), (cells, want_field, want_reason, _) in zip(
        rows, BAD, strict=False
    ):
        record = json.loads(record)
        assert field == want_field, (row_number, reason)
        assert reason.startswith(want_reason), (row_number, reason)
        assert record["reason_zh"].startswith(want_reason)
        assert record["expected_zh"]
        assert record["institution_id"] == cells[1]  # as written: the centre can be found from it
        assert list(record["cells"].values())[:3] == cells[:3]
        assert list(record["cells"])[:3] == OFFICE_HEADER[:3]  # the file's own headers


def test_a_file_that_cannot_be_read_fails_with_a_message_naming_it(tmp_path):
    folder = tmp_path / "centre_records"
    folder.mkdir()
    path = folder / "renewal_applications.csv"
    con = warehouse(tmp_path)
    load_centre_records(con, _clean_folder(tmp_path), "L0")
    before = loaded(con)

    path.write_bytes("名称,地址\n某机构,福州\n".encode("gbk"))  # no recognisable header
    with pytest.raises(CentreFileError) as err:
        load_centre_records(con, folder, "L1")
    message = str(err.value)
    assert str(path) in message
    assert "application_id/申请编号" in message
    assert "['名称', '地址']" in message

    path.write_bytes(b"\x81\x30\xff\xfe\x00" * 5)  # no encoding decodes it
    with pytest.raises(CentreFileError, match="encodings tried: utf-8, gb18030"):
        load_centre_records(con, folder, "L1")

    path.unlink()
    (folder / "renewal_applications.et").write_bytes(b"WPS")  # a format the pipeline does not read
    with pytest.raises(CentreFileError, match=r"renewal_applications\.et.*\.xlsx or \.xls"):
        load_centre_records(con, folder, "L1")

    (folder / "renewal_applications.et").unlink()
    (folder / "renewal_applications.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(CentreFileError, match="cannot be opened"):
        load_centre_records(con, folder, "L1")
    assert loaded(con) == before  # nothing changed


def _clean_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "clean_records"
    folder.mkdir(exist_ok=True)
    write_text(folder / "renewal_applications.csv", [HEADER, *CLEAN], "utf-8")
    return folder


def test_values_in_office_forms():
    f = FIELDS["renewal_applications"]
    for text in [
        "2026年9月1日",
        "2026.9.1",
        "2026/09/01",
        "20260901",
        "２０２６－０９－０１",
        46266,
        "46266",
        dt.datetime(2026, 9, 1),
        " 2026 年 9 月 1 日 ",
        "2026-09-01 00:00:00",
    ]:
        assert parse_date(text) == dt.date(2026, 9, 1), text
    for bad in ["2026年13月1日", "20261301", "2026.2.30", "99999999", 1e12, "明天"]:
        with pytest.raises(ValueError, match="is not a date"):
            parse_date(bad)
    for word, value in [
        ("是", True),
        ("否", False),
        ("√", True),
        ("×", False),
        ("有", True),
        ("无", False),
        ("Y", True),
        ("n", False),
        ("1", True),
        ("0", False),
        ("１", True),
        (1.0, True),
        ("", False),
    ]:
        assert parse_value(f["incentive_evidence"], word, set()) is value, word
    assert parse_value(f["institution_id"], "'３５０００００１\u3000", {"35000001"}) == "35000001"
    assert parse_value(f["institution_id"], 35000001.0, {"35000001"}) == "35000001"
    assert parse_value(f["review_completed_on"], "/", set()) is None


def test_header_aliases_are_data_and_documented():
    from pipeline.settings import PROJECT_ROOT

    doc = (PROJECT_ROOT / "docs" / "centre_records.md").read_text()
    with (PROJECT_ROOT / "ingest" / "centre_header_aliases.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {"机构代码", "机构备案号", "收件日期"} <= {r["header"] for r in rows}
    for r in rows:
        assert f"`{r['header']}`" in doc, f"alias {r['header']} is not in docs/centre_records.md"
        kinds = KINDS if r["kind"] == "*" else [r["kind"]]
        for kind in kinds:
            if r["field"] in FIELDS[kind]:
                assert header_aliases()[kind][header_key(r["header"])] == r["field"]


# ---- fuzz: nothing thrown at the reader crashes it -------------------------------------------------------

CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(),
    st.datetimes(),
    st.text(max_size=12),
    st.sampled_from(
        [
            "2026年13月1日",
            "２０２６．１．１",
            "'35000001",
            "√",
            "×",
            "有",
            "无",
            "填表人：某某",
            "35000001",
            "35000002",
            "6－31－01－03",
            "通过",
            "\u3000",
            "申请编号",
            "20260230",
            "0",
            "=A1",
            "#N/A",
        ]
    ),
)
ROWS = st.lists(st.lists(CELLS, min_size=0, max_size=10), min_size=0, max_size=8)


def _check_every_row_accounted(con, result, data_rows: int) -> None:
    kind = "renewal_applications"
    assert result.loaded[kind] + result.quarantined[kind] == data_rows
    for _, field, reason, record in quarantine(con):
        record = json.loads(record)
        assert field
        assert reason
        assert record["reason_zh"]
        assert record["expected_zh"]


def _data_rows(rows: list[list[object]]) -> int:
    from ingest.centre_records import clean_text

    return sum(1 for r in rows if any(clean_text(c) for c in r))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS, encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]))
def test_fuzz_text_cells_load_or_are_quarantined(tmp_path_factory, rows, encoding):
    tmp = tmp_path_factory.mktemp("fuzz")
    folder = tmp / "centre_records"
    folder.mkdir()
    text_rows = [["" if c is None else str(c) for c in r] for r in rows]
    delimiter = "\t" if encoding == "utf-16" else ","
    write_text(folder / "renewal_applications.csv", [HEADER, *text_rows], encoding, delimiter)
    # what a reader sees: the rows as the csv module gives them back (a cell may hold a line break)
    text = (folder / "renewal_applications.csv").read_bytes().decode(encoding).replace("\x00", "")
    written = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))[1:]
    con = warehouse(tmp)
    result = load_centre_records(con, folder, "L1")
    _check_every_row_accounted(con, result, _data_rows(written))


@settings(max_examples=40, deadline=None)
@given(rows=ROWS)
def test_fuzz_workbook_cells_load_or_are_quarantined(tmp_path_factory, rows):
    tmp = tmp_path_factory.mktemp("fuzz")
    folder = tmp / "centre_records"
    folder.mkdir()
    rows = [[ILLEGAL_CHARACTERS_RE.sub("", c) if isinstance(c, str) else c for c in r] for r in rows]
    rows = [r for r in rows if any(c not in (None, "") for c in r)]  # openpyxl drops empty rows
    write_xlsx(folder / "renewal_applications.xlsx", HEADER, rows, title=None, note=None, sheets_before=0)
    con = warehouse(tmp)
    result = load_centre_records(con, folder, "L1")
    # the cells as a reader sees them: a formula that openpyxl wrote ('=0') has no cached value, so it is empty
    workbook = load_workbook(folder / "renewal_applications.xlsx", data_only=True)
    kept = list(workbook.active.iter_rows(values_only=True))[1:]
    _check_every_row_accounted(con, result, _data_rows([list(r) for r in kept]))


@settings(max_examples=80, deadline=None)
@given(
    data=st.binary(max_size=400),
    prefix=st.sampled_from(
        [
            b"",
            b"\xef\xbb\xbf",
            b"\xff\xfe",
            b"PK\x03\x04",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            b"application_id,institution_id,received_on\n",
        ]
    ),
    suffix=st.sampled_from([".csv", ".txt", ".xlsx", ".xls"]),
)
def test_fuzz_bytes_load_or_fail_with_a_message_naming_the_file(tmp_path_factory, data, prefix, suffix):
    tmp = tmp_path_factory.mktemp("fuzz")
    folder = tmp / "centre_records"
    folder.mkdir()
    path = folder / f"renewal_applications{suffix}"
    path.write_bytes(prefix + data)
    con = warehouse(tmp)
    try:
        result = load_centre_records(con, folder, "L1")
    except CentreFileError as exc:
        failure = str(exc)
    else:
        failure = None
    if failure is not None:
        assert str(path) in failure
        assert "Expected:" in failure
        assert "Found:" in failure
        return
    assert result.loaded["renewal_applications"] + result.quarantined["renewal_applications"] >= 0
    for _, _, reason, record in quarantine(con):
        assert reason
        assert json.loads(record)["reason_zh"]


# ---- the whole pipeline: the same marts, and each centre's 退回清单 ---------------------------------------


def _office_dataset(dataset: Path, out: Path, tmp_path: Path) -> dict[str, list[tuple[int, str]]]:
    """A copy of the generated dataset whose centre_records are in office forms, plus bad rows; returns the
    bad rows expected in each centre's 退回清单 as (row number, reason start)."""
    out.mkdir()
    for p in dataset.glob("*.jsonl"):
        (out / p.name).symlink_to(p)
    folder = out / "centre_records"
    folder.mkdir()
    institutions = [json.loads(line) for line in (dataset / "institutions.jsonl").read_text().splitlines()]
    city = next(i for i in institutions if i["supervising_centre"] not in ("350000",))

    def clean(kind: str) -> tuple[list[str], list[list[str]]]:
        with (dataset / "centre_records" / f"{kind}.csv").open(encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        return rows[0], rows[1:]

    expected: dict[str, list[tuple[int, str]]] = {}
    # renewal_applications: GBK CSV from Excel, alias headers, a title row, Chinese values, bad rows, a note row
    header, rows = clean("renewal_applications")
    zh = {"institution_id": "机构代码", "received_on": "收件日期"}
    office = [
        [TITLE],
        [zh.get(h, FIELDS["renewal_applications"][h].zh) for h in header],
        *office_rows("renewal_applications", header, rows, False),
    ]
    bad = [
        ["BAD1", city["institution_id"], "2026年13月1日", "是", "否", "", "", ""],
        ["BAD2", "35999999", "2026-10-01", "是", "否", "", "", ""],
    ]
    office += [[dict(zip(HEADER, b, strict=False))[h] for h in header] for b in bad] + [[NOTE]]
    write_text(folder / "renewal_applications.csv", office, "gbk")
    n = len(rows) + 2
    expected.setdefault(city["supervising_centre"], []).append((n + 1, "收到日期无法识别：2026年13月1日"))
    expected.setdefault("350000", []).extend(
        [(n + 2, "机构编号不在技能人才评价工作网的机构名单中：35999999"), (n + 3, "表格下方的备注行")]
    )
    # rectification_notices: .xlsx with an instructions sheet, a merged title row and a note row
    header, rows = clean("rectification_notices")
    write_xlsx(
        folder / "rectification_notices.xlsx",
        [FIELDS["rectification_notices"][h].zh for h in header],
        office_rows("rectification_notices", header, rows, True),
        sheet_title="整改",
    )
    expected["350000"].append((3 + len(rows) + 2, "表格下方的备注行"))
    # disciplinary_cases: Excel 97-2003 .xls (through LibreOffice), no title
    header, rows = clean("disciplinary_cases")
    to_xls(
        write_xlsx(
            folder / "disciplinary_cases.xlsx",
            [FIELDS["disciplinary_cases"][h].zh for h in header],
            office_rows("disciplinary_cases", header, rows, True),
            title=None,
            note=None,
        ),
        tmp_path,
    )
    # terminations: "Unicode 文本", UTF-16 tab-separated .txt
    header, rows = clean("terminations")
    write_text(
        folder / "terminations.txt",
        [
            ["机构备案号" if h == "institution_id" else FIELDS["terminations"][h].zh for h in header],
            *office_rows("terminations", header, rows, False),
        ],
        "utf-16",
        "\t",
    )
    # occupation_change_requests: GB18030, full-width digits and dates
    header, rows = clean("occupation_change_requests")
    write_text(
        folder / "occupation_change_requests.csv",
        [
            [FIELDS["occupation_change_requests"][h].zh for h in header],
            *[
                [fullwidth(v) if h != "change_type" else CODE_ZH[v] for h, v in zip(header, r, strict=False)]
                for r in rows
            ],
        ],
        "gb18030",
    )
    return expected


@pytest.mark.slow
def test_office_forms_give_the_same_marts_and_each_centre_its_return_list(tmp_path, dataset, feed, built):
    from pipeline import steps
    from pipeline.summary import summary_text
    from publish.marts import MARTS, publish_marts

    expected = _office_dataset(dataset, tmp_path / "office-data", tmp_path)
    settings = make_settings(tmp_path / "office", tmp_path / "office-data", feed.url)
    load_id = f"{AS_OF}-office"
    steps.extract_feed(AS_OF, load_id, settings=settings)
    steps.load_calendar(settings=settings)
    summary = steps.load_centre(AS_OF, load_id, settings=settings)
    assert sum(summary["quarantined"].values()) == sum(len(v) for v in expected.values())
    steps.verify_certificates(AS_OF, load_id, settings=settings)
    result = dbt_build(settings, AS_OF, *DBT_SKIP_TESTS)
    assert result.returncode == 0, result.stdout[-4000:]

    def marts(db: Path) -> dict[str, list[tuple]]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return {m: con.execute(f"SELECT * FROM marts.{m} ORDER BY ALL").fetchall() for m in MARTS}
        finally:
            con.close()

    office = marts(settings.warehouse_db)
    assert office["review_sla"]
    assert office["institution_flags"]
    assert office == marts(built.warehouse_db)

    publish_marts(settings.warehouse_db, settings.published_db)
    text = summary_text(settings.published_db, settings.exports_dir)
    assert "renewal_applications.csv: CSV, GB18030/GBK, header row 2" in text
    assert "terminations.txt: tab-separated text, UTF-16, header row 1" in text
    assert "disciplinary_cases.xls: Excel 97-2003 workbook (.xls), sheet '续期申请', header row 1" in text
    assert "rectification_notices.xlsx: Excel workbook (.xlsx), sheet '整改', header row 3" in text
    assert "退回清单" in text
    assert "350000 3" in text
    manifest = steps.export(AS_OF, settings=settings)
    folder = settings.exports_dir / AS_OF.isoformat()
    lists = sorted(folder.glob("*_退回清单_*.xlsx"))
    assert {p.name.split("_")[0] for p in lists} == set(expected)
    files = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
    assert all(p.name in files for p in lists)
    for path in lists:
        code = path.name.split("_")[0]
        sheet = load_workbook(path).active
        header = [c.value for c in sheet[2]]
        body = [dict(zip(header, (c.value for c in row), strict=False)) for row in sheet.iter_rows(min_row=3)]
        got = sorted((r["行号"], r["退回原因"]) for r in body)
        want = sorted(expected[code])
        assert [g[0] for g in got] == [w[0] for w in want], path.name
        assert all(g[1].startswith(w[1]) for g, w in zip(got, want, strict=False)), got
        assert all(r["原行内容"] and r["填写要求（正确示例）"] and r["文件"] for r in body)
        assert not any("王芳" in str(v) for r in body for v in r.values())
        assert all(r["出错列"] == "（整行）" for r in body if r["退回原因"].startswith("表格下方的备注行"))
    assert manifest["reminders"] >= 0
