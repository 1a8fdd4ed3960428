"""HTTP stand-in for 技能人才评价工作网 (CONTRACT §2): paged resources, certificate lookup, fault injection.

Every item is serialised to JSON once at start-up, so a page is a join of pre-built byte strings and the
feed is never what limits ingest.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

log = logging.getLogger("mock_feed")

RESOURCES = {
    # resource path -> (file, key field)
    "institutions": ("institutions.jsonl", "institution_id"),
    "registered-occupations": ("registered_occupations.jsonl", ("institution_id", "occupation_code")),
    "plans": ("plans.jsonl", "plan_no"),
    "certificates": ("certificates.jsonl", "certificate_no"),
}
MAX_LIMIT = 1000
MAX_LOOKUP = 500


@dataclass
class FaultOptions:
    fail_rate: float = 0.0
    rate_limit: float = 0.0  # requests per second; 0 = off
    latency_ms: int = 0
    malformed_rate: float = 0.0
    duplicate_rate: float = 0.0
    seed: int = 0


class Resource:
    """One resource's items, sorted by (updated_at, key), each pre-serialised."""

    def __init__(self, records: list[dict], key: str | tuple[str, ...]) -> None:
        # Imperfect records (a missing key or timestamp) are served too, first, as the real network would.
        def updated(r: dict) -> float:
            try:
                return parse_ts(r["updated_at"])
            except (KeyError, TypeError, ValueError):
                return 0.0

        def sort_key(r: dict) -> tuple:
            k = tuple(r.get(f) for f in key) if isinstance(key, tuple) else (r.get(key),)
            return (updated(r), *(str(v) for v in k))

        records.sort(key=sort_key)
        self.updated_at = [updated(r) for r in records]
        self.items = [
            json.dumps({k: v for k, v in r.items() if not k.startswith("_")}, ensure_ascii=False,
                       separators=(",", ":")).encode()
            for r in records
        ]


class FeedData:
    def __init__(self, data_dir: Path) -> None:
        self.resources: dict[str, Resource] = {}
        self.queryable: dict[str, bool] = {}
        for name, (filename, key) in RESOURCES.items():
            path = data_dir / filename
            records = []
            if path.exists():
                with open(path, encoding="utf-8") as fh:
                    records = [json.loads(line) for line in fh if line.strip()]
            if name == "certificates":
                self.queryable = {r.get("certificate_no"): bool(r.get("_queryable", True)) for r in records}
            self.resources[name] = Resource(records, key)


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
                found = self.server.data.queryable.get(parts[3], False)
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
            nos = json.loads(raw)["certificate_nos"]
            if not isinstance(nos, list) or len(nos) > MAX_LOOKUP:
                raise ValueError
        except (ValueError, KeyError, TypeError):
            self.send_json(400, {"error": f"body must be {{\"certificate_nos\": [... up to {MAX_LOOKUP}]}}"})
            return
        q = self.server.data.queryable
        results = [{"certificate_no": n, "found": q.get(n, False)} for n in nos]
        self.send_body(200, self.maybe_truncate(json.dumps({"results": results}).encode()))

    def page(self, name: str, query: dict[str, list[str]]) -> None:
        res = self.server.data.resources[name]
        try:
            limit = int(query.get("limit", ["500"])[0])
            cursor = int(query.get("cursor", ["0"])[0] or 0)
            if not 1 <= limit <= MAX_LIMIT or cursor < 0:
                raise ValueError
        except ValueError:
            self.send_json(400, {"error": f"limit must be 1..{MAX_LIMIT} and cursor a value from next_cursor"})
            return
        if cursor == 0 and "updated_since" in query:
            # Items updated at or after updated_since; the cursor then carries the position.
            try:
                since = parse_ts(query["updated_since"][0])
            except ValueError:
                self.send_json(400, {"error": "updated_since must be an ISO 8601 timestamp"})
                return
            cursor = bisect.bisect_left(res.updated_at, since)
        end = min(cursor + limit, len(res.items))
        items = res.items[cursor:end]
        if items and self.server.chance(self.server.faults.duplicate_rate):
            self.server.count("duplicated")
            extra = res.items[max(0, cursor - 3):cursor] or items[:1]
            items = list(extra) + list(items)
        next_cursor = f'"{end}"'.encode() if end < len(res.items) else b"null"
        body = b'{"items":[' + b",".join(items) + b'],"next_cursor":' + next_cursor + b"}"
        self.send_body(200, self.maybe_truncate(body))


def serve(data_dir: Path, host: str, port: int, token: str | None, faults: FaultOptions) -> None:
    data = FeedData(data_dir)
    server = FeedServer((host, port), data, token, faults)
    sizes = ", ".join(f"{len(r.items):,} {n}" for n, r in data.resources.items())
    log.info("mock feed serving %s on http://%s:%d (%s)", data_dir, host, server.server_port, sizes)
    print(f"mock feed ready on http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


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
                    "responses": {"200": {"description": '{"items": [...], "next_cursor": "..." | null}'},
                                  "401": {"description": "missing or wrong bearer token"}},
                }
            }
            for name in RESOURCES
        },
        "/api/v1/certificates/lookup": {
            "post": {
                "summary": f"Batch lookup of up to {MAX_LOOKUP} certificate numbers",
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {"certificate_nos": {
                        "type": "array", "maxItems": MAX_LOOKUP, "items": {"type": "string"}}}}}}},
                "responses": {"200": {"description": '{"results": [{"certificate_no", "found"}]}'}},
            }
        },
        "/api/v1/certificates/{certificate_no}": {
            "get": {
                "summary": "Single certificate lookup",
                "parameters": [{"name": "certificate_no", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "found"}, "404": {"description": "not found"}},
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "security": [],
                             "responses": {"200": {"description": "ok"}}}},
    },
}
