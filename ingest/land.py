"""Land feed pages in DuckDB in bulk, as typed columns (warehouse.FEED_FIELDS) beside one JSON column of any other
fields, checking each record and pseudonymising personal data before anything is stored; one resource is one
transaction, so a pull that fails half-way leaves nothing of itself visible."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from queue import Empty, Queue
from typing import IO, Any

import duckdb

from ingest import clock
from ingest.crash_points import crash_point
from ingest.feed_client import FeedClient, Page
from ingest.warehouse import (
    FEED_FIELDS,
    FEED_KEYS,
    FEED_PATTERNS,
    FEED_RESOURCES,
    PERSONAL_FIELDS,
    one_row,
    raw_columns,
    scalar,
    sql_literal,
    typed_sql,
)

log = logging.getLogger(__name__)

PAGE_LIMIT = 1000  # items a page asks the feed for (its maximum)
# A batch is FILES_PER_BATCH spool files, which DuckDB reads in parallel, in one statement: each statement has a
# fixed cost (~0.1 s of DuckDB's time at province size, measured: 20 statements of 2 files took
# 9.6 s, 5 of 8 files 7.8 s). Each file holds at most one row group of items (DuckDB's 122,880 rows): a file of a
# row group and a bit left a small row group behind it, which DuckDB's checkpoint merged when the connection
# closed (3-4 s at province size; now ~0; bench/README.md).
PAGES_PER_FILE = 122_880 // PAGE_LIMIT
FILES_PER_BATCH = 8  # or DuckDB's threads, if more: 976 pages, ~260 MB of spool per set at most
SHM_SPOOL_MIN_FREE = 1 << 30  # spool in /dev/shm only with this much free (a container's default is 64 MB)


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer padded keys of HMAC-SHA256 (RFC 2104), so that DuckDB can compute the HMAC."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


TYPE_NAMES = {
    "DATE": "a date",
    "TIMESTAMPTZ": "a timestamp",
    "INTEGER": "an integer",
    "BOOLEAN": "true/false",
}


def field_sql(table: str, field: str) -> str:
    """The field's text in `v`, the list of the item's field texts (items_sql)."""
    fields = [f for f, _, _ in FEED_FIELDS[table]]
    return f"v[{fields.index(field) + 1}]"


def reason_sql(table: str) -> str:
    """A SQL expression over `v` and the typed columns (items_sql): NULL for a usable record, else why it is
    quarantined ('; '-joined). One cheap test tells the usable records, and only the others have their reasons
    spelt out; a typed column's cast is not made twice (the reasons for every item took ~3 core-s per 4.9 M)."""
    checks, usable = [], []
    for field, type_, required in FEED_FIELDS[table]:
        value = field_sql(table, field)
        if required:
            checks.append(f"CASE WHEN {value} IS NULL OR {value} = '' THEN '{field}: missing' END")
        if type_ != "VARCHAR":
            # `field` is the typed column, try_cast of the text: NULL for no text or one that does not cast
            checks.append(
                f"CASE WHEN {value} <> '' AND {field} IS NULL "
                f"THEN '{field}: expected {TYPE_NAMES[type_]}, got ' || left({value}, 40) END"
            )
            usable.append(
                f"{field} IS NOT NULL" if required else f"({field} IS NOT NULL OR coalesce({value}, '') = '')"
            )
        elif field in FEED_PATTERNS:
            # regexp_full_match, as the pattern carries no anchors: RE2 with ^…$ took three times as long
            pattern = sql_literal(FEED_PATTERNS[field])
            checks.append(
                f"CASE WHEN {value} <> '' AND NOT regexp_full_match({value}, {pattern}) "
                f"THEN '{field}: does not match ^{FEED_PATTERNS[field]}$, got ''' || left({value}, 40) || '''' END"
            )
            usable.append(
                f"regexp_full_match({value}, {pattern})"
                if required
                else f"(coalesce({value}, '') = '' OR regexp_full_match({value}, {pattern}))"
            )
        elif required:
            usable.append(f"{value} <> ''")
    # a NULL test (a field missing) counts as not usable, as CASE takes it
    return f"CASE WHEN {' AND '.join(usable)} THEN NULL ELSE nullif(concat_ws('; ', {', '.join(checks)}), '') END"


# How each personal field (warehouse.PERSONAL_FIELDS) is pseudonymised, as SQL over its text
PSEUDONYMISE = {
    # HMAC-SHA256(key, id) = sha256(opad || sha256(ipad || id)), with $ipad/$opad bound per statement
    "holder_id_no": lambda v: f"sha256($opad || unhex(sha256($ipad || encode({v}))))",
    # the surname only
    "holder_name": lambda v: f"left({v}, 1) || repeat('*', greatest(length({v}) - 1, 1))",
}
assert PSEUDONYMISE.keys() == PERSONAL_FIELDS.keys(), (
    "every personal field needs its pseudonym, and only those"
)


def column_sql(table: str, field: str, type_: str) -> str:
    """The raw column made of a field's text: cast to its type; personal data pseudonymised."""
    value = field_sql(table, field)
    if field in PSEUDONYMISE:
        return f"{PSEUDONYMISE[field](value)} AS {PERSONAL_FIELDS[field]}"
    return f"{typed_sql(value, type_)} AS {field}"


def pseudonymised_record_sql(table: str) -> str:
    """A quarantined item, kept whole but for its personal fields, which become their raw columns' values."""
    pairs = []
    fields = {field for field, _, _ in FEED_FIELDS[table]}
    # in PERSONAL_FIELDS' order: json_merge_patch puts the patched keys last, in this order
    for field, column in PERSONAL_FIELDS.items():
        if field in fields:
            pairs += [f"'{field}', NULL"] if column != field else []
            pairs += [f"'{column}', {column}"]
    if not pairs:
        return "item"
    return f"CASE WHEN json_type(item) = 'OBJECT' THEN json_merge_patch(item, json_object({', '.join(pairs)})) ELSE item END"


def items_sql(table: str, flat: bool = False) -> str:
    """The items of one batch of pages (the files $spool), each parsed once: the raw table's columns, checked
    (`reason`: NULL for a usable item) and pseudonymised, and the item as it came (for the quarantine). Items are
    read as JSON, and each field's text taken with json_extract_string; or, when every page is `flat` (PageShape),
    read as a struct of text fields, in one parse (the same texts as json_extract_string gives: a string's value,
    an integer's digits, `true`/`false`; floats, whose text may differ, keep a page from being flat)."""
    fields = FEED_FIELDS[table]
    columns = ", ".join(column_sql(table, field, type_) for field, type_, _ in fields)
    if flat:
        item_type = "STRUCT(" + ", ".join(f"{f} VARCHAR" for f, _, _ in fields) + ")"
        values = "[" + ", ".join(f"item.{f}" for f, _, _ in fields) + "]"
        extra = "NULL::JSON"
    else:
        item_type = "JSON"
        values = "json_extract_string(item, [" + ", ".join(f"'$.{f}'" for f, _, _ in fields) + "])"
        # the fields that are columns (and the names of the pseudonymised ones), for json_merge_patch to leave the
        # others: only on pages where the fetch saw a field outside FEED_FIELDS (`unknown`), as it parses again
        column_names = dict.fromkeys([f for f, _, _ in fields] + [c for c, _ in raw_columns(table)])
        known = "'{" + ", ".join(f'"{name}": null' for name in column_names) + "}'"
        extra = f"CASE WHEN unknown THEN nullif(json_merge_patch(item, {known}), '{{}}') END"
    return f"""
        SELECT page_no, {", ".join(column for column, _ in raw_columns(table))}, {extra} AS extra, {reason_sql(table)} AS reason, item
        FROM (
          SELECT page_no, unknown, item, v, {columns}
          FROM (
            SELECT page_no, unknown, item, {values} AS v
            FROM (
                SELECT page_no, unknown, unnest(page.items) AS item
                FROM read_json($spool, format = 'newline_delimited', maximum_object_size = 33554432,
                               columns = {{'page_no': 'INTEGER', 'unknown': 'BOOLEAN',
                                          'page': 'STRUCT(items {item_type}[], next_cursor VARCHAR)'}})
            )
          )
        )"""


def key_sql(table: str) -> str:
    """A raw table's key (FEED_KEYS) as one text, over its columns (key fields land as they came)."""
    return " || chr(31) || ".join(f"coalesce({k}, '')" for k in FEED_KEYS[table])


@dataclass
class LandResult:
    resource: str
    pages: int
    items: int
    updated_since: str | None
    quarantined: int = 0
    repeated: int = 0  # landed items whose key came more than once in this pull (collapsed by staging)


@dataclass
class Batch:
    """Pages as newline-delimited JSON in spool files, FILES_PER_BATCH files (the pages dealt in turn), for
    DuckDB to read in parallel. Each page goes to its file as it comes, its body as received: joining a batch's
    lines first copied every page twice more (~1 core-s at province size)."""

    spools: list[IO[bytes]]
    pages: int = 0
    items: int = 0
    last_page: int = -1  # the feed's page number of its last page (pages come in order)
    flat: bool = True  # every page is flat (PageShape): DuckDB may read the items as a struct of text fields

    def __post_init__(self) -> None:
        for spool in self.spools:
            spool.seek(0)
            spool.truncate()

    def add(self, page: Page) -> None:
        spool = self.spools[self.pages % len(self.spools)]
        flag = b"true" if page.shape.unknown else b"false"
        spool.write(b'{"page_no":%d,"unknown":%s,"page":' % (page.page_no, flag))
        spool.write(page.body)
        spool.write(b"}\n")
        self.pages += 1
        self.items += page.shape.items
        self.last_page = page.page_no
        self.flat = self.flat and page.shape.flat

    def close(self) -> Batch:
        for spool in self.spools:
            spool.flush()
        return self

    @property
    def files(self) -> list[str]:
        """The spool files that hold pages of this batch."""
        return [spool_path(spool) for spool in self.spools[: self.pages]]


SPOOL_SETS = 2  # sets of spool files: one batch being landed while the next is written


# Pages are parsed in Python (to follow the cursor, reject malformed bodies and check the field names used), in
# a thread that fetches the next batch of pages, and writes it to spool files, while DuckDB lands this one. DuckDB
# reads a batch's files in parallel: it unnests the items, reads every documented field (in one parse per item
# when the pages are flat), casts and checks them, replaces the resident ID number with an HMAC-SHA256 and masks
# the holder's name, in one statement (landing_sql: straight into the raw table).
def _batches(
    pages: Iterator[Page],
    spool_sets: list[list[IO[bytes]]],
    size: int,
) -> Iterator[Batch]:
    """The pages in batches of up to `size`, fetched and spooled in a thread, into a free set of spool files, while
    DuckDB lands the batch before; a set is free again once its batch has been landed. Each page's line says whether it
    is `unknown` (a field outside FEED_FIELDS, or an item that is no object: landing then keeps `extra`), and a
    batch whether all its pages are flat."""
    done, stop = object(), threading.Event()
    ready: Queue = Queue()  # at most one batch per spool set
    free: Queue = Queue()
    for spools in spool_sets:
        free.put(spools)

    def free_set() -> list[IO[bytes]] | None:
        while not stop.is_set():
            try:
                return free.get(timeout=0.5)
            except Empty:
                continue
        return None  # the landing side gave up

    def fetch() -> None:
        batch, limit = None, PAGES_PER_FILE // 2  # doubled before the first batch: it is 122 pages
        try:
            for page in pages:
                if stop.is_set():  # the landing side gave up: fetch no further
                    return
                if batch is None:
                    if (spools := free_set()) is None:
                        return
                    # DuckDB waits for the first batch: the batches grow from one file's worth to `size`, each
                    # fetched (about twice as fast as landed) while the one before is landed
                    batch, limit = Batch(spools), min(2 * limit, size)
                batch.add(page)
                if batch.pages >= limit:
                    ready.put(batch.close())
                    batch = None
            if batch is not None:
                ready.put(batch.close())
            ready.put(done)
        except BaseException as exc:
            ready.put(exc)

    threading.Thread(target=fetch, name="feed-prefetch", daemon=True).start()
    try:
        while (batch := ready.get()) is not done:
            if isinstance(batch, BaseException):
                raise batch
            yield batch
            free.put(batch.spools)  # landed: its files may be written again
    finally:
        stop.set()


def watermark(con: duckdb.DuckDBPyConnection, resource: str, overlap: dt.timedelta) -> str | None:
    """The updated_since for an incremental pull: the newest landed updated_at minus an overlap window."""
    row = con.execute(
        "SELECT max(max_updated_at) FROM raw.feed_loads WHERE resource = ?", [resource]
    ).fetchone()
    if not row or row[0] is None:
        return None
    return (row[0] - overlap).isoformat()


def landing_sql(resource: str) -> dict[str, str]:
    """The statements that land one batch of a resource, all with the parameters $spool, $load_id and, where the
    resource has personal fields, $ipad and $opad. Usable items go straight into the raw table, in one statement (a
    temporary table in between took a third of the time): "insert", or "insert flat" for a batch of flat pages; a
    batch that has unusable items is read once more, as JSON, to quarantine them."""
    table = FEED_RESOURCES[resource]
    as_json = items_sql(table)

    def insert(items: str) -> str:
        return (
            f"INSERT INTO raw.{table} BY NAME SELECT $load_id AS load_id, * EXCLUDE (reason, item) "
            f"FROM ({items}) WHERE reason IS NULL"
        )

    return {
        "insert": insert(as_json),
        "insert flat": insert(items_sql(table, flat=True)),
        "quarantine": "INSERT INTO raw.quarantine "
        f"SELECT $load_id, 'feed', {sql_literal(resource)}, page_no, split_part(reason, ':', 1), reason, "
        f"{pseudonymised_record_sql(table)} FROM ({as_json}) WHERE reason IS NOT NULL",
    }


def landing_spool(table: str) -> IO[bytes]:
    """Where feed pages (and lookup answers, ingest/lookups.py) wait for DuckDB: a file in memory (/dev/shm) when it
    has room, else in the temporary directory. It has no name, so it is gone with its descriptor, also when the
    process is killed (named ones stayed behind in /dev/shm, holding memory); DuckDB reads it at spool_path."""
    shm = "/dev/shm"
    roomy = (
        os.path.isdir(shm) and (lambda st: st.f_bavail * st.f_frsize)(os.statvfs(shm)) >= SHM_SPOOL_MIN_FREE
    )
    return tempfile.TemporaryFile(prefix=f"landing-{table}-", suffix=".jsonl", dir=shm if roomy else None)


def spool_path(spool: IO[bytes]) -> str:
    """The path at which DuckDB, in this process, reads a spool: its descriptor's (the file has no name)."""
    return f"/proc/self/fd/{spool.fileno()}"


class FlatReadError(RuntimeError):
    """DuckDB could not read a batch of flat pages as structs: for example an item repeats a field, which the
    client's parser (and json_extract_string) accept. The pull is redone with every page read as JSON."""


def land_batch(
    con: duckdb.DuckDBPyConnection,
    sql: dict[str, str],
    params: dict,
    batch: Batch,
    resource: str,
    timing: defaultdict[str, float],
    flat_reads: bool = True,
) -> int:
    """Land one batch; returns how many of its items were quarantined. `timing` adds up where the time went."""
    started = time.perf_counter()
    params = params | {"spool": batch.files}
    first = batch.last_page - batch.pages + 1
    flat = batch.flat and flat_reads
    try:
        landed = scalar(con, sql["insert flat" if flat else "insert"], params)
    except duckdb.Error as exc:
        # DuckDB's message quotes the page it could not read, which may hold personal data: not passed on. A flat
        # read refused as input (an item that repeats a field) is retried as JSON; any other error is not
        refused = flat and isinstance(exc, duckdb.InvalidInputException)
        raise (FlatReadError if refused else RuntimeError)(
            f"{resource} pages {first}-{batch.last_page}: DuckDB could not read them ({type(exc).__name__}; "
            "the page text is not logged, as it may hold personal data)"
        ) from None
    timing["parsing, checking, pseudonymising and inserting"] += time.perf_counter() - started
    if landed == batch.items:
        return 0
    started = time.perf_counter()
    quarantined: int = scalar(con, sql["quarantine"], params)
    timing["quarantining"] += time.perf_counter() - started
    if landed + quarantined != batch.items:
        raise RuntimeError(
            f"{resource} pages {first}-{batch.last_page}: the client read {batch.items} items, but DuckDB landed "
            f"{landed} and quarantined {quarantined}"
        )
    return quarantined


def record_load(
    con: duckdb.DuckDBPyConnection,
    result: LandResult,
    table: str,
    first_rowid: int,
    load_id: str,
    full_refresh: bool,
    started: dt.datetime,
) -> None:
    """Record the pull in raw.feed_loads (its newest updated_at is the next watermark) and count repeated keys,
    over the rows this pull added: the raw table is only appended to, so they are those from `first_rowid` on
    (inside the transaction DuckDB numbers them higher still), whatever an earlier pull under the same load id
    (a rerun) left."""
    result.repeated, max_updated_at = one_row(
        con,
        f"SELECT count(*) - count(DISTINCT {key_sql(table)}), max(updated_at) FROM raw.{table} "
        "WHERE load_id = ? AND rowid >= ?",
        [load_id, first_rowid],
    )
    con.execute(
        "INSERT INTO raw.feed_loads VALUES (?, ?, ?, ?::TIMESTAMPTZ, ?, ?, ?, ?, ?)",
        [
            load_id,
            result.resource,
            full_refresh,
            result.updated_since,
            started,
            clock.now(),
            result.pages,
            result.items,
            max_updated_at,
        ],
    )


def land_resource(
    con: duckdb.DuckDBPyConnection,
    client: FeedClient,
    resource: str,
    load_id: str,
    pseudonym_key: bytes,
    full_refresh: bool = False,
    overlap: dt.timedelta = dt.timedelta(days=1),
) -> LandResult:
    """Pull one resource (changes since the watermark unless full_refresh) and land it, in one transaction; if
    DuckDB cannot read a batch of flat pages as structs (FlatReadError), pull it again reading JSON."""
    attempt = functools.partial(pull, con, client, resource, load_id, pseudonym_key, full_refresh, overlap)
    try:
        return attempt()
    except FlatReadError as exc:
        log.warning("%s; pulling %s again, reading every page as JSON", exc, resource)
    return attempt(flat_reads=False)


def pull(
    con: duckdb.DuckDBPyConnection,
    client: FeedClient,
    resource: str,
    load_id: str,
    pseudonym_key: bytes,
    full_refresh: bool,
    overlap: dt.timedelta,
    flat_reads: bool = True,
) -> LandResult:
    """land_resource's pull; with flat_reads False, every page is read as JSON (landing_sql)."""
    table = FEED_RESOURCES[resource]
    result = LandResult(resource, 0, 0, None if full_refresh else watermark(con, resource, overlap))
    started = clock.now()
    sql = landing_sql(resource)
    ipad, opad = hmac_pads(pseudonym_key)
    params = {"load_id": load_id} | ({"ipad": ipad, "opad": opad} if "$ipad" in sql["insert"] else {})
    # a batch in FILES_PER_BATCH files (or one per DuckDB thread, if more), which DuckDB reads in parallel
    threads = scalar(con, "SELECT current_setting('threads')")
    files = max(FILES_PER_BATCH, threads)
    spool_sets = [[landing_spool(table) for _ in range(files)] for _ in range(SPOOL_SETS)]
    timing: defaultdict[str, float] = defaultdict(float)  # seconds by what they went on
    con.begin()
    try:
        first_rowid = scalar(con, f"SELECT coalesce(max(rowid) + 1, 0) FROM raw.{table}")
        known = frozenset(field for field, _, _ in FEED_FIELDS[table])
        batches = _batches(
            client.fetch_pages(resource, result.updated_since, PAGE_LIMIT, known),
            spool_sets,
            files * PAGES_PER_FILE,
        )
        _land_batches(con, batches, sql, params, result, timing, flat_reads)
        waited = time.perf_counter()
        record_load(con, result, table, first_rowid, load_id, full_refresh, started)
        timing["counting repeated keys"] += time.perf_counter() - waited
        waited = time.perf_counter()
        con.commit()
        timing["committing"] += time.perf_counter() - waited
        crash_point("land:committed")
    except BaseException:
        con.rollback()
        raise
    finally:
        for spool in (spool for spools in spool_sets for spool in spools):
            spool.close()
    _log_landed(result, timing)
    return result


def _land_batches(
    con: duckdb.DuckDBPyConnection,
    batches: Iterator[Batch],
    sql: dict[str, str],
    params: dict[str, Any],
    result: LandResult,
    timing: defaultdict[str, float],
    flat_reads: bool,
) -> None:
    """Land each batch as it comes, counting its pages, items and quarantined items into `result`: the pages are
    fetched in a thread while DuckDB lands the previous batch (it releases the GIL)."""
    waited = time.perf_counter()
    for batch in batches:
        timing["waiting for the feed"] += time.perf_counter() - waited
        result.pages += batch.pages
        result.items += batch.items
        result.quarantined += land_batch(con, sql, params, batch, result.resource, timing, flat_reads)
        waited = time.perf_counter()


def _log_landed(result: LandResult, timing: dict[str, float]) -> None:
    since = f" updated since {result.updated_since}" if result.updated_since else " (full refresh)"
    log.info(
        "landed %s %s in %s pages%s; %s quarantined, %s repeated (%s)",
        f"{result.items - result.quarantined:,}",
        result.resource,
        f"{result.pages:,}",
        since,
        f"{result.quarantined:,}",
        f"{result.repeated:,}",
        ", ".join(f"{what} {seconds:.1f} s" for what, seconds in timing.items()),
    )
