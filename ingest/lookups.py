"""Verify certificates against the feed's batch lookup and record each answer with the time it was checked.

Which certificates are (re)checked: ones never looked up, ones not found last time, and found ones whose
last check is older than `recheck_after` (R-CERT uses the latest known answer, whatever the as-of date).
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import duckdb

from ingest.feed_client import FeedClient

log = logging.getLogger(__name__)

BATCH_SIZE = 500  # the feed's maximum per lookup request (CONTRACT §2)
INSERT_EVERY = 200  # responses (100,000 answers) per INSERT: memory stays bounded at any size

DUE_FOR_LOOKUP_SQL = """
WITH certificates AS (
    SELECT DISTINCT item->>'certificate_no' AS certificate_no
    FROM raw.certificates
    WHERE item->>'certificate_no' IS NOT NULL
),
latest AS (
    SELECT certificate_no, arg_max(found, checked_at) AS found, max(checked_at) AS checked_at
    FROM raw.certificate_lookups
    GROUP BY certificate_no
)
SELECT c.certificate_no
FROM certificates AS c
LEFT JOIN latest AS l USING (certificate_no)
WHERE l.certificate_no IS NULL OR NOT l.found OR l.checked_at < $stale_before
ORDER BY c.certificate_no
"""


@dataclass
class LookupResult:
    checked: int
    found: int
    requests: int


def certificates_due(con: duckdb.DuckDBPyConnection, recheck_after: dt.timedelta) -> list[str]:
    stale_before = dt.datetime.now(dt.UTC) - recheck_after
    return [r[0] for r in con.execute(DUE_FOR_LOOKUP_SQL, {"stale_before": stale_before}).fetchall()]


def verify_lookups(
    con: duckdb.DuckDBPyConnection,
    client: FeedClient,
    load_id: str,
    recheck_after: dt.timedelta = dt.timedelta(days=30),
    in_flight: int = 4,
) -> LookupResult:
    due = certificates_due(con, recheck_after)
    batches = [due[i : i + BATCH_SIZE] for i in range(0, len(due), BATCH_SIZE)]
    local = threading.local()

    def check(batch: list[str]) -> bytes:
        if not hasattr(local, "session"):
            local.session = client.new_session()
        body = client.lookup(batch, session=local.session)
        checked_at = dt.datetime.now(dt.UTC).isoformat().encode()
        return b'{"checked_at":"%s","response":%s}' % (checked_at, body)

    found = 0
    con.begin()
    try:
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="lookup") as pool:
            answers = pool.map(check, batches)
            # answers are stored as they arrive, INSERT_EVERY responses at a time, in one transaction
            while bodies := list(itertools.islice(answers, INSERT_EVERY)):
                rel = con.read_json(
                    io.BytesIO(b"\n".join(bodies)),
                    columns={"checked_at": "TIMESTAMPTZ",
                             "response": "STRUCT(results STRUCT(certificate_no VARCHAR, found BOOLEAN)[])"},
                    format="newline_delimited",
                    maximum_object_size=16 * 1024 * 1024,
                )
                con.register("lookup_batch", rel)
                con.execute(
                    """INSERT INTO raw.certificate_lookups
                       SELECT $load_id, r.certificate_no, r.found, checked_at
                       FROM (SELECT checked_at, unnest(response.results) AS r FROM lookup_batch)""",
                    {"load_id": load_id},
                )
        found = con.execute(
            "SELECT count(*) FILTER (WHERE found) FROM raw.certificate_lookups WHERE load_id = ?", [load_id]
        ).fetchone()[0]
        con.commit()
    except BaseException:
        con.rollback()
        raise
    log.info("looked up %s certificates in %s requests: %s found, %s not found",
             f"{len(due):,}", f"{len(batches):,}", f"{found:,}", f"{len(due) - found:,}")
    return LookupResult(len(due), found, len(batches))
