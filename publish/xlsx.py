"""Byte-stable Office files: openpyxl and python-docx stamp the save time into the zip entries and
docProps/core.xml; rewriting both with a fixed time makes identical content give identical bytes."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


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


# Dates display as 2026年11月25日 but stay real date cells, so that sorting and filtering still work.
DATE_FORMAT = 'yyyy"年"m"月"d"日"'


def date_zh(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def print_like_an_office_document(
    ws, header: str, title_rows: str | None = "1:1", one_page: bool = False
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
