"""The parts of the docker-compose deployment that run without a container engine: the production dependency
set, airflow-init's script against a real PostgreSQL, and the SMTP example against a real STARTTLS server."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.commands import python_module
from pipeline.settings import PROJECT_ROOT
from tests.helpers import self_signed

COMPOSE = PROJECT_ROOT / "docker-compose.yml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_production_dependency_set_has_airflows_postgresql_async_driver():
    """Airflow builds an async engine (asyncpg) from a postgresql:// metadata URL; the image installs the
    locked set without the dev group, so the driver must be a dependency of the project itself."""
    # as the Makefile finds it: on PATH, else the module that `make` pip-installs into python3.11
    uv = [shutil.which("uv")] if shutil.which("uv") else ["python3.11", "-m", "uv"]
    exported = subprocess.run(
        [*uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {line.split("==")[0] for line in exported.splitlines() if "==" in line}
    assert {"asyncpg", "psycopg2-binary", "apache-airflow-providers-fab"} <= names

    from airflow.settings import _get_async_conn_uri_from_sync
    from sqlalchemy.ext.asyncio import create_async_engine

    url = _get_async_conn_uri_from_sync("postgresql+psycopg2://airflow:x@airflow-db/airflow")
    assert url.startswith("postgresql+asyncpg:")
    create_async_engine(url)  # imports the driver: ModuleNotFoundError without it


def _init_env(dsn_url: str, home: Path, password: str) -> dict[str, str]:
    """airflow-init's environment from docker-compose.yml, pointed at the test server instead of airflow-db."""
    env = {k: str(v) for k, v in _compose()["services"]["airflow-init"]["environment"].items()}
    keep = {k: v for k, v in env.items() if k.startswith("AIRFLOW__") and "${" not in v and "/opt/" not in v}
    from cryptography.fernet import Fernet

    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        **keep,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": dsn_url,
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW_ADMIN_PASSWORD": password,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }


@pytest.mark.slow
def test_airflow_init_migrates_makes_the_pool_and_the_admin_on_postgresql(postgres, tmp_path):
    """The init script exactly as compose runs it (twice: a restart keeps working and follows a new
    password), on a real PostgreSQL with the FAB auth manager."""
    import psycopg2
    from werkzeug.security import check_password_hash

    con = psycopg2.connect(postgres)
    con.autocommit = True
    con.cursor().execute("CREATE DATABASE airflow_init")
    con.close()
    parts = dict(p.split("=", 1) for p in postgres.split())
    url = f"postgresql+psycopg2://{parts['user']}@{parts['host']}:{parts['port']}/airflow_init"
    # compose turns $$ into $ before the shell sees the script
    script = _compose()["services"]["airflow-init"]["command"][0].replace("$$", "$")
    for password in ("first-password", "second-password"):
        result = subprocess.run(
            ["bash", "-c", script],
            env=_init_env(url, tmp_path, password),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    dsn = postgres.replace("dbname=postgres", "dbname=airflow_init")
    with psycopg2.connect(dsn) as con, con.cursor() as cur:
        cur.execute("SELECT slots FROM slot_pool WHERE pool = 'renewal_duckdb_writer'")
        assert cur.fetchone() == (1,)
        cur.execute(
            "SELECT u.password, r.name FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id "
            "JOIN ab_role r ON r.id = ur.role_id WHERE u.username = 'admin'"
        )
        (hashed, role), *more = cur.fetchall()
    assert role == "Admin"
    assert not more
    assert check_password_hash(hashed, "second-password")


def _example_smtp_url() -> str:
    for line in (PROJECT_ROOT / "deploy" / "env.example").read_text().splitlines():
        if line.startswith("SMTP_URL="):
            return line.removeprefix("SMTP_URL=")
    raise AssertionError("deploy/env.example has no SMTP_URL")


@pytest.mark.slow
def test_the_smtp_example_sends_on_587_with_starttls(tmp_path, monkeypatch):
    """The example URL (port 587) against a server that, like an office mail server on 587, speaks plain SMTP
    first, then STARTTLS, and takes a login only over TLS. Without `disable_ssl=true` Airflow's hook opens
    implicit TLS and the mail never goes out."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    cert_file, key_file = self_signed(tmp_path, "localhost")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    received = []

    class Handler:
        async def handle_DATA(self, _server, session, envelope):
            received.append((session.ssl is not None, session.authenticated, envelope))
            return "250 OK"

    def authenticator(_server, _session, _envelope, _mechanism, data):
        return AuthResult(success=(data.login, data.password) == (b"user", b"password"))

    port = _free_port()
    controller = Controller(
        Handler(),
        hostname="localhost",
        port=port,
        tls_context=tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_required=True,
    )
    controller.start()
    try:
        url = _example_smtp_url().replace("mail.example.gov.cn:587", f"localhost:{port}")
        assert url.startswith("smtp://user:password@localhost:")
        assert "disable_ssl=true" in url
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", url)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # trust the test server's certificate
        with SmtpHook(smtp_conn_id="smtp_default") as hook:
            hook.send_email_smtp(
                to=["fz@example.gov.cn"],
                subject="starttls",
                html_content="<p>ok</p>",
                from_email="renewal@example.gov.cn",
            )
    finally:
        controller.stop()
    assert [(tls_used, authed) for tls_used, authed, _ in received] == [(True, True)]
    assert received[0][2].rcpt_tos == ["fz@example.gov.cn"]


@pytest.mark.slow
def test_the_demo_mail_catcher_keeps_and_logs_what_airflow_sends(tmp_path, monkeypatch):
    """The demo profile's SMTP sink, fed by Airflow's own SMTP hook as the DAGs use it."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    port = _free_port()
    out = tmp_path / "mail"
    catcher = subprocess.Popen(
        python_module(
            "mock_feed.mail_catcher", "--host", "127.0.0.1", "--port", str(port), "--out", str(out)
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            import time

            time.sleep(0.1)
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true"
        )
        attachment = tmp_path / "350100_福州市_续期提醒.csv"
        attachment.write_text("机构,提醒\n..leading dots,ok\n", encoding="utf-8")
        with SmtpHook(smtp_conn_id="smtp_default") as hook:
            hook.send_email_smtp(
                to=["fz@example.gov.cn", "xm@example.gov.cn"],
                subject="【备案续期提醒】福州市 2026-11-25（3条）",
                html_content="<p>.</p>\n<p>..</p>",
                from_email="renewal@example.gov.cn",
                files=[str(attachment)],
            )
    finally:
        catcher.terminate()
        log = catcher.communicate(timeout=10)[0]
    (kept,) = sorted(out.glob("*.eml"))
    import email
    import email.policy

    message = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "【备案续期提醒】福州市 2026-11-25（3条）"
    (part,) = list(message.iter_attachments())
    assert (
        part.get_content().decode() == "机构,提醒\n..leading dots,ok\n"
    )  # dot-stuffing undone, bytes intact
    assert "to fz@example.gov.cn, xm@example.gov.cn: 【备案续期提醒】福州市 2026-11-25（3条）" in log


def test_the_production_wheel_leaves_out_the_mock_feed(tmp_path):
    """The package is the pipeline; the mock feed (a test and demo service) runs from the source tree only."""
    import zipfile

    uv = [shutil.which("uv")] if shutil.which("uv") else ["python3.11", "-m", "uv"]
    subprocess.run(
        [*uv, "build", "--wheel", "--out-dir", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    )
    (wheel,) = tmp_path.glob("fj_renewal-*.whl")
    packages = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist() if "/" in name}
    assert {"pipeline", "ingest", "expectations", "publish"} <= packages
    assert "mock_feed" not in packages
