"""File and folder names made from values that came from outside (the feed, the centres' spreadsheets): each
such name goes through `safe_name`, so that it names one file inside the export folder on every file system the
exports reach (Linux, a Windows share, a zip opened on Windows), whatever the institution called itself."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

MAX_NAME_BYTES = 255  # ext4's and NTFS's limit on one name (NTFS counts UTF-16 units: 255 bytes is within it)
HASH_CHARS = 12  # hex digits of the sha256 of the full name that a shortened name ends with
# control characters (C0, DEL, C1), the path separators and the characters Windows refuses in a name
UNSAFE_CHARACTERS = re.compile(r'[\x00-\x1f\x7f-\x9f/\\<>:"|?*]')
DOTS = re.compile(r"\.{2,}")  # `..` anywhere: never a step up, and never mistaken for one by a person
# Windows' reserved device names: the name is reserved with any extension too (CON.txt), and ¹²³ count as digits
RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{d}{n}" for d in ("COM", "LPT") for n in "123456789¹²³"}
EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}$")


class UnsafeExportPath(RuntimeError):
    """A path built for an export does not resolve inside the export folder."""


def safe_name(text: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """`text` as one file or folder name: control characters, path separators and <>:"|?* become `_`, as does
    any run of dots; no leading or trailing dot or space; a Windows device name (CON, NUL.txt, COM1 …) gets a
    leading `_`; at most `max_bytes` bytes of UTF-8. A longer name keeps its extension and as much of its start
    as fits, followed by `~` and a hash of the whole text, so that two long names that begin alike stay apart.
    A name that needs none of this is returned as it is."""
    name = DOTS.sub("_", UNSAFE_CHARACTERS.sub("_", text)).strip(" .") or "_"
    if name.split(".", 1)[0].rstrip(" ").upper() in RESERVED:
        name = f"_{name}"
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    match = EXTENSION.search(name)
    stem, extension = (name[: match.start()], match.group()) if match else (name, "")
    suffix = "~" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS] + extension
    room = max_bytes - len(suffix.encode("utf-8"))
    # cut on a character boundary (a CJK character is three bytes), then no trailing dot or space before `~`
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .")
    return stem + suffix


def export_path(*parts: str) -> str:
    """A path relative to the export folder, `/`-joined, each part a safe_name."""
    return "/".join(safe_name(part) for part in parts)


def inside(root: Path, relative: str) -> Path:
    """`root / relative`, checked to resolve inside `root` (after safe_name this always holds: the check is there
    in case a name is ever built another way). Raises UnsafeExportPath naming the path."""
    base = root.resolve()
    path = root / relative
    if not path.resolve().is_relative_to(base) or path.resolve() == base:
        raise UnsafeExportPath(
            f"export path {relative!r} resolves to {path.resolve()}, outside the export folder {base}: "
            "nothing was written; a file name was built without publish.names.safe_name"
        )
    return path
