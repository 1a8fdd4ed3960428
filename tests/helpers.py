"""Helpers that several test modules share (import them from here, not from conftest, which holds the fixtures)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mock_feed.server import FaultOptions, FeedData, FeedServer
from pipeline.settings import DBT_PROJECT_DIR, Settings

AS_OF = dt.date(2026, 11, 25)
TOKEN = "test-token"
DBT_SKIP_TESTS = ("--exclude", "resource_type:unit_test", "resource_type:test")  # seeds and models only


class RunningFeed:
    """The mock feed over real HTTP on loopback, in a thread, with the given faults."""

    def __init__(self, data: Path, faults: FaultOptions | None = None, token: str | None = TOKEN) -> None:
        self.server = FeedServer(("127.0.0.1", 0), FeedData(data), token, faults or FaultOptions())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.server.data.close()


def make_settings(tmp: Path, dataset: Path, feed_url: str) -> Settings:
    return Settings(
        warehouse_dir=tmp / "warehouse",
        exports_dir=tmp / "exports",
        data_dir=dataset,
        feed_url=feed_url,
        feed_token=TOKEN,
        pseudonym_key=b"test-key",
    )


def dbt_build(
    settings: Settings, as_of: dt.date, *extra: str, command: str = "build"
) -> subprocess.CompletedProcess:
    """dbt `command` (build by default) on the settings' warehouse for D = as_of."""
    return run_dbt(settings.warehouse_dir, *command.split(), *extra, as_of=as_of)


def run_pipeline_steps(settings: Settings, as_of: dt.date = AS_OF, data_tests: bool = True) -> None:
    """The DAG's steps in order, without Airflow (the DAG itself is exercised by test_end_to_end)."""
    ingest_steps(settings, as_of)
    result = (
        dbt_build(settings, as_of, *DBT_SKIP_TESTS)
        if not data_tests
        else dbt_build(settings, as_of, "--exclude", "resource_type:unit_test")
    )
    assert result.returncode == 0, result.stdout[-4000:]


def ingest_steps(settings: Settings, as_of: dt.date = AS_OF) -> None:
    """The DAG's steps before dbt: the feed, the calendar, the centre's records and the certificate lookups."""
    from pipeline import steps

    load_id = f"{as_of}-test"
    steps.extract_feed(as_of, load_id, settings=settings)
    steps.load_calendar(settings=settings)
    steps.load_centre(as_of, load_id, settings=settings)
    steps.verify_certificates(as_of, load_id, settings=settings)


def private_copy(settings: Settings, folder: Path) -> Settings:
    """Settings on a private copy of a built warehouse (tests that change it must not touch the shared one)."""
    import shutil
    from dataclasses import replace

    copy = replace(settings, warehouse_dir=folder / "warehouse", exports_dir=folder / "exports")
    copy.warehouse_dir.mkdir(parents=True)
    shutil.copy(settings.warehouse_db, copy.warehouse_db)
    return copy


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file below a folder, by relative path."""
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def require_system_tool(name: str) -> str:
    """The path of a program from Debian's packages; fails under CI (REQUIRE_SYSTEM_PACKAGES, set by .ci/run,
    which installs them), else skips."""
    import shutil

    path = shutil.which(name)
    if path is None:
        if os.environ.get("REQUIRE_SYSTEM_PACKAGES"):
            pytest.fail(f"{name} is required (REQUIRE_SYSTEM_PACKAGES) but not installed")
        pytest.skip(f"{name} not installed (see .ci/run for the Debian packages)")
    return path


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


def rule_ids(text: str | None = None) -> set[str]:
    """The rule ids that docs/rules.md, the project's statement of the rules, names (or that `text` names)."""
    import re

    if text is None:
        text = (Path(__file__).resolve().parent.parent / "docs" / "rules.md").read_text(encoding="utf-8")
    ids = set(re.findall(r"R-[A-Z]+(?:-\d)?", text))
    return {i for i in ids if not any(j.startswith(f"{i}-") for j in ids)}  # R-REJECT is R-REJECT-1..3


def dbt_unit_tests() -> list[dict]:
    """Every dbt unit test defined in the project's YAML files."""
    import yaml

    found = []
    for path in sorted((DBT_PROJECT_DIR / "models").rglob("*.yml")):
        found += yaml.safe_load(path.read_text()).get("unit_tests") or []
    return found


def build_empty_warehouse(folder):
    """A warehouse whose raw layer has no rows and whose models are built `--empty`: what dbt unit tests need to
    know every relation's columns (about 10 s). Returns the dbt result."""
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


def run_dbt(warehouse, *args: str, as_of: dt.date = AS_OF) -> subprocess.CompletedProcess:
    """dbt on the warehouse in `warehouse` (a folder), D = as_of, its own target folder."""
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
            f"{{as_of: '{as_of.isoformat()}'}}",
            "--target-path",
            str(Path(warehouse) / "dbt-target"),
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def reminder_row(**overrides) -> dict:
    """One row of marts.reminders with the columns the CSV and the workbook use (a window_open reminder of
    福州), with `overrides` applied."""
    row = {
        "institution_id": "35000001",
        "institution_name": "福州闽江电气有限公司",
        "institution_type": "employer",
        "registration_no": "闽技鉴备〔2023〕0001号",
        "reminder_type": "window_open",
        "reminder_type_zh": "续期申请期已开启",
        "audience": "institution",
        "audience_zh": "评价机构",
        "reminder_type_sort_order": 2,
        "first_due_on": dt.date(2026, 11, 1),
        "deadline": dt.date(2026, 12, 31),
        "deadline_label_zh": "续期申请截止日期",
        "days_left": 36,
        "expires_on": dt.date(2026, 12, 31),
        "contact_person": "张三",
        "contact_phone": "13800000000",
        "responsible_person": "李四",
        "responsible_phone": "13900000000",
        "email": "a@b.cn",
        "lifecycle_stage_zh": "续期申请期",
        "conditions_zh": "符合续期条件",
        "batch_count": 6,
        "queryable_certificates": 12,
        "expected_certificates": 12,
        "reasons_zh": "",
        "next_step_zh": "请提交",
        "next_step_centre_zh": "通知该机构提交",
        "message_institution_zh": "请提交。",
    }
    return row | overrides


def self_signed(folder: Path, host: str) -> tuple[Path, Path]:
    """A certificate for `host` that signs itself (a CA of its own, valid for an hour either side of now), and
    its key: (folder/cert.pem, folder/key.pem). For TLS servers the tests start."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem, key_pem = folder / "cert.pem", folder / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_pem, key_pem
