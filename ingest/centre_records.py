"""Read the provincial centre's own spreadsheets (CONTRACT §3 `centre_records/`), typed and validated.

Accepted: `.csv` (UTF-8 with or without BOM) or `.xlsx` (first sheet) with the English headers of the
contract or their Chinese equivalents (HEADER_ALIASES); booleans true/false or 是/否; dates as YYYY-MM-DD,
YYYY/M/D or Excel serial numbers. A bad row goes to `raw.quarantine` with file, row number, field and a
reason a person can act on; the other rows load. Each run replaces the centre tables with the files' content.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

EXCEL_EPOCH = dt.date(1899, 12, 30)
OCCUPATION_CODE = re.compile(r"^\d-\d{2}-\d{2}-\d{2}$")
TRUE_WORDS = {"true", "是", "1", "yes", "y", "t"}
FALSE_WORDS = {"false", "否", "0", "no", "n", "f", ""}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text | institution | date | bool | enum | codes
    required: bool = True
    values: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # Chinese headers


def F(name: str, kind: str, zh: str, required: bool = True, values: tuple[str, ...] = ()) -> Field:
    return Field(name, kind, required, values, (zh,))


INSTITUTION = F("institution_id", "institution", "机构编号")
KINDS: dict[str, tuple[tuple[Field, ...], tuple[str, ...]]] = {
    # kind -> (fields, key fields)
    "renewal_applications": ((
        F("application_id", "text", "申请编号"), INSTITUTION, F("received_on", "date", "收到日期"),
        F("incentive_evidence", "bool", "是否提供激励制度佐证材料"),
        F("force_majeure_statement", "bool", "是否提供不可抗力书面说明"),
        F("occupation_codes", "codes", "申请续期职业编码", required=False),
        F("review_result", "enum", "评估结果", required=False, values=("approved", "rejected")),
        F("review_completed_on", "date", "评估完成日期", required=False),
    ), ("application_id",)),
    "rectification_notices": ((
        F("notice_id", "text", "整改通知编号"), INSTITUTION, F("issued_on", "date", "下达日期"),
        F("due_on", "date", "整改期限", required=False), F("completed_on", "date", "整改完成日期", required=False),
    ), ("notice_id",)),
    "disciplinary_cases": ((
        F("case_id", "text", "案件编号"), INSTITUTION, F("opened_on", "date", "立案日期"),
        F("article", "text", "适用条款", required=False), F("terminates_registration", "bool", "是否终结备案"),
        F("closed_on", "date", "结案日期", required=False),
    ), ("case_id",)),
    "terminations": ((
        INSTITUTION, F("notified_on", "date", "通知日期"), F("reason", "text", "终止原因", required=False),
    ), ("institution_id", "notified_on")),
    "occupation_change_requests": ((
        F("request_id", "text", "变更申请编号"), INSTITUTION, F("received_on", "date", "收到日期"),
        F("change_type", "enum", "变更类型", values=("add", "change")),
        F("occupation_code", "text", "职业编码"),
    ), ("request_id",)),
}
# Chinese spellings accepted for code values.
VALUE_ALIASES = {"通过": "approved", "同意": "approved", "不通过": "rejected", "不同意": "rejected",
                 "新增": "add", "变更": "change"}
SQL_TYPES = {"text": "VARCHAR", "institution": "VARCHAR", "date": "DATE", "bool": "BOOLEAN",
             "enum": "VARCHAR", "codes": "VARCHAR"}


class RowError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


def parse_date(value: object) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return EXCEL_EPOCH + dt.timedelta(days=int(value))
    text = str(value).strip()
    if re.fullmatch(r"\d{4,5}(\.0+)?", text) and not re.fullmatch(r"\d{4}", text):
        return EXCEL_EPOCH + dt.timedelta(days=int(float(text)))  # Excel serial saved as text
    m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", text)
    if not m:
        raise ValueError(f"'{text}' is not a date (YYYY-MM-DD, YYYY/M/D or an Excel serial)")
    return dt.date(int(m[1]), int(m[2]), int(m[3]))


def parse_value(f: Field, value: object, institutions: set[str]) -> object:
    text = "" if value is None else (str(value).strip() if not isinstance(value, dt.date) else value)
    if text == "" and f.required and f.kind != "bool":
        raise RowError(f.name, f"{f.name} is missing")
    if f.kind == "date":
        try:
            return parse_date(text)
        except ValueError as exc:
            raise RowError(f.name, f"{f.name}: {exc}") from None
    if f.kind == "bool":
        word = str(text).lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise RowError(f.name, f"{f.name}: '{text}' is not a boolean (true/false or 是/否)")
    if f.kind == "enum":
        word = VALUE_ALIASES.get(str(text), str(text).lower())
        if word == "":
            return None
        if word not in f.values:
            raise RowError(f.name, f"{f.name}: '{text}' is not one of {', '.join(f.values)}")
        return word
    if f.kind == "codes":
        codes = [c.strip() for c in re.split(r"[;；,，]", str(text)) if c.strip()]
        bad = [c for c in codes if not OCCUPATION_CODE.match(c)]
        if bad:
            raise RowError(f.name, f"{f.name}: '{bad[0]}' is not an occupation code like 6-31-01-03")
        return ";".join(codes) or None
    if f.kind == "institution":
        if text not in institutions:
            raise RowError(f.name, f"institution_id '{text}' is not an institution in the feed")
        return text
    return text or None


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """(spreadsheet row number, {header: value}) for each data row; row 1 is the header."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, [])]
        for n, row in enumerate(rows, start=2):
            if all(v is None or str(v).strip() == "" for v in row):
                continue
            yield n, dict(zip(header, row))
        wb.close()
        return
    text = path.read_bytes().decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    for n, row in enumerate(reader, start=2):
        if not any(v.strip() for v in row):
            continue
        yield n, dict(zip(header, row))


def header_map(fields: tuple[Field, ...], headers: list[str], path: Path) -> dict[str, str]:
    """field name -> the header used for it in this file."""
    found = {}
    for f in fields:
        for h in (f.name, *f.aliases):
            if h in headers:
                found[f.name] = h
                break
        else:
            if f.required and f.kind != "bool":
                raise ValueError(f"{path}: no column for {f.name} (expected header '{f.name}' or "
                                 f"'{f.aliases[0]}'); found {headers}")
    return found


@dataclass
class CentreLoad:
    loaded: dict[str, int]
    quarantined: dict[str, int]


def load_centre_records(con: duckdb.DuckDBPyConnection, folder: Path, load_id: str) -> CentreLoad:
    institutions = {r[0] for r in con.execute(
        "SELECT DISTINCT item->>'institution_id' FROM raw.institutions").fetchall()}
    loaded: dict[str, int] = {}
    quarantined: dict[str, int] = {}
    bad: list[dict] = []
    con.begin()
    try:
        con.execute("DELETE FROM raw.quarantine WHERE source = 'centre_records' AND load_id = ?", [load_id])
        for kind, (fields, key) in KINDS.items():
            good: list[dict] = []
            seen: dict[tuple, str] = {}
            for path in sorted(p for p in (folder / f"{kind}.csv", folder / f"{kind}.xlsx") if p.exists()):
                rows = list(read_rows(path))
                headers = list(rows[0][1].keys()) if rows else []
                columns = header_map(fields, headers, path) if rows else {}
                for n, raw in rows:
                    record = {name: raw.get(h) for name, h in columns.items()}
                    try:
                        parsed = {f.name: parse_value(f, record.get(f.name), institutions) for f in fields}
                        k = tuple(parsed[name] for name in key)
                        if k in seen:
                            raise RowError(key[0], f"duplicate {'/'.join(key)} {k}; first at {seen[k]}")
                        seen[k] = f"{path.name} row {n}"
                    except RowError as exc:
                        bad.append({"file": str(path), "row_number": n, "field": exc.field, "reason": str(exc),
                                    "record": json.dumps(record, ensure_ascii=False, default=str), "kind": kind})
                        continue
                    parsed |= {"source_file": path.name, "row_number": n}
                    good.append(parsed)
            _replace_table(con, kind, fields, good, load_id)
            loaded[kind] = len(good)
            quarantined[kind] = sum(1 for b in bad if b["kind"] == kind)
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
    return CentreLoad(loaded, quarantined)


def _replace_table(con: duckdb.DuckDBPyConnection, kind: str, fields: tuple[Field, ...], rows: list[dict],
                   load_id: str) -> None:
    """Bulk-replace raw.centre_<kind> through DuckDB's JSON reader (no row-by-row inserts)."""
    columns = {f.name: SQL_TYPES[f.kind] for f in fields} | {"source_file": "VARCHAR", "row_number": "INTEGER"}
    table = f"raw.centre_{kind}"
    con.execute(f"CREATE OR REPLACE TABLE {table} ("
                + ", ".join(f"{c} {t}" for c, t in columns.items()) + ", load_id VARCHAR)")
    if not rows:
        return
    payload = "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in rows).encode()
    rel = con.read_json(io.BytesIO(payload), columns=columns, format="newline_delimited")
    con.register("centre_batch", rel)
    con.execute(f"INSERT INTO {table} SELECT *, ? FROM centre_batch", [load_id])
