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
                    content = re.sub(rb"(<" + tag + rb"[^>]*>)[^<]*(</" + tag + rb">)", rb"\g<1>" + iso + rb"\g<2>",
                                     content)
            dst.writestr(fixed, content)
    return out.getvalue()
