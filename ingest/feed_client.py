"""HTTP client for the national network's feed: one Session, timeouts, bearer token, retries with backoff."""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import msgspec
import orjson
import requests
import urllib3

log = logging.getLogger(__name__)

RETRY_STATUS = {500, 502, 503, 504}


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
class FeedClient:
    base_url: str
    token: str | None = None
    timeout: float = 30.0
    max_attempts: int = 8
    backoff_base: float = 0.2
    backoff_cap: float = 10.0
    retries: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.session = self.new_session()

    def new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if self.token:
            session.headers["Authorization"] = f"Bearer {self.token}"
        # Proxy settings from the environment, resolved once: per request, requests would re-read the
        # environment and ~/.netrc, about a millisecond a page.
        session.proxies = requests.utils.get_environ_proxies(self.base_url)
        session.trust_env = False
        return session

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
        request: requests.PreparedRequest,
        what: str,
        session: requests.Session | None = None,
        parse: Callable[[bytes], Any] = json_object,
    ) -> tuple[bytes, Any]:
        """Send a request (prepared by `session`, the client's own by default) and return (body, parse(body));
        retry transient failures and malformed bodies (parse raises ValueError)."""
        session = session or self.session
        url = request.url
        last = "no attempt made"
        for attempt in range(self.max_attempts):
            # the session's cookies as they are now, as session.request would send (a load balancer's, say)
            request.headers.pop("Cookie", None)
            request.prepare_cookies(session.cookies)
            try:
                response = session.send(request, timeout=self.timeout, stream=True)
                # the whole body in one read (iterating .content reads it in 10 kB pieces)
                body = response.raw.read(decode_content=True)
            except (requests.Timeout, requests.ConnectionError, urllib3.exceptions.HTTPError) as exc:
                timed_out = isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError))
                cause, last = "timeout" if timed_out else "connection", repr(exc)
                self.retries[cause] += 1
                self._sleep(attempt)
                continue
            if response.status_code == 429:
                self.retries["rate_limited"] += 1
                last = "HTTP 429"
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            if response.status_code in RETRY_STATUS:
                self.retries["server_error"] += 1
                last = f"HTTP {response.status_code}"
                self._sleep(attempt)
                continue
            if response.status_code in (401, 403):
                raise FeedError(f"{what}: {url} answered {response.status_code}; check FEED_TOKEN")
            if response.status_code >= 400:
                raise FeedError(
                    f"{what}: {url} answered {response.status_code}: {body[:200].decode(errors='replace')}"
                )
            try:
                parsed = parse(body)
            except ValueError as exc:
                self.retries["malformed"] += 1
                last = f"malformed JSON ({exc})"
                self._sleep(attempt)
                continue
            return body, parsed
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
        url = f"{self.base_url}/api/v1/{resource}"
        # each page's request is a copy of one prepared request with its own query: preparing each page's
        # request anew (session.get) took a third of requests' CPU time, about 1 s at province size
        template = self.session.prepare_request(requests.Request("GET", url))
        cursor: str | None = None
        page_no = 0
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if updated_since:
                params["updated_since"] = updated_since
            if cursor:
                params["cursor"] = cursor
            what = f"{resource} page {page_no} (cursor {cursor or 'start'})"
            request = template.copy()
            request.url = f"{template.url}?{urlencode(params)}"
            body, shape = self.request_json(request, what, parse=read)
            if shape is None:
                raise FeedError(f"{what}: {url} returned an object without items/next_cursor")
            yield Page(page_no, cursor, body, shape)
            if not shape.next_cursor:
                return
            cursor = str(shape.next_cursor)
            page_no += 1

    def lookup(self, certificate_nos: list[str], session: requests.Session | None = None) -> bytes:
        """Batch lookup; returns the response body ({"results": [...]}) with one result per number."""
        url = f"{self.base_url}/api/v1/certificates/lookup"
        what = f"lookup of {len(certificate_nos)} certificates from {certificate_nos[0]}"
        session = session or self.session
        request = session.prepare_request(
            requests.Request("POST", url, json={"certificate_nos": certificate_nos})
        )
        for attempt in range(self.max_attempts):
            body, parsed = self.request_json(request, what, session=session)
            results = parsed.get("results")
            if isinstance(results, list) and len(results) == len(certificate_nos):
                return body
            self.retries["malformed"] += 1
            self._sleep(attempt)
        raise FeedError(f"{what}: {url} kept answering without one result per certificate")
