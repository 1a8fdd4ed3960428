"""Superset on this machine, without Docker, over a published.duckdb: set up its state (metadata DB, secret
key, admin login), import the dashboards, and run the web server. Used by `make bi` (serve.py) and
`make dashboards` (render_dashboards.py)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

BI_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BI_DIR.parent
SUPERSET = str(Path(sys.executable).parent / "superset")
ADMIN = "admin"
# New metadata databases, one per Superset version and settings (see _metadata_db), beside the venv they belong to.
TEMPLATES = BI_DIR / ".venv" / "superset-metadata"
log = logging.getLogger("local_superset")


def duckdb_uri(published_db: Path) -> str:
    """The marts file, opened read-only by every query: a publication renames a new file over it, and the
    next query's connection (Superset opens one per query) reads the new snapshot.

    Whoever may write SQL in Superset (SQL Lab, a virtual dataset) writes it in this connection, so it can
    reach nothing but the marts: external access off (no other file read or written, no ATTACH, no extension
    installed or loaded, no URL) and the configuration locked, so no SET turns it back on. The marts file
    itself is opened when the connection is made, before the setting holds. Options in the URI, not in the
    database's `extra`: duckdb_engine hands the URI's query to duckdb.connect as its config, and an admin
    editing the connection sees them."""
    return (
        f"duckdb:///{published_db.resolve()}"
        "?access_mode=read_only&enable_external_access=false&lock_configuration=true"
    )


def superset_env(state_dir: Path) -> dict[str, str]:
    return dict(
        os.environ,
        SUPERSET_CONFIG_PATH=str(BI_DIR / "superset_config.py"),
        SUPERSET_STATE_DIR=str(state_dir),
        FLASK_APP="superset",
        PYTHONPATH=str(BI_DIR),
        SUPERSET_LOAD_EXAMPLES="no",
    )


def _superset(state_dir: Path, *args: str, quiet: bool = True) -> None:
    result = subprocess.run(
        [SUPERSET, *args],
        env=superset_env(state_dir),
        capture_output=quiet,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"superset {' '.join(args[:2])} failed (state {state_dir}):\n"
            f"{(result.stdout or '')[-3000:]}{(result.stderr or '')[-3000:]}"
        )


def _metadata_key() -> str:
    """What a new metadata database depends on: Superset's version and this project's settings. `superset db
    upgrade` and `superset init` give the same database for the same key, so it is made once per key."""
    from importlib.metadata import version

    config = (BI_DIR / "superset_config.py").read_bytes()
    return hashlib.sha256(version("apache-superset").encode() + b"\0" + config).hexdigest()[:16]


def _metadata_db(state_dir: Path) -> None:
    """Superset's metadata database in state_dir, migrated and with its roles: a copy of the one made for this
    key (about 25 s of `db upgrade` and `init` saved per new state), else made and kept as that copy. A state
    already made with this key is left as it is; with another key (a new Superset, changed settings) it is
    upgraded."""
    key = _metadata_key()
    stamp, database = state_dir / "metadata-key", state_dir / "superset.db"
    if os.environ.get("SUPERSET_METADATA_URI"):  # a server database: migrated by its own deployment
        _superset(state_dir, "db", "upgrade")
        _superset(state_dir, "init")
        return
    if database.exists() and stamp.exists() and stamp.read_text() == key:
        return
    template = TEMPLATES / f"superset-{key}.db"
    if not database.exists() and template.exists():
        shutil.copyfile(template, database)
    else:
        log.info("Superset state in %s: upgrading the metadata database …", state_dir)
        _superset(state_dir, "db", "upgrade")
        _superset(state_dir, "init")
        if not template.exists():
            TEMPLATES.mkdir(parents=True, exist_ok=True)
            partial = template.with_name(f"{template.name}.{os.getpid()}")
            shutil.copyfile(database, partial)
            partial.replace(template)  # whole or not at all, also with two set-ups at once
    stamp.write_text(key)


def set_up(
    state_dir: Path,
    published_db: Path | None = None,
    database_uri: str | None = None,
    database_password: str | None = None,
) -> str | None:
    """Creates or upgrades Superset's state in state_dir, its admin login and the dashboards on the marts:
    published_db read-only, or another database (database_uri, e.g. the PostgreSQL marts), with a role per
    supervising centre and a demo login for each (bi/access.py; passwords in state_dir/centre_*_password).
    Returns the admin password when this call created the login (it is kept in state_dir/admin_password),
    else None."""
    if database_uri is None:
        if published_db is None or not published_db.exists():
            raise SystemExit(f"{published_db} does not exist: publish the marts first (make run)")
        database_uri = duckdb_uri(published_db)
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    key = state_dir / "secret_key"
    if not key.exists():
        key.write_text(secrets.token_urlsafe(42))
        key.chmod(0o600)
    _metadata_db(state_dir)
    password_file = state_dir / f"{ADMIN}_password"
    had_admin = password_file.exists()
    log.info("importing the dashboards over %s …", database_uri)
    env = dict(superset_env(state_dir), MARTS_DATABASE_PASSWORD=database_password or "")
    result = subprocess.run(
        [
            sys.executable,
            str(BI_DIR / "import_dashboards.py"),
            "--database-uri",
            database_uri,
            "--password-env",
            "MARTS_DATABASE_PASSWORD",
            "--username",
            ADMIN,
            "--local-admin",
            str(state_dir),
            "--demo-logins",
            str(state_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"importing the dashboards failed:\n{result.stdout[-3000:]}{result.stderr[-5000:]}"
        )
    log.info(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "dashboards imported")
    return None if had_admin else admin_password(state_dir)


def admin_password(state_dir: Path) -> str:
    return (state_dir / "admin_password").read_text().strip()


def login_password(state_dir: Path, login: str) -> str:
    """The password of a login set_up made: the admin's or a centre's demo login."""
    path = state_dir / f"{login}_password"
    if not path.exists():
        raise SystemExit(f"{path} does not exist: no login {login!r} was set up in {state_dir}")
    return path.read_text().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen | None = None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"Superset exited with code {process.returncode} before answering at {url}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            if response.status == 200:
                return
        time.sleep(1)
    raise RuntimeError(f"Superset did not answer at {url}/health within {timeout:.0f} s")


def server_command(port: int, host: str = "127.0.0.1") -> list[str]:
    # Flask's threaded server: one officer at a time on this machine; docker-compose runs gunicorn instead
    return [SUPERSET, "run", "--host", host, "--port", str(port), "--with-threads"]


@contextlib.contextmanager
def running(state_dir: Path, port: int | None = None, log_file: Path | None = None) -> Iterator[str]:
    """Superset's web server on localhost for the duration of the block; yields its base URL."""
    port = port or free_port()
    out = open(log_file or state_dir / "server.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        server_command(port),
        env=superset_env(state_dir),
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()
