"""A mail catcher for the demo profile: an SMTP server that accepts every message, keeps it as a .eml file and
logs one line per message (sender, recipients, subject), so that reminders and alerts can be seen without a
real mail server. `python -m mock_feed.mail_catcher --port 1025 --out /mail`"""

from __future__ import annotations

import argparse
import email
import email.header
import email.policy
import logging
import socketserver
import sys
import threading
from pathlib import Path

log = logging.getLogger("mail_catcher")


def _subject(message: bytes) -> str:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    return str(parsed.get("Subject", ""))


class _Session(socketserver.StreamRequestHandler):
    """One SMTP conversation (RFC 5321's minimum: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT)."""

    server: _Server

    def _reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self._reply("220 mail-catcher ESMTP")
        sender, recipients = "", []
        while line := self.rfile.readline(65536):
            command = line.decode("utf-8", "replace").strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self._reply("250 mail-catcher")
            elif verb == "MAIL":
                sender, recipients = command.partition(":")[2].strip(" <>"), []
                self._reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.partition(":")[2].strip(" <>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                self.server.keep(sender, recipients, self._read_data())
                self._reply("250 OK")
            elif verb in ("RSET", "NOOP"):
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 not implemented")

    def _read_data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline(1 << 20)) not in (b".\r\n", b".\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], out: Path) -> None:
        super().__init__(address, _Session)
        self.out = out
        self.count = len(list(out.glob("*.eml")))
        self.lock = threading.Lock()

    def keep(self, sender: str, recipients: list[str], message: bytes) -> None:
        with self.lock:
            self.count += 1
            path = self.out / f"{self.count:06d}.eml"
        path.write_bytes(message)
        log.info("mail %s from %s to %s: %s", path.name, sender, ", ".join(recipients), _subject(message))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    args.out.mkdir(parents=True, exist_ok=True)
    with _Server((args.host, args.port), args.out) as server:
        log.info("catching mail on %s:%d into %s", args.host, args.port, args.out)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
