"""Land feed pages in DuckDB in bulk, pseudonymising personal data before anything is stored.

Pages are parsed once in Python (to follow the cursor and reject malformed bodies), then handed to DuckDB
as newline-delimited JSON held in memory: DuckDB unnests the items, replaces the resident ID number with an
HMAC-SHA256 and masks the holder's name in one INSERT … SELECT. One resource is one transaction, so a pull
that fails half-way leaves nothing of itself visible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from dataclasses import dataclass

import duckdb

from ingest.feed_client import FeedClient
from ingest.warehouse import FEED_KEYS, FEED_RESOURCES

log = logging.getLogger(__name__)

PAGES_PER_BATCH = 100


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The inner and outer padded keys of HMAC-SHA256 (RFC 2104), so that DuckDB can compute the HMAC."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


# Per-table item rewrite applied while landing. HMAC-SHA256(key, id) = sha256(opad || sha256(ipad || id)),
# with $ipad/$opad bound per statement; the holder's name keeps only the surname.
ITEM_SQL = {
    "certificates": """json_merge_patch(item, json_object(
        'holder_id_no', NULL,
        'holder_id_hash', sha256($opad || unhex(sha256($ipad || encode(item->>'holder_id_no')))),
        'holder_name', left(item->>'holder_name', 1)
                       || repeat('*', greatest(length(item->>'holder_name') - 1, 1))))""",
}


# What a feed record must carry for the marts to use it: (field, DuckDB type, required). A record missing a
# required field, or carrying a value that does not cast to its type, is quarantined with the reason; fields
# not listed here (including unknown new ones) are kept as they came, in the raw JSON.
RECORD_SCHEMA: dict[str, list[tuple[str, str, bool]]] = {
    "institutions": [
        ("institution_id", "VARCHAR", True), ("name", "VARCHAR", True), ("institution_type", "VARCHAR", True),
        ("supervising_centre", "VARCHAR", True), ("registered_on", "DATE", True), ("expires_on", "DATE", True),
        ("status", "VARCHAR", True), ("updated_at", "TIMESTAMPTZ", True),
    ],
    "registered_occupations": [
        ("institution_id", "VARCHAR", True), ("occupation_code", "VARCHAR", True),
        ("registered_on", "DATE", True), ("updated_at", "TIMESTAMPTZ", True),
    ],
    "plans": [
        ("plan_no", "VARCHAR", True), ("institution_id", "VARCHAR", True), ("occupation_code", "VARCHAR", True),
        ("level", "INTEGER", True), ("assessment_date", "DATE", True), ("status", "VARCHAR", True),
        ("candidates", "INTEGER", False), ("passed", "INTEGER", False), ("certificates_online", "BOOLEAN", False),
        ("updated_at", "TIMESTAMPTZ", True),
    ],
    "certificates": [
        ("certificate_no", "VARCHAR", True), ("plan_no", "VARCHAR", True), ("institution_id", "VARCHAR", True),
        ("level", "INTEGER", False), ("issued_on", "DATE", True), ("updated_at", "TIMESTAMPTZ", True),
    ],
}


TYPE_NAMES = {"DATE": "a date", "TIMESTAMPTZ": "a timestamp", "INTEGER": "an integer", "BOOLEAN": "true/false"}


def reason_sql(table: str) -> str:
    """A SQL expression over `item`: NULL for a usable record, else why it is quarantined ('; '-joined)."""
    checks = []
    for field, type_, required in RECORD_SCHEMA[table]:
        value = f"(item->>'{field}')"
        if required:
            checks.append(f"CASE WHEN {value} IS NULL OR {value} = '' THEN '{field}: missing' END")
        if type_ != "VARCHAR":
            checks.append(f"CASE WHEN {value} <> '' AND try_cast({value} AS {type_}) IS NULL "
                          f"THEN '{field}: expected {TYPE_NAMES[type_]}, got ' || left({value}, 40) END")
    return "nullif(concat_ws('; ', " + ", ".join(checks) + "), '')"


@dataclass
class LandResult:
    resource: str
    pages: int
    items: int
    updated_since: str | None
    quarantined: int = 0
    repeated: int = 0  # landed items whose key came more than once in this pull (collapsed by staging)


def watermark(con: duckdb.DuckDBPyConnection, resource: str, overlap: dt.timedelta) -> str | None:
    """The updated_since for an incremental pull: the newest landed updated_at minus an overlap window."""
    row = con.execute(
        "SELECT max(max_updated_at) FROM raw.feed_loads WHERE resource = ?", [resource]
    ).fetchone()
    if not row or row[0] is None:
        return None
    return (row[0] - overlap).isoformat()


def land_resource(
    con: duckdb.DuckDBPyConnection,
    client: FeedClient,
    resource: str,
    load_id: str,
    pseudonym_key: bytes,
    full_refresh: bool = False,
    overlap: dt.timedelta = dt.timedelta(days=1),
) -> LandResult:
    table = FEED_RESOURCES[resource]
    updated_since = None if full_refresh else watermark(con, resource, overlap)
    started = dt.datetime.now(dt.UTC)
    ipad, opad = hmac_pads(pseudonym_key)
    item_sql = ITEM_SQL.get(table, "item")
    stage = (
        f"CREATE OR REPLACE TEMP TABLE landing_items AS SELECT page_no, item, {reason_sql(table)} AS reason "
        f"FROM (SELECT page_no, {item_sql} AS item "
        "      FROM (SELECT page_no, unnest(page.items) AS item FROM landing_batch))"
    )
    params = {"ipad": ipad, "opad": opad} if "$ipad" in item_sql else {}
    quarantine = (
        "INSERT INTO raw.quarantine SELECT ?, 'feed', ?, page_no, split_part(reason, ':', 1), reason, item "
        "FROM landing_items WHERE reason IS NOT NULL"
    )
    insert = f"INSERT INTO raw.{table} SELECT ?, page_no, item FROM landing_items WHERE reason IS NULL"
    pages = items = quarantined = 0
    batch: list[bytes] = []

    def flush() -> None:
        nonlocal quarantined
        if not batch:
            return
        rel = con.read_json(
            io.BytesIO(b"\n".join(batch)),
            columns={"page_no": "INTEGER", "page": "STRUCT(items JSON[], next_cursor VARCHAR)"},
            format="newline_delimited",
            maximum_object_size=256 * 1024 * 1024,
        )
        con.register("landing_batch", rel)
        con.execute(stage, params)
        quarantined += con.execute(quarantine, [load_id, resource]).fetchone()[0]
        con.execute(insert, [load_id])
        batch.clear()

    con.begin()
    try:
        for page in client.fetch_pages(resource, updated_since):
            batch.append(b'{"page_no":%d,"page":%s}' % (page.page_no, page.body))
            pages += 1
            items += page.items
            if len(batch) >= PAGES_PER_BATCH:
                flush()
        flush()
        key = ", ".join(f"item->>'{k}'" for k in FEED_KEYS[table])
        repeated = con.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM raw.{table} WHERE load_id = ?",
                               [load_id]).fetchone()[0]
        con.execute(
            f"""INSERT INTO raw.feed_loads
                SELECT ?, ?, ?, ?::TIMESTAMPTZ, ?, now(), ?, ?,
                       (SELECT max(try_cast(item->>'updated_at' AS TIMESTAMPTZ)) FROM raw.{table}
                        WHERE load_id = ?)""",
            [load_id, resource, full_refresh, updated_since, started, pages, items, load_id],
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    since = f" updated since {updated_since}" if updated_since else " (full refresh)"
    log.info("landed %s %s in %s pages%s; %s quarantined, %s repeated", f"{items - quarantined:,}", resource,
             f"{pages:,}", since, f"{quarantined:,}", f"{repeated:,}")
    return LandResult(resource, pages, items, updated_since, quarantined, repeated)
