"""HTTP client for the national network's feed, on urllib3 (the engine under requests): a pool per thread (one
keep-alive connection), timeouts, bearer token, and urllib3's Retry for failed connections and transient
statuses, with backoff; a malformed body is retried too. The proxy, CA bundle and cookies are requests' own
(its rules for the environment, its cookie jar)."""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin

import msgspec
import orjson
import requests
import urllib3
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar, get_cookie_header
from urllib3.exceptions import HTTPError, InvalidHeader, MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from types import TracebackType

    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

log = logging.getLogger(__name__)

RATE_LIMITED = 429
RETRY_STATUS = {500, 502, 503, 504}
RETRY_AFTER_MAX = 60  # seconds: a longer Retry-After is more likely a misconfigured gateway than a plan
USER_AGENT = "fujian-renewal-pipeline"  # names the pipeline to the feed's operators, not python-urllib3/x.y


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
    # a type made at run time from `known`: mypy sees only a Struct, hence Any for the page
    decoder = msgspec.json.Decoder(
        msgspec.defstruct("KnownPage", [("items", list[item]), ("next_cursor", Any)], gc=False)  # type: ignore[valid-type]
    )

    def read(body: bytes) -> PageShape | None:
        try:
            page: Any = decoder.decode(body)
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


def underlying(error: BaseException) -> BaseException:
    """The error under urllib3's MaxRetryError (its last one), or the error itself."""
    while isinstance(error, MaxRetryError) and error.reason is not None:
        error = error.reason
    return error


def failure_cause(error: BaseException) -> str:
    """The retries counter's name for a failed exchange: "timeout" or "connection"."""
    error = underlying(error)
    # urllib3's NewConnectionError (refused, unresolvable) subclasses its ConnectTimeoutError
    if isinstance(error, NewConnectionError):
        return "connection"
    return "timeout" if isinstance(error, (Urllib3Timeout, TimeoutError)) else "connection"


def describe(error: BaseException) -> str:
    """The error for a FeedError's message."""
    error = underlying(error)
    return f"{type(error).__name__}: {error}"


class FeedRetry(Retry):
    """urllib3's Retry as the feed client retries: failed connections, bodies cut short and the transient statuses
    (429, 5xx), of any method (a lookup is a POST but only reads), up to the client's max_attempts for one request
    counting the `made` before it (a malformed body, or a redirect, uses one too); its backoff (exponential, full
    jitter) between them, or the feed's Retry-After; each retry counted by cause in the client's `retries`.
    Redirects are followed (a POST stays a POST but on 303), and the Authorization and Cookie headers are dropped
    when one leaves the feed's scheme, host and port."""

    # a Retry-After on 413 would retry a request that can only fail again
    RETRY_AFTER_STATUS_CODES = frozenset({RATE_LIMITED, 503})

    def __init__(self, *args: Any, client: FeedClient, made: int = 0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.client = client
        self.made = made

    @classmethod
    def of(cls, client: FeedClient, made: int) -> FeedRetry:
        return cls(
            total=client.max_attempts - made - 1,
            status_forcelist={RATE_LIMITED, *RETRY_STATUS},
            allowed_methods=None,
            raise_on_status=False,  # the last answer comes back, and request_json names it
            retry_after_max=RETRY_AFTER_MAX,
            client=client,
            made=made,
        )

    def new(self, **kw: Any) -> FeedRetry:
        return super().new(**{"client": self.client, "made": self.made} | kw)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> FeedRetry:
        if error is not None:
            self.client.retries[failure_cause(error)] += 1
        elif response is not None and not response.get_redirect_location():
            self.client.retries["rate_limited" if response.status == RATE_LIMITED else "server_error"] += 1
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_backoff_time(self) -> float:
        return self.client.backoff(self.made + len(self.history) - 1)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        try:
            return super().get_retry_after(response)
        except InvalidHeader:  # neither seconds nor an HTTP date: the backoff instead
            return None


def pool_for(base_url: str) -> urllib3.PoolManager:
    """urllib3's pool for the feed, set from the environment by requests' rules: through the proxy HTTPS_PROXY or
    HTTP_PROXY names for the feed's URL unless NO_PROXY excludes it, the credentials in the proxy's URL sent to
    the proxy alone; the feed's certificate checked against REQUESTS_CA_BUNDLE (or CURL_CA_BUNDLE), else certifi's
    CAs (requests' bundle)."""
    bundle = (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or requests.certs.where()
    )
    tls: dict[str, Any] = {"ca_cert_dir": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle}
    proxy = requests.utils.select_proxy(base_url, requests.utils.get_environ_proxies(base_url))
    if not proxy:
        return urllib3.PoolManager(maxsize=1, **tls)  # one request at a time on a thread
    proxy = requests.utils.prepend_scheme_if_needed(proxy, "http")
    user, password = requests.utils.get_auth_from_url(proxy)
    credentials = urllib3.make_headers(proxy_basic_auth=f"{user}:{password}") if user else None
    return urllib3.ProxyManager(proxy, proxy_headers=credentials, maxsize=1, **tls)


@dataclass
class Channel:
    """A thread's way to the feed: urllib3's pool, and the cookies the feed set (a load balancer's, say)."""

    pool: urllib3.PoolManager
    cookies: RequestsCookieJar = field(default_factory=RequestsCookieJar)

    def headers_for(self, url: str, headers: dict[str, str]) -> dict[str, str]:
        """`headers` with the feed's cookies for `url`, if it set any."""
        if not self.cookies:
            return headers
        cookie = get_cookie_header(self.cookies, as_request(url))
        return headers | {"Cookie": cookie} if cookie else headers

    def keep_cookies(self, url: str, response: BaseHTTPResponse) -> None:
        if "Set-Cookie" in response.headers:
            extract_cookies_to_jar(self.cookies, as_request(url), response)


def as_request(url: str) -> requests.PreparedRequest:
    """What requests' cookie jar needs of a request: its URL and headers."""
    request = requests.PreparedRequest()
    request.prepare_url(url, None)
    request.prepare_headers(None)
    return request


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
        self.local = threading.local()  # each thread's Channel (the lookups ask from several threads)
        self.headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.token:
            self.headers["Authorization"] = f"Bearer {self.token}"
        self.redirect_logged = False

    def channel(self) -> Channel:
        """This thread's way to the feed."""
        if not hasattr(self.local, "channel"):
            self.local.channel = Channel(pool_for(self.base_url))
        return self.local.channel

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (from 0): exponential, with full jitter."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    def _sleep(self, attempt: int) -> None:
        time.sleep(self.backoff(attempt))

    def request_json(
        self,
        method: str,
        target: str,
        what: str,
        body: bytes | None = None,
        parse: Callable[[bytes], Any] = json_object,
    ) -> tuple[bytes, Any]:
        """Send a request to the feed's `target` (path under the base URL, and query) on this thread's Channel and
        return (body, parse(body)). urllib3 retries failed connections, bodies cut short and transient statuses
        (FeedRetry); a malformed body (parse raises ValueError) is retried here, within the same max_attempts."""
        url = self.base_url + target
        channel = self.channel()
        headers = self.headers | ({"Content-Type": "application/json"} if body is not None else {})
        made = 0  # attempts so far, urllib3's retries and redirects included
        last = "no attempt made"
        while made < self.max_attempts:
            response = self._send(channel, method, url, body, headers, made, what)
            history = response.retries.history if response.retries is not None else ()
            made += 1 + len(history)
            where = self._where_answered(channel, url, response, what)
            data = response.data
            self._raise_for_status(what, where, response.status, response.headers.get("Location"), data)
            try:
                parsed = parse(data)
            except ValueError as exc:
                self.retries["malformed"] += 1
                last = f"malformed JSON ({exc})"
                self._sleep(made - 1)
                continue
            return data, parsed
        raise FeedError(f"{what}: {url} failed {self.max_attempts} times; last error: {last}")

    def _send(
        self,
        channel: Channel,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
        made: int,
        what: str,
    ) -> BaseHTTPResponse:
        """One request, which urllib3 retries while attempts are left (FeedRetry, after `made` so far); what it
        gave up on is a FeedError."""
        try:
            return channel.pool.urlopen(
                method,
                url,
                body=body,
                headers=channel.headers_for(url, headers),
                retries=FeedRetry.of(self, made),
                timeout=self.timeout,
            )
        except MaxRetryError as exc:
            raise FeedError(
                f"{what}: {url} failed {self.max_attempts} times; last error: {describe(exc)}"
            ) from exc
        except (HTTPError, OSError) as exc:
            raise FeedError(f"{what}: {url} failed: {describe(exc)}") from exc

    def _where_answered(self, channel: Channel, url: str, response: BaseHTTPResponse, what: str) -> str:
        """`url`, or `url (redirected to …)` when another URL answered at the end of redirects (a Location may be
        relative), for messages; keeps the cookies the answering URL set, and warns once that the feed may have
        moved."""
        history = response.retries.history if response.retries is not None else ()
        answered = url
        for step in history:
            answered = urljoin(answered, step.redirect_location) if step.redirect_location else answered
        where = url if answered == url else f"{url} (redirected to {answered})"
        channel.keep_cookies(answered, response)
        if answered != url and not self.redirect_logged:
            self.redirect_logged = True
            log.warning("%s: %s; the feed may have moved (FEED_URL)", what, where)
        return where

    def _raise_for_status(
        self, what: str, where: str, status: int, location: str | None, data: bytes
    ) -> None:
        """A FeedError for any answer but a success: a transient status FeedRetry ran out of attempts on, a
        redirect not followed, a refused token, any other error."""
        if status == RATE_LIMITED or status in RETRY_STATUS:  # FeedRetry ran out of attempts
            raise FeedError(f"{what}: {where} failed {self.max_attempts} times; last error: HTTP {status}")
        if 300 <= status < 400:
            raise FeedError(
                f"{what}: {where} answered {status} (Location {location!r}), "
                "not a redirect to follow; the feed may have moved (FEED_URL)"
            )
        if status in (401, 403):
            raise FeedError(f"{what}: {where} answered {status}; check FEED_TOKEN")
        if status >= 400:
            raise FeedError(f"{what}: {where} answered {status}: {data[:200].decode(errors='replace')}")

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
