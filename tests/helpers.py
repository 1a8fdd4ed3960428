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
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": self.port,
                "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "renewal@example.org"},
            }
        )

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


def rule_ids() -> set[str]:
    """The rule ids of ../shared/RULES.md when it is beside the repository, else those docs/rules.md maps."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    rules = root.parent / "shared" / "RULES.md"
    text = rules.read_text() if rules.exists() else (root / "docs" / "rules.md").read_text()
    ids = set(re.findall(r"R-[A-Z]+(?:-\d)?", text))
    return {i for i in ids if not any(j.startswith(f"{i}-") for j in ids)}  # R-REJECT is R-REJECT-1..3


def dbt_unit_tests() -> list[dict]:
    """Every dbt unit test defined in the project's YAML files."""
    import yaml

    from pipeline.settings import DBT_PROJECT_DIR

    found = []
    for path in sorted((DBT_PROJECT_DIR / "models").rglob("*.yml")):
        found += yaml.safe_load(path.read_text()).get("unit_tests") or []
    return found


def build_empty_warehouse(folder):
    """A warehouse whose raw layer has no rows and whose models are built `--empty`: what dbt unit tests need to
    know every relation's columns (about 10 s). Returns the dbt result."""
    from pathlib import Path

    from ingest.calendar import load_calendar
    from ingest.centre_records import load_centre_records
    from ingest.warehouse import connect

    folder = Path(folder)
    (folder / "centre_records").mkdir(parents=True, exist_ok=True)
    con = connect(folder / "warehouse.duckdb")
    try:
        load_centre_records(con, folder / "centre_records", "empty")
        load_calendar(con)
    finally:
        con.close()
    return run_dbt(folder, "build", "--empty", "--exclude", "resource_type:test", "resource_type:unit_test")


def run_dbt(warehouse, *args: str):
    """dbt on the warehouse in `warehouse` (a folder), D = 2026-11-25, its own target folder."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from pipeline.settings import DBT_PROJECT_DIR

    env = dict(
        os.environ,
        WAREHOUSE_DB=str(Path(warehouse) / "warehouse.duckdb"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            *args,
            "--profiles-dir",
            ".",
            "--vars",
            "{as_of: '2026-11-25'}",
            "--target-path",
            str(Path(warehouse) / "dbt-target"),
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
