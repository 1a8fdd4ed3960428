"""A feed with a history (docs/contract.md §2, "A timeline"): one continuous timeline of a province, and the
dataset directory that stood on any day of it.

`generate_timeline` makes the province as it stands on the last day (`generate.DatasetGenerator`, as of `end`) and
then walks each record back through the versions it had on the way there:

- an institution is in the feed from the day it was registered, was `active` until its termination was notified,
  and changes its contact phone now and then;
- a plan was announced (`planned`) before its assessment and completed three days after it; some completed plans
  first gave a wrong `passed` and were corrected a week later; a cancelled plan was planned first;
- a certificate appears when it is uploaded: on its issue day, or, for some plans, a month late;
- a renewal application is in the centre's spreadsheet from the day it was received, its review result from the
  day the review completed; some rows were typed with a bad date, rejected, and fixed a few days later;
- a rectification notice is completed, a disciplinary case closed, on the day that happened.

The timeline directory holds every version: feed records in `<resource>.jsonl` (a key's versions on adjacent
lines, oldest first, each with its own `updated_at`), centre spreadsheets in `centre_records/<kind>.csv` with a
first column `_known_on` (the day the row stood so in the file). Versions before `start` collapse into the last
one of them. `view` cuts the dataset of one day out of it: each key's newest version with `updated_at` by the end
of that day (Asia/Shanghai), each spreadsheet row as it stood that day. So datasets for different days are views
of one history, and a run on each day sees what the network and the centre had then.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import orjson

from mock_feed.generate import CENTRE_COLUMNS, DAY, generate_dataset, json_line, timestamp

TIMELINE_FILE = "timeline.json"
KNOWN_ON = "_known_on"
# (file, key fields) of the feed's resources, as the server keys them
FEED_FILES = {
    "institutions.jsonl": ("institution_id",),
    "registered_occupations.jsonl": ("institution_id", "occupation_code"),
    "plans.jsonl": ("plan_no",),
    "certificates.jsonl": ("certificate_no",),
}
CENTRE_KEYS = {
    "renewal_applications": ("application_id",),
    "rectification_notices": ("notice_id",),
    "disciplinary_cases": ("case_id",),
    "terminations": ("institution_id", "notified_on"),
    "occupation_change_requests": ("request_id",),
}
FEED_OFFSET = dt.timezone(dt.timedelta(hours=8))  # the feed's days are days in Asia/Shanghai
# how often records change after their first version (deterministic per seed)
PHONE_CHANGE = 1 / 3  # a phone change in a month
PASSED_CORRECTED = 0.08
LATE_UPLOAD = 0.05
ROW_FIXED = 0.1
REGISTERED_AT_S = 0  # an institution's first version: the start of the day it was registered


class NotATimeline(ValueError):
    """The folder is not a timeline, or the day is outside it."""


def is_timeline(folder: Path) -> bool:
    return (folder / TIMELINE_FILE).exists()


def timeline_span(folder: Path) -> tuple[dt.date, dt.date]:
    meta = json.loads((folder / TIMELINE_FILE).read_text(encoding="utf-8"))
    return dt.date.fromisoformat(meta["from"]), dt.date.fromisoformat(meta["to"])


def _when(record: dict) -> dt.datetime:
    t = dt.datetime.fromisoformat(record["updated_at"])
    return t if t.tzinfo else t.replace(tzinfo=FEED_OFFSET)


def _day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + DAY, dt.time(), FEED_OFFSET)


def _version(record: dict, day: dt.date, seconds: int, **changes: object) -> dict:
    return {**record, **changes, "updated_at": timestamp(day, seconds)}


# -- the versions of each kind of record ----------------------------------------------------------------------
class History:
    """Derives every record's versions from the final state; one random stream, so the same arguments give the
    same timeline."""

    def __init__(self, end: dt.date, seed: int, institutions: int) -> None:
        self.end = end
        self.rng = random.Random(f"timeline:{seed}:{end.isoformat()}:{institutions}")

    def seconds(self) -> int:
        return self.rng.randint(8 * 3600, 18 * 3600)

    def phone(self) -> str:
        return f"1{self.rng.choice('3589')}{self.rng.randint(0, 999_999_999):09d}"

    def institution(self, final: dict, terminated_on: dt.date | None) -> list[dict]:
        """Active until its termination was notified; a new contact phone now and then (the feed changes a little
        every day)."""
        first_day = _when(final).date()
        span = (self.end - first_day).days
        changes: list[tuple[dt.date, str]] = [
            (first_day + DAY * (block + self.rng.randint(1, min(30, span - block))), "contact_phone")
            for block in range(0, span, 30)
            if self.rng.random() < PHONE_CHANGE
        ]
        if final["status"] != "active" and terminated_on and terminated_on > first_day:
            changes.append((terminated_on, "status"))
        changes.sort()
        # the phones it had, the last one the phone it has now
        phones = [self.phone() for day, field in changes if field == "contact_phone"] + [
            final["contact_phone"]
        ]
        status = "active" if any(field == "status" for _, field in changes) else final["status"]
        versions = [{**final, "contact_phone": phones.pop(0), "status": status}]
        registered = dt.date.fromisoformat(final["registered_on"])
        if registered < first_day:
            # the network holds an institution from the day it was registered, before its plans and certificates
            # (a fixed hour, so that the random stream, and so every other record, stays as it was)
            versions.insert(0, _version(versions[0], registered, REGISTERED_AT_S))
        for day, field in changes:
            value = phones.pop(0) if field == "contact_phone" else final["status"]
            versions.append(_version(versions[-1], day, self.seconds(), **{field: value}))
        return versions

    def plan(self, final: dict, registered: dt.date) -> list[dict]:
        """Announced a few weeks before its assessment, never before its institution was registered."""
        assessed = dt.date.fromisoformat(final["assessment_date"])
        announced = max(min(assessed - DAY * self.rng.randint(7, 40), self.end), registered)
        if final["status"] == "planned":
            return [_version(final, announced, self.seconds())]
        closed = _when(final).date()
        versions = []
        if announced < closed:
            versions.append(
                _version(
                    final, announced, self.seconds(), status="planned", passed=0, certificates_online=False
                )
            )
        if (
            final["status"] == "completed"
            and closed + DAY * 7 <= self.end
            and self.rng.random() < PASSED_CORRECTED
        ):
            wrong = min(final["passed"] + self.rng.randint(1, 3), final["candidates"])
            versions.append({**final, "passed": wrong})
            versions.append(_version(final, closed + DAY * 7, self.seconds()))
        else:
            versions.append(final)
        return versions

    def late_plans(self, plans: Iterable[dict]) -> set[str]:
        return {p["plan_no"] for p in plans if p["status"] == "completed" and self.rng.random() < LATE_UPLOAD}

    def application(self, final: dict) -> list[dict]:
        received = dt.date.fromisoformat(final["received_on"])
        first = {**final, "review_result": "", "review_completed_on": "", KNOWN_ON: received}
        versions = [first]
        fixed_on = received + DAY * self.rng.randint(2, 6)
        if self.rng.random() < ROW_FIXED and fixed_on <= self.end:
            # typed as 2026年14月5日: the load rejects the row and the centre gets it back, then fixes it
            typo = f"{received.year}年{received.month + 12}月{received.day}日"
            versions = [{**first, "received_on": typo}, {**first, KNOWN_ON: fixed_on}]
        if final["review_completed_on"]:
            completed = dt.date.fromisoformat(final["review_completed_on"])
            versions.append({**final, KNOWN_ON: max(completed, versions[-1][KNOWN_ON])})
        elif final["review_result"]:
            versions[-1] = {**final, KNOWN_ON: versions[-1][KNOWN_ON]}
        return versions

    @staticmethod
    def closed_later(final: dict, opened: str, closed: str) -> list[dict]:
        """A row written when it opened and completed when it closed (rectification notices, cases)."""
        first = {**final, closed: "", KNOWN_ON: dt.date.fromisoformat(final[opened])}
        if not final[closed]:
            return [first]
        done = max(dt.date.fromisoformat(final[closed]), first[KNOWN_ON])
        return [first, {**final, KNOWN_ON: done}]

    @staticmethod
    def once(final: dict, on: str) -> list[dict]:
        return [{**final, KNOWN_ON: dt.date.fromisoformat(final[on])}]


def _collapse(versions: list[dict], start: dt.date, when: Callable[[dict], dt.date]) -> list[dict]:
    """The versions from `start` on, after the last one before it (what a first run on `start` sees)."""
    before = [v for v in versions if when(v) < start]
    return before[-1:] + [v for v in versions if when(v) >= start]


# -- generate -------------------------------------------------------------------------------------------------
def generate_timeline(
    out: Path, start: dt.date, end: dt.date, institutions: int = 200, seed: int = 2022
) -> dict[str, int]:
    """Write the timeline of a province from `start` to `end` into `out`; returns the versions per file."""
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    out.mkdir(parents=True, exist_ok=True)
    final = out / ".final"
    generate_dataset(final, end, institutions, seed)
    history = History(end, seed, institutions)
    counts: dict[str, int] = {}
    try:
        terminated: dict[str, dt.date] = {}
        for row in _read_csv(final / "centre_records" / "terminations.csv"):
            day = dt.date.fromisoformat(row["notified_on"])
            terminated[row["institution_id"]] = min(day, terminated.get(row["institution_id"], day))
        feed_day = lambda v: _when(v).date()  # noqa: E731 - the key of the feed's versions
        institutions_rows = _read_jsonl(final / "institutions.jsonl")
        plans = _read_jsonl(final / "plans.jsonl")
        registered = {
            r["institution_id"]: dt.date.fromisoformat(r["registered_on"]) for r in institutions_rows
        }
        counts["institutions.jsonl"] = _write_jsonl(
            out / "institutions.jsonl",
            (
                v
                for r in institutions_rows
                for v in _collapse(
                    history.institution(r, terminated.get(r["institution_id"])), start, feed_day
                )
            ),
        )
        shutil.copy(final / "registered_occupations.jsonl", out / "registered_occupations.jsonl")
        counts["registered_occupations.jsonl"] = len(_read_jsonl(out / "registered_occupations.jsonl"))
        counts["plans.jsonl"] = _write_jsonl(
            out / "plans.jsonl",
            (
                v
                for p in plans
                for v in _collapse(history.plan(p, registered[p["institution_id"]]), start, feed_day)
            ),
        )
        counts["certificates.jsonl"] = _late_certificates(
            final / "certificates.jsonl", out / "certificates.jsonl", history.late_plans(plans), end
        )
        counts |= _centre_records(history, final, out, start)
    finally:
        shutil.rmtree(final, ignore_errors=True)
    meta = {"from": start.isoformat(), "to": end.isoformat(), "institutions": institutions, "seed": seed}
    (out / TIMELINE_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return counts


def _centre_records(history: History, final: Path, out: Path, start: dt.date) -> dict[str, int]:
    """The centre's spreadsheets with each row's versions; returns the versions per file."""
    centre = {
        "renewal_applications": history.application,
        "rectification_notices": lambda r: History.closed_later(r, "issued_on", "completed_on"),
        "disciplinary_cases": lambda r: History.closed_later(r, "opened_on", "closed_on"),
        "terminations": lambda r: History.once(r, "notified_on"),
        "occupation_change_requests": lambda r: History.once(r, "received_on"),
    }
    (out / "centre_records").mkdir(exist_ok=True)
    counts = {}
    for kind, versions_of in centre.items():
        rows = _read_csv(final / "centre_records" / f"{kind}.csv")
        versions = [v for r in rows for v in _collapse(versions_of(r), start, lambda v: v[KNOWN_ON])]
        counts[f"centre_records/{kind}.csv"] = _write_csv(
            out / "centre_records" / f"{kind}.csv", [KNOWN_ON, *CENTRE_COLUMNS[kind]], versions
        )
    return counts


def _late_certificates(source: Path, target: Path, late_plans: set[str], end: dt.date) -> int:
    """Certificates as uploaded: those of a late plan a month after issue (not at all if that is after `end`)."""
    count = 0
    with open(source, encoding="utf-8") as lines, open(target, "w", encoding="utf-8") as out:
        for line in lines:
            cert = orjson.loads(line)
            if cert["plan_no"] in late_plans:
                uploaded = dt.date.fromisoformat(cert["issued_on"]) + DAY * 30
                if uploaded > end:
                    continue
                issued = _when(cert).time()  # the same hour of the day as its issue, a month on
                seconds = issued.hour * 3600 + issued.minute * 60 + issued.second
                line = json_line({**cert, "updated_at": timestamp(uploaded, seconds)})
            out.write(line)
            count += 1
    return count


# -- view -----------------------------------------------------------------------------------------------------
def view(timeline: Path, as_of: dt.date, out: Path) -> dict[str, int]:
    """Write the dataset directory of day `as_of` (docs/contract.md §3) cut from `timeline` into `out`."""
    if not is_timeline(timeline):
        raise NotATimeline(
            f"{timeline} is not a timeline (no {TIMELINE_FILE}): generate one with --from/--to"
        )
    start, end = timeline_span(timeline)
    if not start <= as_of <= end:
        raise NotATimeline(f"{as_of} is outside the timeline {timeline} ({start} … {end})")
    out.mkdir(parents=True, exist_ok=True)
    cutoff = _day_end(as_of)
    counts: dict[str, int] = {}
    for name, key in FEED_FILES.items():
        with open(timeline / name, "rb") as lines, open(out / name, "wb") as target:
            count = 0
            for line in _newest_lines(lines, key, cutoff):
                target.write(line)
                count += 1
        counts[name] = count
    (out / "centre_records").mkdir(exist_ok=True)
    for kind, key in CENTRE_KEYS.items():
        newest: dict[tuple, dict] = {}
        for row in _read_csv(timeline / "centre_records" / f"{kind}.csv"):
            if dt.date.fromisoformat(row[KNOWN_ON]) <= as_of:
                newest[tuple(row[k] for k in key)] = row  # a key's rows are in time order
        counts[f"centre_records/{kind}.csv"] = _write_csv(
            out / "centre_records" / f"{kind}.csv", CENTRE_COLUMNS[kind], newest.values()
        )
    return counts


def _newest_lines(lines: Iterable[bytes], key: tuple[str, ...], cutoff: dt.datetime) -> Iterator[bytes]:
    """Of each run of lines with one key (a key's versions, oldest first), the last updated before `cutoff`."""
    current: tuple | None = None
    chosen: bytes | None = None
    for line in lines:
        record = orjson.loads(line)
        k = tuple(record[f] for f in key)
        if k != current:
            if chosen is not None:
                yield chosen
            current, chosen = k, None
        if _when(record) < cutoff:
            chosen = line
    if chosen is not None:
        yield chosen


# -- files ----------------------------------------------------------------------------------------------------
def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as lines:
        return [orjson.loads(line) for line in lines]


def _write_jsonl(path: Path, records: Iterable[dict]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json_line(record))
            count += 1
    return count


def _read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _write_csv(path: Path, columns: list[str], rows: Iterable[dict]) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()})
            count += 1
    return count
