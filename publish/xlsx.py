"""Office files made from data: byte-stable (openpyxl and python-docx stamp the save time into the zip entries and
docProps/core.xml; rewriting both with a fixed time makes identical content give identical bytes), and unable
to run anything a value from the feed or a centre's spreadsheet carries: every workbook is saved through
workbook_bytes, which stores every text as text, never as a formula."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# XML 1.0 cannot hold these (openpyxl and lxml refuse them): one stray control character in an institution's name
# would stop the export of every centre, so it is shown as U+FFFD instead (tab, LF and CR are kept)
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def fixed_zip(data: bytes, stamp: dt.datetime) -> bytes:
    out = io.BytesIO()
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                for tag in (rb"dcterms:modified", rb"dcterms:created"):
                    content = re.sub(
                        rb"(<" + tag + rb"[^>]*>)[^<]*(</" + tag + rb">)",
                        rb"\g<1>" + iso + rb"\g<2>",
                        content,
                    )
            dst.writestr(fixed, content)
    return out.getvalue()


def xml_text(text: str) -> str:
    """`text` with every character that XML 1.0 cannot hold replaced by U+FFFD (the one change, and only where
    there is such a character)."""
    return XML_ILLEGAL.sub("\ufffd", text) if XML_ILLEGAL.search(text) else text


def append_row(ws: Worksheet, values: Iterable[object]) -> None:
    """ws.append for a row that holds data: texts go in as xml_text (workbook_bytes stores them as text)."""
    ws.append([xml_text(v) if isinstance(v, str) else v for v in values])


def workbook_bytes(wb: Workbook, stamp: dt.datetime) -> bytes:
    """The workbook saved, byte-stable (fixed_zip). openpyxl takes any text that starts with `=` for a formula
    (and #N/A, #REF! … for an error value): whatever it took so is stored as a text cell (inlineStr) instead.
    Nothing this project writes is a formula, so every cell of every sheet is text, a number or a date, and an
    institution named =HYPERLINK(…) is shown as that name, never run."""
    for ws in wb.worksheets:
        # the cells that exist (ws._cells): iter_rows would create the empty ones and change the file
        for cell in ws._cells.values():
            if cell.data_type in ("f", "e") and isinstance(cell._value, str):
                cell.data_type = "s"
    raw = io.BytesIO()
    wb.save(raw)
    return fixed_zip(raw.getvalue(), stamp)


# Dates display as 2026年11月25日 but stay real date cells, so that sorting and filtering still work.
DATE_FORMAT = 'yyyy"年"m"月"d"日"'


def date_zh(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def print_like_an_office_document(
    ws: Worksheet, header: str, title_rows: str | None = "1:1", one_page: bool = False
) -> None:
    """A4 landscape, one page wide (one page tall too when `one_page`), header rows repeated on every page,
    a print title with `header` (the centre and the date) and page numbers in the footer."""
    from openpyxl.worksheet.page import PageMargins

    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 1 if one_page else 0
    if title_rows:
        ws.print_title_rows = title_rows
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.7, bottom=0.6, header=0.3, footer=0.3)
    ws.print_options.horizontalCentered = True
    ws.oddHeader.center.text = header
    ws.oddHeader.center.size = 11
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"
    ws.oddFooter.center.size = 9
