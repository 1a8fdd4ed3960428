"""HTTP stand-in for 技能人才评价工作网 (docs/contract.md §2): paged resources, certificate lookup, fault injection.

At start-up DuckDB orders each resource's lines by (updated_at, key) and writes them, minus `_` fields, to a
flat file in a temporary directory; the server keeps only each item's byte offset and update time (8 bytes
each), so a page is one read and a province-scale dataset loads in seconds in bounded memory. Certificate
lookups use a sorted array of the queryable numbers' hashes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import duckdb
import numpy as np
import orjson

from mock_feed.timeline import view

log = logging.getLogger("mock_feed")

RESOURCES = {
    # resource path -> (file, key fields)
    "institutions": ("institutions.jsonl", ("institution_id",)),
    "registered-occupations": ("registered_occupations.jsonl", ("institution_id", "occupation_code")),
    "plans": ("plans.jsonl", ("plan_no",)),
    "certificates": ("certificates.jsonl", ("certificate_no",)),
}
MAX_LIMIT = 1000
MAX_LOOKUP = 500
FEED_TIMEZONE = "Asia/Shanghai"  # a timestamp without an offset is read as Beijing time
MEMORY_LIMIT = "1GB"


@dataclass
class FaultOptions:
    fail_rate: float = 0.0
    rate_limit: float = 0.0  # requests per second; 0 = off
    latency_ms: int = 0
    malformed_rate: float = 0.0
    duplicate_rate: float = 0.0
    seed: int = 0


# The item as served: the stored line, re-serialised without its `_` fields only when it has any.
SERVED_ITEM = """CASE WHEN contains(json, '"_') THEN json_merge_patch(json, '{' || array_to_string(list_transform(
    list_filter(json_keys(json), lambda k: starts_with(k, '_')), lambda k: to_json(k) || ':null'), ',') || '}')
    ELSE json END"""


class SortedItems:
    """One resource's items in (updated_at, key) order: a flat file of the serialised items, each followed by
    a comma, with their byte offsets and update times in memory (8 bytes each), so a page is one read."""

    def __init__(self, db: duckdb.DuckDBPyConnection, table: str, path: Path, chunk: int = 20_000) -> None:
        """Write `table` (updated_us, item; rowid order) to `path`."""
        arrays = db.execute(
            f"SELECT updated_us, strlen(item) AS size FROM {table} ORDER BY rowid"
        ).fetchnumpy()
        self.updated_us = np.asarray(arrays["updated_us"], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(np.asarray(arrays["size"], dtype=np.int64))])
        with open(path, "wb") as out:
            for start in range(0, len(self.updated_us), chunk):
                text = db.execute(
                    f"SELECT string_agg(item, '' ORDER BY rowid) FROM {table} WHERE rowid >= ? AND rowid < ?",
                    [start, start + chunk],
                ).fetchone()[0]
                out.write(text.encode())
            if out.tell() != self.offsets[-1]:
                raise RuntimeError(f"{path}: wrote {out.tell()} bytes, expected {self.offsets[-1]}")
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return len(self.updated_us)

    def position(self, since: float) -> int:
        """The first position updated at or after `since` (epoch seconds)."""
        return int(np.searchsorted(self.updated_us, round(since * 1_000_000), side="left"))

    def fragment(self, start: int, end: int) -> bytes:
        """Items start..end-1 as a comma-separated JSON fragment."""
        if end <= start:
            return b""
        first, last = int(self.offsets[start]), int(self.offsets[end])
        return os.pread(self._fd, last - first - 1, first)  # without the last comma

    def close(self) -> None:
        os.close(self._fd)


class FeedData:
    """The dataset as served. DuckDB reads, orders and serialises it once at start-up (spilling to a temporary
    directory instead of holding it in memory); pages are then read from flat files (SortedItems)."""

    def __init__(self, data_dir: Path) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="mock-feed-"))
        self.resources: dict[str, SortedItems] = {}
        try:
            self._load(data_dir)
        except BaseException:  # a failed or interrupted load leaves nothing in the temporary directory
            self.close()
            raise

    def _load(self, data_dir: Path) -> None:
        queryable = []
        db = duckdb.connect(str(self._dir / "load.duckdb"), config={"memory_limit": MEMORY_LIMIT})
        try:
            db.execute(f"SET TimeZone = '{FEED_TIMEZONE}'")
            db.execute(f"SET temp_directory = '{self._dir / 'tmp'}'")
            for name, (filename, key) in RESOURCES.items():
                path = data_dir / filename
                source = (
                    f"read_json_objects('{path}', format='newline_delimited')"
                    if path.exists()
                    else "(SELECT NULL::JSON AS json WHERE false)"
                )
                # str() of a missing key was 'None' in the first (pure Python) server: kept, for the same order
                keys = [f"coalesce(json_extract_string(json, '$.{k}'), 'None')" for k in key]
                db.execute(f"""CREATE TABLE items AS
                    SELECT coalesce(epoch_us(try_cast(json_extract_string(json, '$.updated_at') AS TIMESTAMPTZ)), 0)
                               AS updated_us,
                           {SERVED_ITEM} || ',' AS item, {keys[0]} AS k0,
                           coalesce(try_cast(json_extract(json, '$._queryable') AS BOOLEAN), true) AS queryable
                    FROM {source}
                    ORDER BY updated_us, {", ".join(keys)}""")
                self.resources[name] = SortedItems(db, "items", self._dir / f"{name}.items")
                if name == "certificates":
                    result = db.execute("SELECT k0 FROM items WHERE queryable")
                    while rows := result.fetchmany(100_000):
                        queryable.append(
                            np.fromiter((hash(r[0]) for r in rows), dtype=np.int64, count=len(rows))
                        )
                db.execute("DROP TABLE items")
        finally:
            db.close()
            (self._dir / "load.duckdb").unlink(missing_ok=True)
        # the public lookup: Python hashes of the queryable certificate numbers, sorted for a binary search
        self._queryable = np.sort(np.concatenate(queryable)) if queryable else np.zeros(0, dtype=np.int64)
        self.sizes = {name: len(items) for name, items in self.resources.items()}

    def found(self, certificate_nos: list[str]) -> list[bool]:
        if not certificate_nos:
            return []
        hashes = np.fromiter(map(hash, certificate_nos), dtype=np.int64, count=len(certificate_nos))
        at = np.searchsorted(self._queryable, hashes)
        hit = at < len(self._queryable)
        hit[hit] = self._queryable[at[hit]] == hashes[hit]
        return hit.tolist()

    def close(self) -> None:
        for items in self.resources.values():
            items.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def parse_ts(ts: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp ('+' may arrive as a space from an unencoded query string)."""
    t = dt.datetime.fromisoformat(ts.strip().replace(" ", "+"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
    return t.timestamp()


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], data: FeedData, token: str | None, faults: FaultOptions):
        super().__init__(address, FeedHandler)
        self.data = data
        self.token = token
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.lock = threading.Lock()
        self.request_counts: dict[str, int] = {}
        self.window_start = time.monotonic()
        self.window_count = 0

    def count(self, name: str) -> None:
        with self.lock:
            self.request_counts[name] = self.request_counts.get(name, 0) + 1

    def chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self.lock:
            return self.rng.random() < rate

    def over_rate_limit(self) -> bool:
        if self.faults.rate_limit <= 0:
            return False
        with self.lock:
            now = time.monotonic()
            if now - self.window_start >= 1.0:
                self.window_start, self.window_count = now, 0
            self.window_count += 1
            return self.window_count > self.faults.rate_limit


class FeedHandler(BaseHTTPRequestHandler):
    server: FeedServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out as two writes; without this, Nagle's algorithm holds the body back until
        # the client's delayed ACK of the headers (about 40 ms a response)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # -- plumbing ------------------------------------------------------------------------------------
    def send_body(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(obj, ensure_ascii=False).encode(), headers)

    def guard(self, name: str) -> bool:
        """Auth and injected faults; True when the request may proceed."""
        srv = self.server
        srv.count(name)
        if srv.token and self.headers.get("Authorization") != f"Bearer {srv.token}":
            self.send_json(401, {"error": "missing or wrong bearer token"})
            return False
        if srv.faults.latency_ms:
            time.sleep(srv.faults.latency_ms / 1000)
        if srv.over_rate_limit():
            srv.count("429")
            self.send_json(429, {"error": "rate limited"}, {"Retry-After": "1"})
            return False
        if srv.chance(srv.faults.fail_rate):
            srv.count("5xx")
            self.send_json(srv.rng.choice([500, 503]), {"error": "injected failure"})
            return False
        return True

    def maybe_truncate(self, body: bytes) -> bytes:
        if self.server.chance(self.server.faults.malformed_rate):
            self.server.count("malformed")
            return body[: max(1, len(body) // 2)]
        return body

    # -- routes --------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        if url.path == "/healthz":
            self.send_json(200, {"status": "ok"})
        elif url.path == "/openapi.json":
            self.send_json(200, OPENAPI)
        elif url.path == "/stats":
            with self.server.lock:
                self.send_json(200, dict(self.server.request_counts))
        elif len(parts) == 4 and parts[:3] == ["api", "v1", "certificates"]:
            if self.guard("certificate"):
                found = self.server.data.found([parts[3]])[0]
                self.send_json(200 if found else 404, {"certificate_no": parts[3], "found": found})
        elif len(parts) == 3 and parts[:2] == ["api", "v1"] and parts[2] in RESOURCES:
            if self.guard(parts[2]):
                self.page(parts[2], parse_qs(url.query))
        else:
            self.send_json(404, {"error": f"no route {url.path}"})

    def do_POST(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if url.path != "/api/v1/certificates/lookup":
            self.send_json(404, {"error": f"no route {url.path}"})
            return
        if not self.guard("lookup"):
            return
        try:
            nos = orjson.loads(raw)["certificate_nos"]
            if not isinstance(nos, list) or len(nos) > MAX_LOOKUP or not all(isinstance(n, str) for n in nos):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            self.send_json(400, {"error": f'body must be {{"certificate_nos": [... up to {MAX_LOOKUP}]}}'})
            return
        found = self.server.data.found(nos)
        results = [{"certificate_no": n, "found": f} for n, f in zip(nos, found, strict=True)]
        self.send_body(200, self.maybe_truncate(orjson.dumps({"results": results})))

    def page(self, name: str, query: dict[str, list[str]]) -> None:
        data = self.server.data
        try:
            limit = int(query.get("limit", ["500"])[0])
            cursor = int(query.get("cursor", ["0"])[0] or 0)
            if not 1 <= limit <= MAX_LIMIT or cursor < 0:
                raise ValueError
        except ValueError:
            self.send_json(
                400, {"error": f"limit must be 1..{MAX_LIMIT} and cursor a value from next_cursor"}
            )
            return
        if cursor == 0 and "updated_since" in query:
            # Items updated at or after updated_since; the cursor then carries the position.
            try:
                since = parse_ts(query["updated_since"][0])
            except ValueError:
                self.send_json(400, {"error": "updated_since must be an ISO 8601 timestamp"})
                return
            cursor = data.resources[name].position(since)
        res = data.resources[name]
        total = len(res)
        end = min(cursor + limit, total)
        items = res.fragment(cursor, end)
        if items and self.server.chance(self.server.faults.duplicate_rate):
            # items of the previous page again (on the first page, its first item twice)
            self.server.count("duplicated")
            extra = res.fragment(max(0, cursor - 3), cursor) if cursor else res.fragment(0, 1)
            items = extra + b"," + items
        next_cursor = f'"{end}"'.encode() if end < total else b"null"
        body = b'{"items":[' + items + b'],"next_cursor":' + next_cursor + b"}"
        self.send_body(200, self.maybe_truncate(body))


def serve(
    data_dir: Path,
    host: str,
    port: int,
    token: str | None,
    faults: FaultOptions,
    as_of: dt.date | None = None,
) -> None:
    """Serve a dataset directory, or a timeline (mock_feed/timeline.py) as it stood on `as_of`."""
    started = time.perf_counter()
    # SIGTERM (how every caller stops the feed) exits through FeedData's clean-up and `finally`, which remove the
    # serialised dataset, also while it is still loading
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if as_of is not None:
        with tempfile.TemporaryDirectory(prefix="mock-feed-view-") as day:
            view(data_dir, as_of, Path(day))
            data = FeedData(Path(day))  # FeedData copies what it serves: the view can go at once
    else:
        data = FeedData(data_dir)
    try:
        server = FeedServer((host, port), data, token, faults)
    except BaseException:
        data.close()
        raise
    sizes = ", ".join(f"{n:,} {name}" for name, n in data.sizes.items())
    log.info(
        "mock feed serving %s on http://%s:%d (%s; loaded in %.1f s)",
        data_dir,
        host,
        server.server_port,
        sizes,
        time.perf_counter() - started,
    )
    print(f"mock feed ready on http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        server.server_close()
        data.close()


def _page_params() -> list[dict]:
    return [
        {"name": "updated_since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
    ]


OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "技能人才评价工作网 (mock)", "version": "1.0"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        **{
            f"/api/v1/{name}": {
                "get": {
                    "summary": f"Page through {name}, ordered by (updated_at, key)",
                    "parameters": _page_params(),
                    "responses": {
                        "200": {"description": '{"items": [...], "next_cursor": "..." | null}'},
                        "401": {"description": "missing or wrong bearer token"},
                    },
                }
            }
            for name in RESOURCES
        },
        "/api/v1/certificates/lookup": {
            "post": {
                "summary": f"Batch lookup of up to {MAX_LOOKUP} certificate numbers",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "certificate_nos": {
                                        "type": "array",
                                        "maxItems": MAX_LOOKUP,
                                        "items": {"type": "string"},
                                    }
                                },
                            }
                        }
                    }
                },
                "responses": {"200": {"description": '{"results": [{"certificate_no", "found"}]}'}},
            }
        },
        "/api/v1/certificates/{certificate_no}": {
            "get": {
                "summary": "Single certificate lookup",
                "parameters": [
                    {"name": "certificate_no", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "found"}, "404": {"description": "not found"}},
            }
        },
        "/healthz": {
            "get": {"summary": "Liveness", "security": [], "responses": {"200": {"description": "ok"}}}
        },
    },
}
