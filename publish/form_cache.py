"""The reminder forms' bytes by content hash, so that a rerun remakes only the forms whose inputs changed.

A form is a function of its kind, the Institution record passed to its builder (with every mart row in it), D
and the code and libraries that make it (publish/forms.py is deterministic: publish/xlsx.py fixes the zip and
document timestamps to D). The key is the sha256 of all of these; the entry, `form_cache/<aa>/<key>.<ext>`
under the warehouse folder, is one line with the sha256 of the form's bytes and then the bytes. An entry whose
bytes do not match that hash (corrupt, truncated) is rejected and the form made again, never exported.

D is in every form (its dates and document properties), so an entry can be reused only by a rerun for the same
D: a retry, a re-export after D was published again, the bench's incremental run. The cache therefore keeps
only the entries the latest export used (`keep_only_used`): never more than one export's forms on disk, and a
rerun of the latest D finds all of its unchanged forms.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import sys
import uuid
import zlib
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publish import forms
from publish.forms import Institution, build_forms, form_kinds

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger(__name__)

FORMAT = "form-cache/1"  # the key's and the entry's layout; change it to start a new cache
# the code a form's bytes depend on: a change to either file makes every key new
FORM_CODE = [Path(forms.__file__), Path(forms.__file__).with_name("xlsx.py")]
EXTENSIONS = {"annex1": "xlsx", "annex2": "docx", "notice": "docx"}


@functools.cache
def code_version() -> str:
    """The hash of the form code and of what else shapes the bytes: the Office libraries, zlib, Python."""
    digest = hashlib.sha256(FORMAT.encode())
    for path in FORM_CODE:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for part in (
        version("openpyxl"),
        version("python-docx"),
        version("lxml"),
        zlib.ZLIB_RUNTIME_VERSION,
        sys.version.split()[0],
    ):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def _tagged(value: object) -> list[str]:
    """JSON for the values DuckDB returns beyond JSON's own (dates, decimals …), tagged with their type so that
    the date 2026-11-25 and the text '2026-11-25' never give the same key."""
    return [type(value).__qualname__, repr(value)]


def _fields(value: DataclassInstance | type[DataclassInstance]) -> dict[str, Any]:
    """A dataclass's fields by name, one level (dataclasses.asdict copies the whole tree deeply)."""
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _plain(value: object) -> object:
    """A nested dataclass as its fields (the JSON of dataclasses.asdict without its deep copy), else _tagged."""
    return _fields(value) if dataclasses.is_dataclass(value) else _tagged(value)


def form_keys(inst: Institution, as_of: dt.date, kinds: tuple[str, ...]) -> list[str]:
    """sha256 of everything each form of `kinds` for `inst` on D is made from (the record serialised once)."""
    record = json.dumps(_fields(inst), sort_keys=True, ensure_ascii=False, default=_plain, allow_nan=True)
    common = "\n".join([code_version(), as_of.isoformat(), record])
    return [hashlib.sha256(f"{kind}\n{common}".encode()).hexdigest() for kind in kinds]


def form_key(inst: Institution, as_of: dt.date, kind: str) -> str:
    return form_keys(inst, as_of, (kind,))[0]


class FormCache:
    """Forms from `folder` where their key is there and sound; the rest made by publish.forms.build_forms (in
    worker processes when there are many) and stored. Counts what it did for the run's metrics."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.built = self.from_cache = self.rejected = self.dropped = 0
        self.used: set[Path] = set()

    def _path(self, key: str, kind: str) -> Path:
        return self.folder / key[:2] / f"{key}.{EXTENSIONS[kind]}"

    def _read(self, path: Path) -> bytes | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        digest, _, data = raw.partition(b"\n")
        if digest.decode(errors="replace") != hashlib.sha256(data).hexdigest():
            log.warning("form cache entry %s does not match its hash: made again", path)
            self.rejected += 1
            return None
        return data

    def _write(self, path: Path, data: bytes) -> None:
        """Temporary file then rename: a reader sees the whole entry or none (a crash leaves only a .tmp)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(hashlib.sha256(data).hexdigest().encode() + b"\n" + data)
        os.replace(tmp, path)

    def forms(self, institutions: list[Institution], as_of: dt.date) -> list[tuple[bytes, ...]]:
        """Each institution's forms, in order, as build_forms makes them."""
        paths: list[list[Path]] = []
        for inst in institutions:
            kinds = form_kinds(inst)
            paths.append(
                [self._path(key, k) for key, k in zip(form_keys(inst, as_of, kinds), kinds, strict=True)]
            )
        found: list[tuple[bytes, ...] | None] = []
        for entries in paths:
            self.used.update(entries)
            data = [self._read(p) for p in entries]
            sound = [d for d in data if d is not None]
            found.append(tuple(sound) if len(sound) == len(data) else None)
        missing = [n for n, f in enumerate(found) if f is None]
        made = build_forms([institutions[n] for n in missing], as_of) if missing else []
        for n, institution_forms in zip(missing, made, strict=True):
            for path, form in zip(paths[n], institution_forms, strict=True):
                self._write(path, form)
            self.built += len(institution_forms)
        self.from_cache += sum(len(f) for f in found if f is not None)
        made_by_n = dict(zip(missing, made, strict=True))
        return [made_by_n[n] if f is None else f for n, f in enumerate(found)]

    def keep_only_used(self) -> int:
        """Remove every entry (and left-over temporary file) this run did not use; returns how many."""
        if not self.folder.exists():
            return 0
        for path in self.folder.glob("*/*"):
            if path not in self.used:
                path.unlink(missing_ok=True)
                self.dropped += 1
        return self.dropped

    def metrics(self) -> list[tuple[str, str, int, str | None]]:
        """(subject, metric, value, note) rows for raw.run_metrics."""
        return [
            ("forms", "forms_built", self.built, None),
            ("forms", "forms_from_cache", self.from_cache, str(self.folder)),
            ("forms", "form_cache_rejected", self.rejected, "corrupt or truncated entries, made again"),
            ("forms", "form_cache_dropped", self.dropped, "entries the export did not use"),
        ]
