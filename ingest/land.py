"""Land feed pages in DuckDB in bulk, checking each record and pseudonymising personal data before anything is
stored; one resource is one transaction, so a pull that fails half-way leaves nothing of itself visible."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from queue import Full, Queue
from typing import IO

import duckdb

from ingest.feed_client import FeedClient, Page
from ingest.warehouse import FEED_KEYS, FEED_RESOURCES

log = logging.getLogger(__name__)

PAGES_PER_BATCH = 100


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer padded keys of HMAC-SHA256 (RFC 2104), so that DuckDB can compute the HMAC."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


# Fields read from each item beyond RECORD_SCHEMA's: the personal data that is pseudonymised while landing.
PERSONAL_FIELDS = {"certificates": ["holder_id_no", "holder_name"]}


def pseudonymised(rows: str, id_no: str, name: str) -> tuple[str, str]:
    """Wrap the query `rows` (page_no, item, v) so that the resident ID number `id_no` becomes holder_id_hash and
    the `name` keeps its surname only; returns the query and the SQL expression of the rewritten item."""
    # HMAC-SHA256(key, id) = sha256(opad || sha256(ipad || id)), with $ipad/$opad bound per statement
    hashed = (
        f"SELECT *, sha256($opad || unhex(sha256($ipad || encode({id_no})))) AS id_hash, "
        f"left({name}, 1) || repeat('*', greatest(length({name}) - 1, 1)) AS masked_name FROM ({rows})"
    )
    # The fast path replaces the two values in the item's text. When the text is not in the plain form that makes
    # that exact (escapes, spacing, a value that is not a string), json_merge_patch rewrites the item instead.
    fast = f"""SELECT *, replace(
                CASE WHEN {id_no} IS NULL THEN item
                     ELSE replace(item, '"holder_id_no":"' || {id_no} || '"', '"holder_id_hash":"' || id_hash || '"')
                END,
                '"holder_name":"' || coalesce({name}, '') || '"', '"holder_name":"' || coalesce(masked_name, '') || '"'
            ) AS fast FROM ({hashed})"""
    item = f"""CASE WHEN {id_no} IS NULL AND {name} IS NULL AND NOT contains(item, '"holder_')
                    THEN item
                    WHEN NOT contains(fast, '"holder_id_no"')
                         AND ({id_no} IS NULL OR contains(fast, '"holder_id_hash":"' || id_hash || '"'))
                         AND ({name} IS NULL OR contains(fast, '"holder_name":"' || masked_name || '"'))
                    THEN fast
                    ELSE json_merge_patch(item, json_object('holder_id_no', NULL, 'holder_id_hash', id_hash,
                                                            'holder_name', masked_name)) END"""
    return fast, item


# What a feed record must carry for the marts to use it: (field, DuckDB type, required). A record missing a
# required field, or carrying a value that does not cast to its type, is quarantined with the reason; fields
# not listed here (including unknown new ones) are kept as they came, in the raw JSON.
RECORD_SCHEMA: dict[str, list[tuple[str, str, bool]]] = {
    "institutions": [
        ("institution_id", "VARCHAR", True),
        ("name", "VARCHAR", True),
        ("institution_type", "VARCHAR", True),
        ("supervising_centre", "VARCHAR", True),
        ("registered_on", "DATE", True),
        ("expires_on", "DATE", True),
        ("status", "VARCHAR", True),
        ("updated_at", "TIMESTAMPTZ", True),
    ],
    "registered_occupations": [
        ("institution_id", "VARCHAR", True),
        ("occupation_code", "VARCHAR", True),
        ("registered_on", "DATE", True),
        ("updated_at", "TIMESTAMPTZ", True),
    ],
    "plans": [
        ("plan_no", "VARCHAR", True),
        ("institution_id", "VARCHAR", True),
        ("occupation_code", "VARCHAR", True),
        ("level", "INTEGER", True),
        ("assessment_date", "DATE", True),
        ("status", "VARCHAR", True),
        ("candidates", "INTEGER", False),
        ("passed", "INTEGER", False),
        ("certificates_online", "BOOLEAN", False),
        ("updated_at", "TIMESTAMPTZ", True),
    ],
    "certificates": [
        ("certificate_no", "VARCHAR", True),
        ("plan_no", "VARCHAR", True),
        ("institution_id", "VARCHAR", True),
        ("level", "INTEGER", False),
        ("issued_on", "DATE", True),
        ("updated_at", "TIMESTAMPTZ", True),
    ],
}


TYPE_NAMES = {
    "DATE": "a date",
    "TIMESTAMPTZ": "a timestamp",
    "INTEGER": "an integer",
    "BOOLEAN": "true/false",
}


def extracted_fields(table: str) -> list[str]:
    return [f for f, _, _ in RECORD_SCHEMA[table]] + PERSONAL_FIELDS.get(table, [])


def field_sql(table: str, field: str) -> str:
    """The field's text in `v`, the list that json_extract_string made of the item in one parse."""
    return f"v[{extracted_fields(table).index(field) + 1}]"


def reason_sql(table: str) -> str:
    """A SQL expression over `v`: NULL for a usable record, else why it is quarantined ('; '-joined)."""
    checks = []
    for field, type_, required in RECORD_SCHEMA[table]:
        value = field_sql(table, field)
        if required:
            checks.append(f"CASE WHEN {value} IS NULL OR {value} = '' THEN '{field}: missing' END")
        if type_ != "VARCHAR":
            checks.append(
                f"CASE WHEN {value} <> '' AND try_cast({value} AS {type_}) IS NULL "
                f"THEN '{field}: expected {TYPE_NAMES[type_]}, got ' || left({value}, 40) END"
            )
    return "nullif(concat_ws('; ', " + ", ".join(checks) + "), '')"


def stage_sql(table: str) -> str:
    """One batch of pages (the file $spool) → the temp table landing_items(page_no, item, reason, key,
    updated_at): each item parsed once, checked, and pseudonymised."""
    paths = ", ".join(f"'$.{f}'" for f in extracted_fields(table))
    key = " || chr(31) || ".join(f"coalesce({field_sql(table, k)}, '')" for k in FEED_KEYS[table])
    rows = (
        f"SELECT page_no, item, json_extract_string(item, [{paths}]) AS v "
        "FROM (SELECT page_no, unnest(page.items) AS item FROM read_json($spool, format='newline_delimited', "
        "columns={'page_no': 'INTEGER', 'page': 'STRUCT(items JSON[], next_cursor VARCHAR)'}, "
        "maximum_object_size=268435456))"
    )
    item = "item"
    if table in PERSONAL_FIELDS:
        rows, item = pseudonymised(rows, field_sql(table, "holder_id_no"), field_sql(table, "holder_name"))
    return (
        f"CREATE OR REPLACE TEMP TABLE landing_items AS "
        f"SELECT page_no, {item} AS item, {reason_sql(table)} AS reason, {key} AS key, "
        f"try_cast({field_sql(table, 'updated_at')} AS TIMESTAMPTZ) AS updated_at FROM ({rows})"
    )


@dataclass
class LandResult:
    resource: str
    pages: int
    items: int
    updated_since: str | None
    quarantined: int = 0
    repeated: int = 0  # landed items whose key came more than once in this pull (collapsed by staging)


# Pages are parsed once in Python (to follow the cursor and reject malformed bodies), in a thread that fetches the
# next batch of pages while DuckDB lands this one. The batch goes to DuckDB as newline-delimited JSON: DuckDB
# unnests the items, reads the fields it checks in one parse per item, replaces the resident ID number with an
# HMAC-SHA256 and masks the holder's name, in one statement (stage_sql).
def _batches(pages: Iterator[Page], size: int = PAGES_PER_BATCH) -> Iterator[list[tuple[bytes, int]]]:
    """Batches of (page line for read_json, item count), fetched one batch ahead in a thread."""
    done, stop = object(), threading.Event()
    queue: Queue = Queue(maxsize=1)

    def put(value) -> bool:
        while not stop.is_set():
            try:
                queue.put(value, timeout=0.5)
                return True
            except Full:
                continue
        return False  # the landing side gave up

    def fetch() -> None:
        batch: list[tuple[bytes, int]] = []
        try:
            for page in pages:
                batch.append((b'{"page_no":%d,"page":%s}' % (page.page_no, page.body), page.items))
                if len(batch) >= size:
                    if not put(batch):
                        return
                    batch = []
            put(batch) and put(done)
        except BaseException as exc:
            put(exc)

    threading.Thread(target=fetch, name="feed-prefetch", daemon=True).start()
    try:
        while (batch := queue.get()) is not done:
            if isinstance(batch, BaseException):
                raise batch
            if batch:
                yield batch
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


def landing_sql(table: str) -> dict[str, str]:
    """The statements that land one batch: stage it, quarantine the unusable items, insert the rest, keep keys."""
    return {
        "stage": stage_sql(table),
        "quarantine": "INSERT INTO raw.quarantine SELECT ?, 'feed', ?, page_no, split_part(reason, ':', 1), "
        "reason, item FROM landing_items WHERE reason IS NOT NULL",
        "insert": f"INSERT INTO raw.{table} SELECT ?, page_no, item FROM landing_items WHERE reason IS NULL",
        "keep_keys": "INSERT INTO landing_keys SELECT key, updated_at FROM landing_items WHERE reason IS NULL",
    }


def landing_spool(table: str) -> IO[bytes]:
    """Where pages wait for DuckDB: a file in memory (/dev/shm), readable by this user only, deleted on close."""
    return tempfile.NamedTemporaryFile(
        prefix=f"landing-{table}-",
        suffix=".jsonl",
        dir="/dev/shm" if os.path.isdir("/dev/shm") else None,
    )


def land_batch(
    con: duckdb.DuckDBPyConnection,
    sql: dict[str, str],
    params: dict,
    spool: IO[bytes],
    batch: list[bytes],
    load_id: str,
    resource: str,
) -> int:
    """Land one batch of page lines; returns how many of its items were quarantined."""
    # DuckDB reads a file by itself, in parallel; a Python file object would hold the GIL while it reads
    spool.seek(0)
    spool.truncate()
    spool.write(b"\n".join(batch))
    spool.flush()
    con.execute(sql["stage"], params | {"spool": spool.name})
    quarantined = con.execute(sql["quarantine"], [load_id, resource]).fetchone()[0]
    con.execute(sql["insert"], [load_id])
    con.execute(sql["keep_keys"])
    return quarantined


def record_load(
    con: duckdb.DuckDBPyConnection, result: LandResult, load_id: str, full_refresh: bool, started: dt.datetime
) -> None:
    """Record the pull in raw.feed_loads (its newest updated_at is the next watermark) and count repeated keys."""
    result.repeated, max_updated_at = con.execute(
        "SELECT count(*) - count(DISTINCT key), max(updated_at) FROM landing_keys"
    ).fetchone()
    con.execute(
        "INSERT INTO raw.feed_loads VALUES (?, ?, ?, ?::TIMESTAMPTZ, ?, now(), ?, ?, ?)",
        [
            load_id,
            result.resource,
            full_refresh,
            result.updated_since,
            started,
            result.pages,
            result.items,
            max_updated_at,
        ],
    )
    con.execute("DROP TABLE landing_keys")


def land_resource(
    con: duckdb.DuckDBPyConnection,
    client: FeedClient,
    resource: str,
    load_id: str,
    pseudonym_key: bytes,
    full_refresh: bool = False,
    overlap: dt.timedelta = dt.timedelta(days=1),
) -> LandResult:
    """Pull one resource (changes since the watermark unless full_refresh) and land it, in one transaction."""
    table = FEED_RESOURCES[resource]
    result = LandResult(resource, 0, 0, None if full_refresh else watermark(con, resource, overlap))
    started = dt.datetime.now(dt.UTC)
    sql = landing_sql(table)
    ipad, opad = hmac_pads(pseudonym_key)
    params = {"ipad": ipad, "opad": opad} if "$ipad" in sql["stage"] else {}
    spool = landing_spool(table)
    timing = Counter()
    con.begin()
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE landing_keys (key VARCHAR, updated_at TIMESTAMPTZ)")
        # pages are fetched in a thread while DuckDB lands the previous batch (it releases the GIL)
        waited = time.perf_counter()
        for batch in _batches(client.fetch_pages(resource, result.updated_since)):
            busy = time.perf_counter()
            timing["waiting for the feed"] += busy - waited
            result.pages += len(batch)
            result.items += sum(n for _, n in batch)
            result.quarantined += land_batch(
                con, sql, params, spool, [body for body, _ in batch], load_id, resource
            )
            waited = time.perf_counter()
            timing["landing"] += waited - busy
        record_load(con, result, load_id, full_refresh, started)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        spool.close()
    since = f" updated since {result.updated_since}" if result.updated_since else " (full refresh)"
    log.info(
        "landed %s %s in %s pages%s; %s quarantined, %s repeated (%s)",
        f"{result.items - result.quarantined:,}",
        resource,
        f"{result.pages:,}",
        since,
        f"{result.quarantined:,}",
        f"{result.repeated:,}",
        ", ".join(f"{what} {seconds:.1f} s" for what, seconds in timing.items()),
    )
    return result
