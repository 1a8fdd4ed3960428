"""HTTP client for the national network's feed: one keep-alive connection per thread, timeouts, bearer token,
retries with backoff."""

from __future__ import annotations

import base64
import http.client
import http.cookiejar
import logging
import random
import ssl
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import certifi
import msgspec
import orjson

log = logging.getLogger(__name__)

RETRY_STATUS = {500, 502, 503, 504}
USER_AGENT = "fujian-renewal-pipeline"  # http.client sends none; some gateways refuse a request without one


def field_names(items: list) -> frozenset[str] | None:
    """The field names used by a page's items (C-speed: about 0.1 ms for 1,000 items); None if one is no object."""
    if not {dict}.issuperset(map(type, items)):
        return None
    return frozenset().union(*items)


def json_object(body: bytes) -> dict:
    """The body parsed in full; ValueError if it is not a JSON object."""
    parsed = orjson.loads(body)
    if not isinstance(parsed, dict):
        raise ValueError("not a JSON object")
    return parsed


@dataclass(frozen=True)
class PageShape:
    """What the client needs of a page: its number of items and next cursor, and how DuckDB may read its items."""

    items: int
    next_cursor: Any
    unknown: bool  # an item is no JSON object, or uses a field outside those the page was read against
    flat: bool  # every item is an object of those fields only, each a string, an integer, a boolean or null


def page_reader(known: frozenset[str]) -> Callable[[bytes], PageShape | None]:
    """Reads a page body: its shape, None for a JSON object without items/next_cursor (fetch_pages names what is
    missing), ValueError for a body that is no JSON object (request_json retries it). First as a flat page of
    `known` fields: msgspec checks that while it parses, in about two thirds of orjson's time, without building
    dicts or field-name sets. Any other body (a new field, an item that is no object, a value that is a float, an
    array or an object, nesting too deep for msgspec, or no JSON at all) goes to orjson."""
    item = msgspec.defstruct(
        "KnownItem",
        [(name, str | int | bool | None, msgspec.UNSET) for name in sorted(known)],
        forbid_unknown_fields=True,
        gc=False,
    )
    decoder = msgspec.json.Decoder(
        msgspec.defstruct("KnownPage", [("items", list[item]), ("next_cursor", Any)], gc=False)
    )

    def read(body: bytes) -> PageShape | None:
        try:
            page = decoder.decode(body)
            return PageShape(len(page.items), page.next_cursor, unknown=False, flat=True)
        except (msgspec.DecodeError, RecursionError):
            parsed = json_object(body)
        items = parsed.get("items")
        if not isinstance(items, list) or "next_cursor" not in parsed:
            return None
        names = field_names(items)
        unknown = names is None or not known.issuperset(names)
        return PageShape(len(items), parsed["next_cursor"], unknown, flat=False)

    return read


class FeedError(RuntimeError):
    """The feed kept failing for one request; the message names the URL and cursor."""


@dataclass
class Page:
    page_no: int
    cursor: str | None
    body: bytes  # the page as received (valid JSON)
    shape: PageShape


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection to the feed, through the proxy the environment names for it (resolved
    once), with the cookies the feed sets (a load balancer's, say) sent back. Built on http.client, not requests:
    the 4,886 pages of the province took 3.4 core-s with it, 5.1 with requests (bench/README.md). Any
    failure closes it, and the next request opens a new one."""

    def __init__(self, base_url: str, timeout: float, headers: dict[str, str]) -> None:
        url = urlsplit(base_url)
        self.https = url.scheme == "https"
        self.origin = f"{url.scheme}://{url.netloc}"
        self.path = url.path.rstrip("/")
        self.address = (url.hostname or "", url.port or (443 if self.https else 80))
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "User-Agent": USER_AGENT} | headers
        self.proxy = None
        proxy = urllib.request.getproxies().get(url.scheme)
        if proxy and not urllib.request.proxy_bypass(url.hostname or ""):
            self.proxy = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            if self.proxy.username is not None:
                credentials = f"{unquote(self.proxy.username)}:{unquote(self.proxy.password or '')}"
                basic = "Basic " + base64.b64encode(credentials.encode()).decode()
                self.proxy_headers = {"Proxy-Authorization": basic}
            else:
                self.proxy_headers = {}
        self.cookies = http.cookiejar.CookieJar()
        self.http: http.client.HTTPConnection | None = None

    def open(self) -> http.client.HTTPConnection:
        context = ssl.create_default_context(cafile=certifi.where()) if self.https else None
        if self.proxy is None:
            if self.https:
                return http.client.HTTPSConnection(*self.address, timeout=self.timeout, context=context)
            return http.client.HTTPConnection(*self.address, timeout=self.timeout)
        proxy = (self.proxy.hostname or "", self.proxy.port or 80)
        if not self.https:  # the proxy is asked for the whole URL
            return http.client.HTTPConnection(*proxy, timeout=self.timeout)
        tunnel = http.client.HTTPSConnection(*proxy, timeout=self.timeout, context=context)
        tunnel.set_tunnel(*self.address, headers=self.proxy_headers)
        return tunnel

    def send(self, method: str, target: str, body: bytes | None = None) -> Response:
        """Send `method` to the feed's `target` (its path under the base URL, and query) and read the whole
        response; OSError (a timeout, a refused or dropped connection) or http.client.HTTPException if it fails."""
        url = self.path + target
        headers = self.headers | ({"Content-Type": "application/json"} if body is not None else {})
        if self.proxy is not None and not self.https:
            url = self.origin + url
            headers |= self.proxy_headers
        if len(self.cookies):
            asked = urllib.request.Request(self.origin + self.path + target)
            self.cookies.add_cookie_header(asked)
            headers |= dict(asked.header_items())
        if self.http is None:
            self.http = self.open()
        try:
            self.http.request(method, url, body=body, headers=headers)
            response = self.http.getresponse()
            data = response.read()  # the whole body, Content-Length bytes, in one read
        except BaseException:
            self.close()
            raise
        if "Set-Cookie" in response.headers:
            self.cookies.extract_cookies(response, urllib.request.Request(self.origin + self.path + target))
        if response.will_close:
            self.close()
        return Response(response.status, response.headers, data)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None


@dataclass
class FeedClient:
    base_url: str
    token: str | None = None
    timeout: float = 30.0
    max_attempts: int = 8
    backoff_base: float = 0.2
    backoff_cap: float = 10.0
    retries: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.local = threading.local()  # each thread's Connection (the lookups ask from several threads)

    def connection(self) -> Connection:
        """This thread's connection to the feed."""
        if not hasattr(self.local, "connection"):
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self.local.connection = Connection(self.base_url, self.timeout, headers)
        return self.local.connection

    def _sleep(self, attempt: int, retry_after: str | None = None) -> None:
        if retry_after:
            try:
                time.sleep(min(float(retry_after), 60.0))
                return
            except ValueError:
                pass
        # Exponential backoff with full jitter.
        time.sleep(random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt)))

    def request_json(
        self,
        method: str,
        target: str,
        what: str,
        body: bytes | None = None,
        parse: Callable[[bytes], Any] = json_object,
    ) -> tuple[bytes, Any]:
        """Send a request to the feed's `target` (path under the base URL, and query) on this thread's connection
        and return (body, parse(body)); retry transient failures and malformed bodies (parse raises ValueError)."""
        url = self.base_url + target
        last = "no attempt made"
        for attempt in range(self.max_attempts):
            try:
                response = self.connection().send(method, target, body)
            except (OSError, http.client.HTTPException) as exc:
                timed_out = isinstance(exc, TimeoutError)
                cause, last = "timeout" if timed_out else "connection", repr(exc)
                self.retries[cause] += 1
                self._sleep(attempt)
                continue
            status = response.status
            if status == 429:
                self.retries["rate_limited"] += 1
                last = "HTTP 429"
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if status in RETRY_STATUS:
                self.retries["server_error"] += 1
                last = f"HTTP {status}"
                self._sleep(attempt)
                continue
            if status in (401, 403):
                raise FeedError(f"{what}: {url} answered {status}; check FEED_TOKEN")
            if status >= 400:
                raise FeedError(
                    f"{what}: {url} answered {status}: {response.body[:200].decode(errors='replace')}"
                )
            try:
                parsed = parse(response.body)
            except ValueError as exc:
                self.retries["malformed"] += 1
                last = f"malformed JSON ({exc})"
                self._sleep(attempt)
                continue
            return response.body, parsed
        raise FeedError(f"{what}: {url} failed {self.max_attempts} times; last error: {last}")

    def fetch_pages(
        self,
        resource: str,
        updated_since: str | None = None,
        limit: int = 1000,
        known: frozenset[str] = frozenset(),
    ) -> Iterator[Page]:
        """Every page of a resource, in order, following next_cursor until it is null, with its shape read against
        `known` (the resource's documented fields: PageShape)."""
        read = page_reader(known)
        path = f"/api/v1/{resource}"
        cursor: str | None = None
        page_no = 0
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if updated_since:
                params["updated_since"] = updated_since
            if cursor:
                params["cursor"] = cursor
            what = f"{resource} page {page_no} (cursor {cursor or 'start'})"
            body, shape = self.request_json("GET", f"{path}?{urlencode(params)}", what, parse=read)
            if shape is None:
                raise FeedError(f"{what}: {self.base_url}{path} returned an object without items/next_cursor")
            yield Page(page_no, cursor, body, shape)
            if not shape.next_cursor:
                return
            cursor = str(shape.next_cursor)
            page_no += 1

    def lookup(self, certificate_nos: list[str]) -> bytes:
        """Batch lookup; returns the response body ({"results": [...]}) with one result per number."""
        target = "/api/v1/certificates/lookup"
        what = f"lookup of {len(certificate_nos)} certificates from {certificate_nos[0]}"
        body = orjson.dumps({"certificate_nos": certificate_nos})
        for attempt in range(self.max_attempts):
            answer, parsed = self.request_json("POST", target, what, body)
            results = parsed.get("results")
            if isinstance(results, list) and len(results) == len(certificate_nos):
                return answer
            self.retries["malformed"] += 1
            self._sleep(attempt)
        raise FeedError(f"{what}: {self.base_url}{target} kept answering without one result per certificate")
