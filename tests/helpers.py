"""Helpers that several test modules share (import them from here, not from conftest)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class LocalSmtp:
    """A real SMTP server on loopback (aiosmtpd) that keeps every message it receives."""

    port: int
    received: list = field(default_factory=list)

    @property
    def airflow_connection(self) -> str:
        """The AIRFLOW_CONN_SMTP_DEFAULT value that points Airflow's SMTP hook and notifier here."""
        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.port,
                           "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "renewal@example.org"}})

    def messages_to(self, address: str) -> list[str]:
        return [e.content.decode("utf-8", "replace") for e in self.received if address in e.rcpt_tos]


@contextlib.contextmanager
def local_smtp() -> Iterator[LocalSmtp]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = LocalSmtp(port)

    class Handler:
        async def handle_DATA(self, _server, _session, envelope):
            server.received.append(envelope)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()
