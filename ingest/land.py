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
from ingest.warehouse import FEED_RESOURCES

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


@dataclass
class LandResult:
    resource: str
    pages: int
    items: int
    updated_since: str | None


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
    insert = (
        f"INSERT INTO raw.{table} SELECT $load_id, page_no, {item_sql} "
        "FROM (SELECT page_no, unnest(page.items) AS item FROM landing_batch)"
    )
    params = {"load_id": load_id}
    if "$ipad" in item_sql:
        params |= {"ipad": ipad, "opad": opad}
    pages = items = 0
    batch: list[bytes] = []

    def flush() -> None:
        if not batch:
            return
        rel = con.read_json(
            io.BytesIO(b"\n".join(batch)),
            columns={"page_no": "INTEGER", "page": "STRUCT(items JSON[], next_cursor VARCHAR)"},
            format="newline_delimited",
            maximum_object_size=256 * 1024 * 1024,
        )
        con.register("landing_batch", rel)
        con.execute(insert, params)
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
    log.info("landed %s %s in %s pages%s", f"{items:,}", resource, f"{pages:,}", since)
    return LandResult(resource, pages, items, updated_since)
