"""Verify certificates against the feed's batch lookup and record each answer with the time it was checked."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

import duckdb

from ingest import clock
from ingest.feed_client import FeedClient
from ingest.land import landing_spool, spool_path
from ingest.warehouse import scalar

log = logging.getLogger(__name__)

BATCH_SIZE = 500  # the feed's maximum per lookup request (docs/contract.md §2)
REQUESTS_PER_WINDOW = 200  # 100,000 certificate numbers in Python at a time, and one INSERT of their answers

# Which certificates are (re)checked: ones never looked up, ones not found last time, and found ones whose last
# check is older than `recheck_after` (R-CERT uses the latest known answer, whatever the as-of date).
# The certificates due, numbered, into a temp table: Python takes them a window at a time (a province
# has millions; as a list of Python strings 4.9 M took about 400 MB).
DUE_FOR_LOOKUP_SQL = """
CREATE OR REPLACE TEMP TABLE lookups_due AS
WITH settled AS (  -- certificates whose latest answer is neither 'not found' nor older than $stale_before
    SELECT certificate_no
    FROM raw.certificate_lookups
    GROUP BY certificate_no
    HAVING NOT coalesce(NOT arg_max(found, checked_at) OR max(checked_at) < $stale_before, false)
)
-- numbered as they come: ordering 14.5 M numbers (a first run at 6,000 institutions) took 3.5 s and 70 MB more
SELECT row_number() OVER () - 1 AS n, certificate_no
FROM (
    -- the anti-join on every landed row, then DISTINCT on what is left (few, on an ordinary day): DISTINCT first
    -- cost 0.5 s a day at province size
    SELECT DISTINCT certificate_no
    FROM raw.certificates ANTI JOIN settled USING (certificate_no)
    WHERE certificate_no IS NOT NULL
)
"""


@dataclass
class LookupResult:
    checked: int
    found: int
    requests: int


def certificates_due(con: duckdb.DuckDBPyConnection, recheck_after: dt.timedelta) -> int:
    """Number the certificates due for a lookup into the temp table lookups_due(n, certificate_no)."""
    stale_before = clock.now() - recheck_after
    con.execute(DUE_FOR_LOOKUP_SQL, {"stale_before": stale_before})
    return scalar(con, "SELECT count(*) FROM lookups_due")


def due_window(con: duckdb.DuckDBPyConnection, start: int, size: int) -> list[list[str]]:
    """Certificates start..start+size-1 of lookups_due, in batches of one lookup request each."""
    numbers = [
        r[0]
        for r in con.execute(
            "SELECT certificate_no FROM lookups_due WHERE n >= ? AND n < ? ORDER BY n", [start, start + size]
        ).fetchall()
    ]
    return [numbers[i : i + BATCH_SIZE] for i in range(0, len(numbers), BATCH_SIZE)]


def answer_fetcher(client: FeedClient) -> Callable[[list[str]], bytes]:
    """A function that asks the feed about one batch (on its thread's connection) and stamps the answer."""

    def fetch(batch: list[str]) -> bytes:
        body = client.lookup(batch)
        checked_at = clock.now().isoformat().encode()
        return b'{"checked_at":"%s","response":%s}' % (checked_at, body)

    return fetch


def record_answers(
    con: duckdb.DuckDBPyConnection, bodies: list[bytes], load_id: str, spool: IO[bytes]
) -> None:
    """Insert every certificate's answer of these responses into raw.certificate_lookups, in one statement; the
    responses pass through `spool`, a file, not a registered Python object: within the run's one transaction,
    DuckDB kept every window's registered object alive until the commit (7 MB a window, 1 GB at 6,000
    institutions)."""
    spool.seek(0)
    spool.truncate()
    spool.write(b"\n".join(bodies))
    spool.flush()
    con.execute(
        """INSERT INTO raw.certificate_lookups
           SELECT $load_id, r.certificate_no, r.found, checked_at
           FROM (SELECT checked_at, unnest(response.results) AS r
                 FROM read_json($spool, format = 'newline_delimited', maximum_object_size = 16777216,
                                columns = {'checked_at': 'TIMESTAMPTZ',
                                           'response': 'STRUCT(results STRUCT(certificate_no VARCHAR, found BOOLEAN)[])'}))""",
        {"load_id": load_id, "spool": spool_path(spool)},
    )


def verify_lookups(
    con: duckdb.DuckDBPyConnection,
    client: FeedClient,
    load_id: str,
    recheck_after: dt.timedelta = dt.timedelta(days=30),
    in_flight: int = 4,
) -> LookupResult:
    """Look up every certificate due, `in_flight` requests at a time, in one transaction."""
    due = certificates_due(con, recheck_after)
    window = BATCH_SIZE * REQUESTS_PER_WINDOW
    fetch = answer_fetcher(client)
    requests = 0
    con.begin()
    try:
        with (
            ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="lookup") as pool,
            landing_spool("certificate_lookups") as spool,
        ):
            for start in range(0, due, window):
                batches = due_window(con, start, window)
                record_answers(con, list(pool.map(fetch, batches)), load_id, spool)
                requests += len(batches)
        found: int = scalar(
            con,
            "SELECT count(*) FILTER (WHERE found) FROM raw.certificate_lookups WHERE load_id = ?",
            [load_id],
        )
        con.execute("DROP TABLE lookups_due")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    log.info(
        "looked up %s certificates in %s requests: %s found, %s not found",
        f"{due:,}",
        f"{requests:,}",
        f"{found:,}",
        f"{due - found:,}",
    )
    return LookupResult(due, found, requests)
