"""The feed client's HTTP (ingest/feed_client.py, on urllib3 with requests' proxy and cookie rules): one keep-alive
connection per thread, the feed's cookies sent back, the environment's proxy used (an HTTPS feed through a
CONNECT proxy, with the proxy's credentials), a dropped connection or a body cut short retried on a new one,
redirects followed without taking the token to another host. Against small scripted HTTP servers, which record
what they were sent."""

from __future__ import annotations

import base64
import json
import select
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ingest.feed_client import FeedClient, FeedError
from tests.helpers import self_signed

PAGES = [
    {"items": [{"certificate_no": "C1"}], "next_cursor": "1"},
    {"items": [{"certificate_no": "C2"}], "next_cursor": None},
]


class Recorded(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict] = []  # what each request came with
        self.drop_next = 0  # requests to answer by closing the connection
        self.cut_next = 0  # requests to answer with half the body, then closing the connection
        self.redirect_to: str | None = None  # where a target under /moved/ is sent, its rest appended
        self.redirect_status = 302
        self.send_location = True


class Handler(BaseHTTPRequestHandler):
    server: Recorded
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.record()
        if self.redirected():
            return
        if self.server.drop_next:
            self.server.drop_next -= 1
            self.close_connection = True
            return
        cursor = int(self.path.partition("cursor=")[2] or 0)
        body = json.dumps(PAGES[cursor]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if cursor == 0:
            self.send_header("Set-Cookie", "lb=node-2; Path=/")
        self.end_headers()
        if self.server.cut_next:
            self.server.cut_next -= 1
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def do_POST(self) -> None:
        """A lookup: every certificate number asked is found."""
        asked = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.record(asked)
        if self.redirected():
            return
        results = [{"certificate_no": n, "found": True} for n in asked["certificate_nos"]]
        body = json.dumps({"results": results}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def record(self, body: dict | None = None) -> None:
        self.server.requests.append(
            {
                "method": self.command,
                "target": self.path,
                "client_port": self.client_address[1],
                "cookie": self.headers.get("Cookie"),
                "authorization": self.headers.get("Authorization"),
                "proxy_authorization": self.headers.get("Proxy-Authorization"),
                "body": body,
            }
        )

    def redirected(self) -> bool:
        """Answer a target under /moved/ with the server's redirect."""
        if self.server.redirect_to is None or not self.path.startswith("/moved/"):
            return False
        self.send_response(self.server.redirect_status)
        if self.server.send_location:
            self.send_header("Location", self.server.redirect_to + self.path.removeprefix("/moved"))
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True


def serving(srv: socketserver.BaseServer) -> Iterator:
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def server() -> Iterator[Recorded]:
    yield from serving(Recorded())


@pytest.fixture
def other_server() -> Iterator[Recorded]:
    yield from serving(Recorded())


@pytest.fixture
def no_proxy_env(monkeypatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def url(srv: Recorded) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def certificate_nos(client: FeedClient) -> list[str]:
    return [
        json.loads(page.body)["items"][0]["certificate_no"] for page in client.fetch_pages("certificates")
    ]


def test_pages_come_on_one_connection_with_the_token_and_the_feeds_cookie(server, monkeypatch):
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    assert certificate_nos(FeedClient(url(server), "secret")) == ["C1", "C2"]
    first, second = server.requests
    assert first["target"] == "/api/v1/certificates?limit=1000"
    assert second["target"] == "/api/v1/certificates?limit=1000&cursor=1"
    assert first["client_port"] == second["client_port"]  # kept alive
    assert {r["authorization"] for r in server.requests} == {"Bearer secret"}
    assert (first["cookie"], second["cookie"]) == (None, "lb=node-2")


def test_a_dropped_connection_is_retried_on_a_new_one(server, monkeypatch):
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    server.drop_next = 1
    client = FeedClient(url(server), "secret", backoff_base=0.01)
    assert certificate_nos(client) == ["C1", "C2"]
    assert client.retries["connection"] == 1
    dropped, retried, _ = server.requests
    assert dropped["target"] == retried["target"]
    assert dropped["client_port"] != retried["client_port"]

    server.drop_next = 3
    with pytest.raises(FeedError, match=r"certificates page 0 \(cursor start\): .* failed 3 times"):
        certificate_nos(FeedClient(url(server), "secret", max_attempts=3, backoff_base=0.01))


def test_a_body_cut_short_is_retried(server, no_proxy_env):
    server.cut_next = 1
    client = FeedClient(url(server), "secret", backoff_base=0.01)
    assert certificate_nos(client) == ["C1", "C2"]
    assert client.retries == {"connection": 1}
    assert [r["target"] for r in server.requests][:2] == ["/api/v1/certificates?limit=1000"] * 2


def test_the_environments_proxy_is_asked_for_the_whole_url(server, monkeypatch):
    """The recording server stands in for the proxy: an HTTP proxy is sent the whole URL of the feed."""
    monkeypatch.setenv("http_proxy", url(server))
    monkeypatch.setenv("no_proxy", "")
    assert certificate_nos(FeedClient("http://feed.invalid/base", "secret")) == ["C1", "C2"]
    assert [r["target"] for r in server.requests] == [
        "http://feed.invalid/base/api/v1/certificates?limit=1000",
        "http://feed.invalid/base/api/v1/certificates?limit=1000&cursor=1",
    ]

    monkeypatch.setenv("no_proxy", "feed.invalid")  # bypassed: the feed itself is asked (and does not exist)
    with pytest.raises(FeedError, match="failed 2 times"):
        list(FeedClient("http://feed.invalid/base", max_attempts=2, backoff_base=0.01).fetch_pages("plans"))
    assert len(server.requests) == 2


def test_a_redirect_on_the_feeds_host_is_followed_with_the_token(server, no_proxy_env):
    server.redirect_to = ""  # a relative Location: /api/v1/…
    assert certificate_nos(FeedClient(url(server) + "/moved", "secret")) == ["C1", "C2"]
    assert [(r["target"], r["authorization"], r["cookie"]) for r in server.requests] == [
        ("/moved/api/v1/certificates?limit=1000", "Bearer secret", None),
        ("/api/v1/certificates?limit=1000", "Bearer secret", None),
        ("/moved/api/v1/certificates?limit=1000&cursor=1", "Bearer secret", "lb=node-2"),
        ("/api/v1/certificates?limit=1000&cursor=1", "Bearer secret", "lb=node-2"),
    ]


def test_a_redirect_to_another_host_does_not_take_the_token_along(server, other_server, no_proxy_env):
    """requests drops the Authorization header when a redirect leaves the feed's host; the pages still come."""
    server.redirect_to = f"http://localhost:{other_server.server_address[1]}"
    client = FeedClient(url(server) + "/moved", "secret")
    assert certificate_nos(client) == ["C1", "C2"]
    assert {r["authorization"] for r in server.requests} == {"Bearer secret"}
    assert [r["target"] for r in other_server.requests] == [
        "/api/v1/certificates?limit=1000",
        "/api/v1/certificates?limit=1000&cursor=1",
    ]
    assert {r["authorization"] for r in other_server.requests} == {None}
    assert client.retries == {}


def test_a_redirected_lookup_stays_a_post_with_its_body(server, no_proxy_env):
    """A 307 (or 301/302: urllib3 changes the method only on 303) sends the lookup on as a POST with its numbers,
    where a browser, and requests, would send a GET without them."""
    server.redirect_to, server.redirect_status = url(server), 302
    client = FeedClient(url(server) + "/moved", "secret")
    assert json.loads(client.lookup(["C1", "C2"])) == {
        "results": [{"certificate_no": "C1", "found": True}, {"certificate_no": "C2", "found": True}]
    }
    assert [(r["method"], r["target"], r["body"]) for r in server.requests] == [
        ("POST", "/moved/api/v1/certificates/lookup", {"certificate_nos": ["C1", "C2"]}),
        ("POST", "/api/v1/certificates/lookup", {"certificate_nos": ["C1", "C2"]}),
    ]


def test_a_redirect_without_a_location_fails_at_once_naming_the_url(server, no_proxy_env):
    """A 3xx that cannot be followed is no malformed answer to retry: the first one fails, naming the URL."""
    server.redirect_to, server.send_location = "", False
    client = FeedClient(url(server) + "/moved", "secret", backoff_base=0.01)
    with pytest.raises(
        FeedError,
        match=rf"certificates page 0 \(cursor start\): {url(server)}/moved/api/v1/certificates\?limit=1000 "
        r"answered 302 \(Location None\)",
    ):
        certificate_nos(client)
    assert len(server.requests) == 1
    assert client.retries == {}


def test_redirects_in_a_loop_fail_naming_the_url(server, no_proxy_env):
    server.redirect_to = url(server) + "/moved"  # /moved/x -> /moved/moved/x -> ...
    client = FeedClient(url(server) + "/moved", "secret", max_attempts=4)
    with pytest.raises(
        FeedError, match=rf"{url(server)}/moved/api/v1/plans\?limit=1000 failed 4 times; .*redirect"
    ):
        list(client.fetch_pages("plans"))
    assert len(server.requests) == 4
    assert client.retries == {}


# ---- an HTTPS feed through the environment's proxy -------------------------------------------------------

FEED_HOST = "feed.invalid"  # resolved by no one: only the proxy's CONNECT reaches the feed


class TunnelHandler(socketserver.StreamRequestHandler):
    """An HTTP proxy that knows only CONNECT: it records the request and its headers, opens the tunnel to the
    same port on 127.0.0.1, and relays bytes both ways until one side closes."""

    server: ConnectProxy

    def handle(self) -> None:
        request_line = self.rfile.readline().decode("latin-1").strip()
        headers = {}
        while (line := self.rfile.readline().decode("latin-1").strip()) != "":
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        method, target, _ = request_line.split(" ", 2)
        self.server.connects.append({"method": method, "target": target} | headers)
        if method != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        upstream = socket.create_connection(("127.0.0.1", int(target.rpartition(":")[2])))
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        with upstream:
            ends = [self.connection, upstream]
            while True:
                readable, _, _ = select.select(ends, [], [], 5)
                if not readable:
                    return
                for end in readable:
                    try:
                        data = end.recv(65536)
                    except ConnectionResetError:  # the client closed its pooled connection: the tunnel ends
                        return
                    if not data:
                        return
                    (upstream if end is self.connection else self.connection).sendall(data)


class ConnectProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), TunnelHandler)
        self.connects: list[dict] = []


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[Recorded, Path]]:
    """The recording server over TLS with a certificate for FEED_HOST, and that certificate."""
    cert, key = self_signed(tmp_path, FEED_HOST)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    srv = Recorded()
    srv.socket = context.wrap_socket(srv.socket, server_side=True)
    for running in serving(srv):
        yield running, cert


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    yield from serving(ConnectProxy())


def test_an_https_feed_is_reached_through_the_environments_proxy_with_its_credentials(
    tls_server, proxy, no_proxy_env, monkeypatch
):
    """HTTPS_PROXY names the proxy, with credentials (percent-encoded): requests tunnels through it with CONNECT,
    sends the credentials to the proxy only, and checks the feed's certificate against REQUESTS_CA_BUNDLE."""
    feed, cert = tls_server
    monkeypatch.setenv("HTTPS_PROXY", f"http://feed-user:p%40ss@127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    port = feed.server_address[1]
    assert certificate_nos(FeedClient(f"https://{FEED_HOST}:{port}", "secret")) == ["C1", "C2"]
    basic = "Basic " + base64.b64encode(b"feed-user:p@ss").decode()
    assert [(c["method"], c["target"], c.get("proxy-authorization")) for c in proxy.connects] == [
        ("CONNECT", f"{FEED_HOST}:{port}", basic)  # one tunnel, kept alive for both pages
    ]
    assert "authorization" not in proxy.connects[0]  # the token goes inside the tunnel only
    assert [(r["target"], r["authorization"], r["proxy_authorization"]) for r in feed.requests] == [
        ("/api/v1/certificates?limit=1000", "Bearer secret", None),
        ("/api/v1/certificates?limit=1000&cursor=1", "Bearer secret", None),
    ]


def test_an_https_feed_whose_certificate_is_not_trusted_fails_naming_the_url(
    tls_server, proxy, no_proxy_env, monkeypatch
):
    """Without REQUESTS_CA_BUNDLE the self-signed certificate is refused (certifi's CAs): no page, a clear error."""
    feed, _ = tls_server
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    base = f"https://{FEED_HOST}:{feed.server_address[1]}"
    client = FeedClient(base, "secret", max_attempts=2, backoff_base=0.01)
    with pytest.raises(
        FeedError,
        match=rf"{base}/api/v1/plans\?limit=1000 failed 2 times; last error: .*CERTIFICATE_VERIFY_FAILED",
    ):
        list(client.fetch_pages("plans"))
    assert feed.requests == []
