"""The feed client's own HTTP connection (ingest/feed_client.py `Connection`, on http.client): one keep-alive
connection per thread, the feed's cookies sent back, the environment's proxy used, a dropped connection retried
on a new one. Against a small scripted HTTP server, which records what it was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ingest.feed_client import FeedClient, FeedError

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


class Handler(BaseHTTPRequestHandler):
    server: Recorded
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append(
            {
                "target": self.path,
                "client_port": self.client_address[1],
                "cookie": self.headers.get("Cookie"),
                "authorization": self.headers.get("Authorization"),
            }
        )
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
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[Recorded]:
    srv = Recorded()
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


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
