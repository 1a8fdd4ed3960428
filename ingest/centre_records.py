"""Read the provincial centre's own spreadsheets (docs/contract.md §3 `centre_records/`, in every form
docs/centre_records.md lists): bad rows go to `raw.quarantine`; a file that cannot be read raises
CentreFileError before any table changes."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import io
import json
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ingest.warehouse import INSTITUTION_ID_PATTERN

log = logging.getLogger(__name__)

EXCEL_EPOCH = dt.date(1899, 12, 30)
OCCUPATION_CODE = re.compile(r"^\d-\d{2}-\d{2}-\d{2}$")
INSTITUTION_ID = re.compile(INSTITUTION_ID_PATTERN)  # fullmatch: `$` would let a trailing newline through
TRUE_WORDS = {"true", "是", "1", "yes", "y", "t", "√", "✓", "✔", "有", "已提供", "提供"}
FALSE_WORDS = {"false", "否", "0", "no", "n", "f", "", "×", "✗", "✘", "x", "无", "未提供", "没有"}
# what offices write in an optional cell that has no value
EMPTY_MARKS = {"/", "-", "—", "--", "无", "暂无", "空", "null", "none", "n/a"}
# a row whose first filled cell starts with one of these is a note below the table, not a record
NOTE_PREFIXES = (
    "填表人",
    "填报人",
    "制表人",
    "审核人",
    "审核:",
    "负责人",
    "经办人",
    "联系人",
    "联系电话",
    "填表日期",
    "制表日期",
    "填报日期",
    "备注",
    "注:",
    "说明",
    "合计",
    "总计",
    "小计",
    "单位(盖章)",
    "单位盖章",
    "(盖章)",
)
HEADER_SEARCH_ROWS = 10
TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
ALIASES_FILE = Path(__file__).with_name("centre_header_aliases.csv")
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 (.xls)
DELIMITERS = {",": "CSV", "\t": "tab-separated text", ";": "semicolon-separated text"}
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text | institution | date | bool | enum | codes
    required: bool = True
    values: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # the documented Chinese header first

    @property
    def zh(self) -> str:
        return self.aliases[0]


def F(name: str, kind: str, zh: str, required: bool = True, values: tuple[str, ...] = ()) -> Field:
    return Field(name, kind, required, values, (zh,))


INSTITUTION = F("institution_id", "institution", "机构编号")
KINDS: dict[str, tuple[tuple[Field, ...], tuple[str, ...]]] = {
    # kind -> (fields, key fields)
    "renewal_applications": (
        (
            F("application_id", "text", "申请编号"),
            INSTITUTION,
            F("received_on", "date", "收到日期"),
            F("incentive_evidence", "bool", "是否提供激励制度佐证材料"),
            F("force_majeure_statement", "bool", "是否提供不可抗力书面说明"),
            F("occupation_codes", "codes", "申请续期职业编码", required=False),
            F("review_result", "enum", "评估结果", required=False, values=("approved", "rejected")),
            F("review_completed_on", "date", "评估完成日期", required=False),
        ),
        ("application_id",),
    ),
    "rectification_notices": (
        (
            F("notice_id", "text", "整改通知编号"),
            INSTITUTION,
            F("issued_on", "date", "下达日期"),
            F("due_on", "date", "整改期限", required=False),
            F("completed_on", "date", "整改完成日期", required=False),
        ),
        ("notice_id",),
    ),
    "disciplinary_cases": (
        (
            F("case_id", "text", "案件编号"),
            INSTITUTION,
            F("opened_on", "date", "立案日期"),
            F("article", "text", "适用条款", required=False),
            F("terminates_registration", "bool", "是否终结备案"),
            F("closed_on", "date", "结案日期", required=False),
        ),
        ("case_id",),
    ),
    "terminations": (
        (
            INSTITUTION,
            F("notified_on", "date", "通知日期"),
            F("reason", "text", "终止原因", required=False),
        ),
        ("institution_id", "notified_on"),
    ),
    "occupation_change_requests": (
        (
            F("request_id", "text", "变更申请编号"),
            INSTITUTION,
            F("received_on", "date", "收到日期"),
            F("change_type", "enum", "变更类型", values=("add", "change")),
            F("occupation_code", "text", "职业编码"),
        ),
        ("request_id",),
    ),
}
# Chinese spellings accepted for code values.
VALUE_ALIASES = {
    "通过": "approved",
    "同意": "approved",
    "不通过": "rejected",
    "不同意": "rejected",
    "新增": "add",
    "变更": "change",
}
# each code as the 退回清单 writes it: its first spelling above
VALUES_ZH = {code: zh for zh, code in reversed(VALUE_ALIASES.items())}
SQL_TYPES = {
    "text": "VARCHAR",
    "institution": "VARCHAR",
    "date": "DATE",
    "bool": "BOOLEAN",
    "enum": "VARCHAR",
    "codes": "VARCHAR",
}


class CentreFileError(ValueError):
    """A centre file that cannot be read at all: the run stops before anything is published."""

    def __init__(self, path: Path, problem: str, expected: str, found: str) -> None:
        super().__init__(
            f"centre records file {path}: {problem}. Expected: {expected}. Found: {found}. "
            "Nothing was loaded or published; fix or replace the file and rerun."
        )
        self.path = path


class RowError(ValueError):
    """Why one row cannot load: the field, the reason in Chinese and English, and what a valid value is."""

    def __init__(
        self, field: str, reason: str, reason_zh: str = "", expected_zh: str = "", whole_row: bool = False
    ) -> None:
        super().__init__(reason)
        self.field = field
        self.whole_row = whole_row  # a note or repeated header: no one column is at fault
        self.reason_zh = reason_zh or reason
        self.expected_zh = expected_zh

    @property
    def stored(self) -> str:
        """The reason as kept in raw.quarantine: Chinese for the centre, English for the data team."""
        return f"{self.reason_zh}（{self}）" if self.reason_zh != str(self) else str(self)


# ---- values ----------------------------------------------------------------------------------------------


def clean_text(value: object) -> str:
    """A cell as text, the way a person reads it: NFKC (full-width digits, spaces and punctuation become
    ASCII), invisible characters removed, stray spaces and Excel's leading apostrophe (forced text) dropped."""
    if value is None:
        return ""
    if type(value) is str and value.isascii():  # the common case: NFKC leaves ASCII as it is
        text = value.strip()
        return text[1:].strip() if text.startswith("'") else text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)  # a number typed into a cell: 35000001.0 is 35000001
    if isinstance(value, dt.datetime):
        value = value.date() if value.time() == dt.time() else value
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    text = unicodedata.normalize("NFKC", str(value)).translate(INVISIBLE).strip()
    return text[1:].strip() if text.startswith("'") else text


def _expected_date() -> str:
    return "日期，如 2026-09-01、2026/9/1、2026年9月1日 或 Excel 日期单元格"


def parse_date(value: object) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _serial(float(value))
        text = re.sub(r"\s+", "", clean_text(value))
        if re.fullmatch(r"\d{4,5}(\.\d+)?", text) and not re.fullmatch(r"\d{4}", text):
            return _serial(float(text))  # Excel serial saved as text
        text = re.sub(r"(T|\s)?\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", "", text)  # a midnight time after the date
        m = (
            re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", text)
            or re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日?", text)
            or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)
        )
        if not m:
            raise ValueError("no date form")
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except (ValueError, OverflowError):
        raise ValueError(
            f"'{clean_text(value)}' is not a date (YYYY-MM-DD, YYYY/M/D, YYYY年M月D日, YYYYMMDD or "
            "an Excel serial)"
        ) from None


def _serial(serial: float) -> dt.date:
    if not 1 <= serial < 2958466:  # Excel's own range, 1900-01-01 to 9999-12-31
        raise ValueError("outside Excel's date range")
    return EXCEL_EPOCH + dt.timedelta(days=int(serial))


def parse_value(f: Field, value: object, institutions: set[str]) -> object:
    """One cell as its field's type; RowError (the reason in Chinese and English) when it is not one."""
    if f.kind == "date" and isinstance(value, dt.date | int | float) and not isinstance(value, bool):
        try:
            return parse_date(value)  # a date cell, or a number that is an Excel serial
        except ValueError as exc:
            raise RowError(
                f.name, f"{f.name}: {exc}", f"{f.zh}无法识别：{clean_text(value)}", _expected(f)
            ) from None
    text = clean_text(value)
    if f.kind != "bool" and not f.required and text.lower() in EMPTY_MARKS:
        text = ""
    if text == "" and f.required and f.kind != "bool":
        raise RowError(f.name, f"{f.name} is missing", f"{f.zh}缺失", _expected(f))
    parse_text = TEXT_PARSERS.get(f.kind)
    return parse_text(f, text, institutions) if parse_text else (text or None)


def _unrecognised(f: Field, reason: str, text: str) -> RowError:
    return RowError(f.name, reason, f"{f.zh}无法识别：{text}", _expected(f))


def _date_text(f: Field, text: str, _institutions: set[str]) -> dt.date | None:
    try:
        return parse_date(text)
    except ValueError as exc:
        raise _unrecognised(f, f"{f.name}: {exc}", text) from None


def _bool_text(f: Field, text: str, _institutions: set[str]) -> bool:
    word = str(text).lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _unrecognised(f, f"{f.name}: '{text}' is not a boolean (true/false or 是/否)", text)


def _enum_text(f: Field, text: str, _institutions: set[str]) -> str | None:
    word = VALUE_ALIASES.get(str(text), str(text).lower())
    if word == "":
        return None
    if word not in f.values:
        raise _unrecognised(f, f"{f.name}: '{text}' is not one of {', '.join(f.values)}", text)
    return word


def _codes_text(f: Field, text: str, _institutions: set[str]) -> str | None:
    codes = [c.strip() for c in re.split(r"[;,、\s]+", str(text)) if c.strip()]
    bad = [c for c in codes if not OCCUPATION_CODE.match(c)]
    if bad:
        raise RowError(
            f.name,
            f"{f.name}: '{bad[0]}' is not an occupation code like 6-31-01-03",
            f"{f.zh}中的职业编码无法识别：{bad[0]}",
            _expected(f),
        )
    return ";".join(codes) or None


def _institution_text(f: Field, text: str, institutions: set[str]) -> str:
    if not INSTITUTION_ID.fullmatch(text):  # as at the feed's landing (warehouse.INSTITUTION_ID_PATTERN)
        raise RowError(
            f.name,
            f"institution_id: does not match ^{INSTITUTION_ID_PATTERN}$, got '{text[:40]}'",
            f"{f.zh}格式不正确：{text}（机构编号只由字母、数字、“-”和“_”组成，以字母或数字开头，不超过64位）",
            _expected(f),
        )
    if text not in institutions:
        raise RowError(
            f.name,
            f"institution_id '{text}' is not an institution in the feed",
            f"{f.zh}不在技能人才评价工作网的机构名单中：{text}",
            _expected(f),
        )
    return text


# a cell's cleaned text as its field's type, by Field.kind (other kinds stay text)
TEXT_PARSERS = {
    "date": _date_text,
    "bool": _bool_text,
    "enum": _enum_text,
    "codes": _codes_text,
    "institution": _institution_text,
}


def _expected(f: Field) -> str:
    if f.kind == "date":
        return _expected_date()
    if f.kind == "bool":
        return "是 或 否（也可填 √/×、有/无、Y/N、1/0、true/false）"
    if f.kind == "enum":
        options = "、".join(VALUES_ZH.get(v, v) for v in f.values)
        return f"{options}（或 {'/'.join(f.values)}）" + ("；未完成的留空" if not f.required else "")
    if f.kind == "codes":
        return "职业编码，如 6-31-01-03；多个用分号隔开；留空表示全部职业"
    if f.kind == "institution":
        return "技能人才评价工作网上的机构编号，如 35000001"
    return f"填写{f.zh}，不能为空" if f.required else f"{f.zh}（可留空）"


# ---- headers ---------------------------------------------------------------------------------------------


def header_key(cell: object) -> str:
    """How a header cell is compared: NFKC, lower case, no spaces, no required-marks (*)."""
    return re.sub(r"[\s*:]+", "", clean_text(cell)).lower()


@functools.cache
def header_aliases() -> dict[str, dict[str, str]]:
    """kind -> {header key -> field}: the English and documented Chinese headers, and the variants in
    centre_header_aliases.csv (kind `*` applies to every kind with that field)."""
    with ALIASES_FILE.open(encoding="utf-8", newline="") as fh:
        extra = list(csv.DictReader(fh))
    result: dict[str, dict[str, str]] = {}
    for kind, (fields, _) in KINDS.items():
        names = {f.name for f in fields}
        aliases: dict[str, str] = {}
        pairs = [(f.name, h) for f in fields for h in (f.name, *f.aliases)]
        pairs += [
            (r["field"], r["header"]) for r in extra if r["kind"] in (kind, "*") and r["field"] in names
        ]
        for name, header in pairs:
            key = header_key(header)
            if aliases.setdefault(key, name) != name:
                raise ValueError(
                    f"{ALIASES_FILE}: header '{header}' would mean both {aliases[key]} and {name} in {kind}"
                )
        result[kind] = aliases
    return result


def match_header(kind: str, cells: list[object]) -> dict[str, int]:
    """field -> column index, for the cells of one row taken as a header (first match of a field wins)."""
    aliases = header_aliases()[kind]
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        key = header_key(cell)
        name = aliases.get(key) or aliases.get(re.sub(r"\(.*\)$", "", key))  # 收到日期(YYYY-MM-DD)
        if name and name not in found:
            found[name] = i
    return found


def _complete(kind: str, found: dict[str, int]) -> bool:
    fields, _ = KINDS[kind]
    return all(f.name in found for f in fields if f.required and f.kind != "bool")


# ---- files -----------------------------------------------------------------------------------------------


@dataclass
class Table:
    """One sheet (or the whole text file) as cells; rows[i] is spreadsheet row i + 1."""

    rows: list[list[object]]
    sheet: str | None = None
    delimiter: str | None = None  # text files: the delimiter that gave these rows


@dataclass
class FileRead:
    """What was read from one file: for the run summary and the log."""

    path: Path
    form: str  # e.g. "CSV, GB18030", "Excel 97-2003 (.xls)"
    sheet: str | None
    header_row: int
    rows: int = 0

    @property
    def note(self) -> str:
        sheet = f", sheet '{self.sheet}'" if self.sheet is not None else ""
        return f"{self.path.name}: {self.form}{sheet}, header row {self.header_row}"


def decode_text(path: Path, data: bytes) -> tuple[str, str]:
    """(text, encoding): a BOM decides (UTF-8, UTF-16); else strict UTF-8; else GB18030 (a superset of GBK,
    what Excel's "CSV (逗号分隔)" writes on Chinese Windows)."""
    if data.startswith(b"\xef\xbb\xbf"):
        tries = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        tries = ["utf-16"]
    else:
        tries = ["utf-8", "gb18030"]
    for encoding in tries:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if text.count("\x00") * 10 > len(text):  # binary content, or UTF-16 without its BOM
            continue
        return text.replace("\x00", ""), {
            "utf-8-sig": "UTF-8 with BOM",
            "utf-16": "UTF-16",
            "utf-8": "UTF-8",
            "gb18030": "GB18030/GBK",
        }[encoding]
    raise CentreFileError(
        path,
        "the text cannot be decoded",
        "a CSV or tab-separated text file in UTF-8 (with or "
        "without BOM), UTF-16 with BOM or GBK/GB18030, or an .xlsx/.xls workbook",
        f"bytes {data[:16]!r}…; encodings tried: {', '.join(tries)}",
    )


def read_text_tables(path: Path, data: bytes) -> tuple[list[Table], str]:
    text, encoding = decode_text(path, data)
    if text.lstrip()[:1] == "<":
        raise CentreFileError(
            path,
            "this is a web page (HTML/XML), not a spreadsheet",
            "a CSV file or an .xlsx/.xls workbook (in Excel: 另存为 → Excel 工作簿)",
            f"text starting {text.lstrip()[:40]!r}",
        )
    tables = []
    # the delimiter is whichever gives a header: "Unicode 文本" is tab-separated, "CSV" comma-separated; only
    # those that occur in the first lines are tried
    head = "\n".join(text.splitlines()[:HEADER_SEARCH_ROWS])
    for delimiter in [d for d in DELIMITERS if d in head] or [","]:
        try:
            rows: list[list[object]] = [
                list(row) for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            ]
        except csv.Error as exc:
            raise CentreFileError(
                path,
                f"the text is not valid CSV ({exc})",
                "a CSV or tab-separated text file",
                f"text decoded as {encoding}",
            ) from None
        tables.append(Table(rows, None, delimiter))
    return tables, encoding


def read_xlsx_tables(path: Path) -> list[Table]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise CentreFileError(
            path,
            f"the workbook cannot be opened ({type(exc).__name__}: {exc})",
            "an .xlsx workbook saved by Excel or WPS",
            "a damaged or password-protected file",
        ) from None
    try:
        return [
            Table([list(r) for r in ws.iter_rows(values_only=True)], ws.title)
            for ws in wb.worksheets
            if hasattr(ws, "iter_rows")
        ]
    except Exception as exc:
        raise CentreFileError(
            path,
            f"a sheet cannot be read ({type(exc).__name__}: {exc})",
            "an .xlsx workbook saved by Excel or WPS",
            "a damaged workbook",
        ) from None
    finally:
        wb.close()


def read_xls_tables(path: Path) -> list[Table]:
    import xlrd

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except Exception as exc:
        raise CentreFileError(
            path,
            f"the workbook cannot be opened ({type(exc).__name__}: {exc})",
            "an Excel 97-2003 .xls workbook",
            "a damaged or password-protected file",
        ) from None
    tables = []
    try:
        for sheet in book.sheets():
            rows = []
            for r in range(sheet.nrows):
                cells: list[object] = []
                for c in range(sheet.ncols):
                    cell = sheet.cell(r, c)
                    value: object = cell.value
                    if cell.ctype == xlrd.XL_CELL_DATE:
                        # a bad serial is kept as it is: the date check says why it is not a date
                        with contextlib.suppress(ValueError, OverflowError, xlrd.xldate.XLDateError):
                            value = xlrd.xldate_as_datetime(cell.value, book.datemode)
                    elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                        value = None
                    elif cell.ctype == xlrd.XL_CELL_BOOLEAN:
                        value = bool(cell.value)
                    elif cell.ctype == xlrd.XL_CELL_ERROR:
                        value = xlrd.error_text_from_code.get(cell.value, "#ERR")
                    cells.append(value)
                rows.append(cells)
            tables.append(Table(rows, sheet.name))
    finally:
        book.release_resources()
    return tables


def read_tables(path: Path) -> tuple[list[Table], str]:
    """Every sheet of a file as cells, and its form; the content decides the format, not the file name
    (offices rename workbooks to .csv and save text as .xls)."""
    data = path.read_bytes()
    if data.startswith(ZIP_MAGIC):
        return read_xlsx_tables(path), "Excel workbook (.xlsx)"
    if data.startswith(OLE2_MAGIC):
        return read_xls_tables(path), "Excel 97-2003 workbook (.xls)"
    return read_text_tables(path, data)


def _shown(cells: Iterable[object], limit: int = 12) -> str:
    shown = [clean_text(c) for c in cells]
    while shown and shown[-1] == "":
        shown.pop()
    return "[" + ", ".join(repr(c) for c in shown[:limit]) + (", …]" if len(shown) > limit else "]")


def find_header(kind: str, path: Path, tables: list[Table]) -> tuple[Table, int, dict[str, int]]:
    """The sheet and header row (0-based) whose cells name the kind's columns best, among the first
    HEADER_SEARCH_ROWS rows of each sheet; a title row, merged cells or blank rows above it are skipped."""
    best: tuple[int, int, int] | None = None  # (-score, table index, row index)
    matches: dict[tuple[int, int], dict[str, int]] = {}
    for t, table in enumerate(tables):
        for r, row in enumerate(table.rows[:HEADER_SEARCH_ROWS]):
            found = match_header(kind, row)
            if _complete(kind, found):
                matches[t, r] = found
                candidate = (-len(found), t, r)
                best = candidate if best is None or candidate < best else best
    if best is None:
        fields, _ = KINDS[kind]
        expected = ", ".join(f"{f.name}/{f.zh}" for f in fields if f.required and f.kind != "bool")
        seen = []
        for table in tables[:5]:
            first = next(
                (row for row in table.rows[:HEADER_SEARCH_ROWS] if any(clean_text(c) for c in row)), []
            )
            seen.append(
                (f"sheet '{table.sheet}' " if table.sheet is not None else "") + f"first row {_shown(first)}"
            )
        if len(set(seen)) == 1:
            seen = seen[:1]  # the text file parsed with each delimiter: say it once
        raise CentreFileError(
            path,
            f"no header row for {kind} in its first {HEADER_SEARCH_ROWS} rows",
            f"a header naming at least {expected} (docs/centre_records.md lists the accepted headers)",
            "; ".join(seen) or "an empty file",
        )
    _, t, r = best
    return tables[t], r, matches[t, r]


# ---- rows ------------------------------------------------------------------------------------------------


def _column_names(header: list[object]) -> list[str]:
    from openpyxl.utils import get_column_letter

    names = []
    for i, cell in enumerate(header):
        name = clean_text(cell) or f"列{get_column_letter(i + 1)}"
        names.append(name if name not in names else f"{name}({get_column_letter(i + 1)})")
    return names


def _is_note(texts: list[str]) -> bool:
    first = next((t for t in texts if t), "")
    return re.sub(r"\s+", "", first).startswith(NOTE_PREFIXES)


def _masked_note(cells: list[object]) -> str:
    """A note row as written, minus what follows each label (填表人：*** …): it may name staff."""
    text = " ".join(clean_text(c) for c in cells if clean_text(c))
    return re.sub(r"([:：])\s*[^\s:：]+", r"\1***", text)


@dataclass
class CentreLoad:
    loaded: dict[str, int]
    quarantined: dict[str, int]
    files: list[FileRead] = field(default_factory=list)


def kind_files(folder: Path, kind: str) -> list[Path]:
    """The files of one kind: `<kind>.<ext>` whatever the case of the extension; an extension that is not a
    spreadsheet (e.g. WPS's .et, .numbers, .pdf) fails the run rather than being silently skipped."""
    if not folder.is_dir():
        return []
    paths = sorted(
        p for p in folder.iterdir() if p.is_file() and p.stem == kind and not p.name.startswith(".")
    )
    for p in paths:
        if p.suffix.lower() not in TEXT_SUFFIXES | WORKBOOK_SUFFIXES:
            raise CentreFileError(
                p,
                f"'{p.suffix}' is not a format the pipeline reads",
                f"{kind}.csv, .txt (UTF-8, UTF-16 or GBK text), .xlsx or .xls",
                f"a file named {p.name}",
            )
    return paths


def read_kind(
    kind: str,
    path: Path,
    institutions: set[str],
    seen: dict[tuple, tuple[str, int]],
    good: list[dict],
    bad: list[dict],
) -> FileRead:
    """Read one file of a kind, adding its rows to `good` (typed) or `bad` (quarantine rows)."""
    fields, key = KINDS[kind]
    tables, form = read_tables(path)
    table, header_index, columns = find_header(kind, path, tables)
    names = _column_names(table.rows[header_index])
    header_fields = set(columns)
    aliases = header_aliases()[kind]
    if table.delimiter is not None:
        form = f"{DELIMITERS[table.delimiter]}, {form}"
    read = FileRead(path, form, table.sheet, header_index + 1)
    for index in range(header_index + 1, len(table.rows)):
        cells = table.rows[index]
        n = index + 1  # the row number as Excel (or a text editor) shows it
        texts = [clean_text(c) for c in cells]
        if not any(texts):
            continue
        read.rows += 1
        written = {
            names[i] if i < len(names) else f"列{i + 1}": t
            for i, t in enumerate(texts)
            if t or i < len(names)
        }
        raw = {name: (cells[i] if i < len(cells) else None) for name, i in columns.items()}
        institution = _cell_text(texts, columns, "institution_id") or None
        first = _cell_text(texts, columns, key[0])
        try:
            if _is_note(texts):
                written = {"备注行": _masked_note(cells)}
                raise _note_row(fields)
            if header_key(first) in aliases and set(match_header(kind, cells)) == header_fields:
                raise _repeated_header(fields)
            parsed = {f.name: parse_value(f, raw.get(f.name), institutions) for f in fields}
            k = tuple(parsed[name] for name in key)
            if k in seen:
                raise _duplicate_key(kind, k, *seen[k])
            seen[k] = (path.name, n)
        except RowError as exc:
            bad.append(_quarantine_row(kind, path, table.sheet, n, exc, written, institution, columns, names))
            continue
        except Exception as exc:
            err = _unreadable_row(fields, exc)
            bad.append(_quarantine_row(kind, path, table.sheet, n, err, written, institution, columns, names))
            continue
        parsed |= {"source_file": path.name, "row_number": n}
        good.append(parsed)
    return read


def _cell_text(texts: list[str], columns: dict[str, int], name: str) -> str:
    """The text of a column in this row ('' when the column is missing or the row is shorter)."""
    return texts[columns[name]] if columns.get(name, len(texts)) < len(texts) else ""


def _note_row(fields: tuple[Field, ...]) -> RowError:
    return RowError(
        fields[0].name,
        "a note row below the table (填表人…), not a record",
        "表格下方的备注行（如填表人、审核人），不是数据行",
        "删除此行，数据区只保留数据行",
        whole_row=True,
    )


def _repeated_header(fields: tuple[Field, ...]) -> RowError:
    return RowError(
        fields[0].name,
        "the header row repeated inside the data",
        "表头行重复出现",
        "删除此行，表头只保留一行",
        whole_row=True,
    )


def _duplicate_key(kind: str, k: tuple, first_file: str, first_row: int) -> RowError:
    key = KINDS[kind][1]
    key_zh = "、".join(_zh(kind, name) for name in key)
    return RowError(
        key[0],
        f"duplicate {'/'.join(key)} {k}; first at {first_file} row {first_row}",
        f"{key_zh}重复：{'/'.join(str(v) for v in k)}（首次出现在 {first_file} 第 {first_row} 行）",
        f"每个{key_zh}只填一行",
    )


def _unreadable_row(fields: tuple[Field, ...], exc: Exception) -> RowError:
    return RowError(
        fields[0].name,
        f"unreadable row ({type(exc).__name__}: {exc})",
        "此行无法识别",
        "按表头逐列填写",
    )


def _zh(kind: str, name: str) -> str:
    return next(f.zh for f in KINDS[kind][0] if f.name == name)


def _quarantine_row(
    kind: str,
    path: Path,
    sheet: str | None,
    n: int,
    exc: RowError,
    written: dict[str, str],
    institution: str | None,
    columns: dict[str, int],
    names: list[str],
) -> dict:
    if exc.whole_row:
        column = "（整行）"
    elif exc.field in columns and columns[exc.field] < len(names):
        column = names[columns[exc.field]]  # the header as the file writes it
    else:
        column = _zh(kind, exc.field)
    record = {
        "kind": kind,
        "sheet": sheet,
        "institution_id": institution,
        "column": column,
        "reason_zh": exc.reason_zh,
        "expected_zh": exc.expected_zh,
        "cells": written,
    }
    return {
        "file": str(path),
        "row_number": n,
        "field": exc.field,
        "reason": exc.stored,
        "record": json.dumps(record, ensure_ascii=False, default=str),
        "kind": kind,
    }


def load_centre_records(con: duckdb.DuckDBPyConnection, folder: Path, load_id: str) -> CentreLoad:
    institutions = {
        r[0] for r in con.execute("SELECT DISTINCT institution_id FROM raw.institutions").fetchall()
    }
    # read every file before changing anything: a file that cannot be read leaves the warehouse as it was
    good: dict[str, list[dict]] = {}
    bad: list[dict] = []
    files: list[FileRead] = []
    for kind in KINDS:
        seen: dict[tuple, tuple[str, int]] = {}
        good[kind] = []
        for path in kind_files(folder, kind):
            read = read_kind(kind, path, institutions, seen, good[kind], bad)
            files.append(read)
            log.info("read %s rows of %s from %s", f"{read.rows:,}", kind, read.note)
    loaded = {kind: len(rows) for kind, rows in good.items()}
    quarantined = {kind: sum(1 for b in bad if b["kind"] == kind) for kind in KINDS}
    con.begin()
    try:
        con.execute("DELETE FROM raw.quarantine WHERE source = 'centre_records' AND load_id = ?", [load_id])
        for kind, (fields, _) in KINDS.items():
            _replace_table(con, kind, fields, good[kind], load_id)
        if bad:
            con.executemany(
                "INSERT INTO raw.quarantine VALUES (?, 'centre_records', ?, ?, ?, ?, ?)",
                [[load_id, b["file"], b["row_number"], b["field"], b["reason"], b["record"]] for b in bad],
            )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    for b in bad:
        log.warning("quarantined %s row %s: %s", Path(b["file"]).name, b["row_number"], b["reason"])
    log.info("loaded centre records %s; quarantined %s", loaded, quarantined)
    return CentreLoad(loaded, quarantined, files)


def _replace_table(
    con: duckdb.DuckDBPyConnection, kind: str, fields: tuple[Field, ...], rows: list[dict], load_id: str
) -> None:
    """Bulk-replace raw.centre_<kind> through DuckDB's JSON reader (no row-by-row inserts)."""
    columns = {f.name: SQL_TYPES[f.kind] for f in fields} | {
        "source_file": "VARCHAR",
        "row_number": "INTEGER",
    }
    table = f"raw.centre_{kind}"
    con.execute(
        f"CREATE OR REPLACE TABLE {table} ("
        + ", ".join(f"{c} {t}" for c, t in columns.items())
        + ", load_id VARCHAR)"
    )
    if not rows:
        return
    payload = "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in rows).encode()
    rel = con.read_json(io.BytesIO(payload), columns=columns, format="newline_delimited")
    con.register("centre_batch", rel)
    con.execute(f"INSERT INTO {table} SELECT *, ? FROM centre_batch", [load_id])
