"""Paths and connection settings shared by ingest, dbt, the gate, publication and the DAGs, all from the
environment (so `make run`, the tests and docker-compose point the same code at different folders)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Beside the code in a checkout; an Airflow that installed the package elsewhere points at its copy.
DBT_PROJECT_DIR = Path(os.environ.get("RENEWAL_DBT_PROJECT_DIR") or PROJECT_ROOT / "dbt_project")
# The one list of the supervising centres (published as marts.centres); the province's code is read from it.
SUPERVISING_CENTRES_SEED = DBT_PROJECT_DIR / "seeds" / "supervising_centres.csv"
TIMEZONE = "Asia/Shanghai"
# The notice 闽劳鉴〔2022〕26号 is dated 2022-12-15: every as-of date from then on can be run or backfilled.
NOTICE_DATE = dt.date(2022, 12, 15)
# Every task that writes warehouse.duckdb, published.duckdb or the reminder ledger takes this pool's one
# slot, so no two tasks of either DAG ever write at once (DuckDB allows one writer per file).
WRITER_POOL = "renewal_duckdb_writer"
WRITER_POOL_DESCRIPTION = "one writer at a time for the renewal DuckDB files (warehouse, published, ledger)"
# The Airflow connection that holds the feed's address (host, port) and token (password). FEED_URL and
# FEED_TOKEN in the environment take precedence; either way the token is never in code, logs or the warehouse.
FEED_CONN_ID = "skill_evaluation_feed"
MARTS_POSTGRES_CONN_ID = "marts_postgres"

log = logging.getLogger(__name__)


class MissingSecret(RuntimeError):
    """A secret the pipeline refuses to run without (it never falls back to a built-in default)."""


@dataclass(frozen=True)
class Settings:
    warehouse_dir: Path
    exports_dir: Path
    data_dir: Path
    feed_url: str
    feed_token: str | None
    pseudonym_key: bytes

    @property
    def warehouse_db(self) -> Path:
        """The working database: raw landing, dbt staging and candidate marts. One writer at a time."""
        return self.warehouse_dir / "warehouse.duckdb"

    @property
    def published_db(self) -> Path:
        return self.warehouse_dir / "published.duckdb"

    @property
    def parquet_dir(self) -> Path:
        """Parquet files of the published tables (a symbolic link swapped atomically on each publish)."""
        return self.warehouse_dir / "parquet"

    @property
    def reminder_ledger_db(self) -> Path:
        """Which reminders were sent when (written only by the renewal_reminders DAG)."""
        return self.warehouse_dir / "reminder_ledger.duckdb"

    @property
    def form_cache_dir(self) -> Path:
        """The reminder forms by content hash (publish/form_cache.py): only changed forms are made again."""
        return self.warehouse_dir / "form_cache"

    @property
    def centre_records_dir(self) -> Path:
        return self.data_dir / "centre_records"


def _path(name: str, default: str) -> Path:
    value = Path(os.environ.get(name) or default)
    return value if value.is_absolute() else PROJECT_ROOT / value


def _in_airflow() -> bool:
    """Whether Airflow is loaded (inside a task, or a DAG file being parsed). Outside it, importing Airflow to
    look up a connection or Variable would only configure Airflow as a side effect."""
    return "airflow.sdk" in sys.modules


def env_or_variable(env: str, variable: str) -> str | None:
    """A setting from the environment, else from the Airflow Variable of that name (None when neither is set).
    A Variable that cannot be read raises: a broken lookup must never pass for "nobody to tell"."""
    value = os.environ.get(env)
    if value or not _in_airflow():
        return value or None
    from airflow.sdk import Variable

    return Variable.get(variable, default=None) or None


def airflow_connection(conn_id: str) -> dict | None:
    """An Airflow connection's fields (host, port, schema, login, password), or None when there is none: from
    AIRFLOW_CONN_<ID> (JSON or URI) or, inside a task, from Airflow's secrets backends and metadata database."""
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if raw and raw.lstrip().startswith("{"):
        return json.loads(raw)
    if not raw and not _in_airflow():
        return None
    try:
        from airflow.sdk import BaseHook

        c = BaseHook.get_connection(conn_id)
    except Exception as exc:
        log.debug("no Airflow connection %s: %s", conn_id, type(exc).__name__)
        return None
    return {"host": c.host, "port": c.port, "schema": c.schema, "login": c.login, "password": c.password}


def feed_connection() -> tuple[str | None, str | None]:
    """(url, token) of the Airflow connection `skill_evaluation_feed`, or (None, None) when there is none."""
    conn = airflow_connection(FEED_CONN_ID)
    if conn is None:
        return None, None
    host, port = conn.get("host"), conn.get("port")
    url = None
    if host:
        url = host if "://" in host else f"{conn.get('schema') or 'http'}://{host}"
        url = f"{url}:{port}" if port else url
    return url, conn.get("password") or None


def marts_postgres_dsn() -> str | None:
    """Where the marts are published in PostgreSQL for BI tools: MARTS_POSTGRES_DSN (a libpq connection
    string or URI) or the Airflow connection `marts_postgres`; None means the PostgreSQL target is skipped."""
    if os.environ.get("MARTS_POSTGRES_DSN"):
        return os.environ["MARTS_POSTGRES_DSN"]
    conn = airflow_connection(MARTS_POSTGRES_CONN_ID)
    if conn is None:
        return None
    parts = {
        "host": conn.get("host"),
        "port": conn.get("port"),
        "dbname": conn.get("schema"),
        "user": conn.get("login"),
        "password": conn.get("password"),
    }
    return " ".join(f"{k}='{str(v).replace(chr(39), chr(92) + chr(39))}'" for k, v in parts.items() if v)


def pseudonym_key() -> bytes:
    """The HMAC key for resident ID numbers, from PSEUDONYM_KEY; there is no default, because with a known key
    anyone could reverse an ID's HMAC by trying every possible ID (there are few enough)."""
    key = os.environ.get("PSEUDONYM_KEY")
    if not key:
        raise MissingSecret(
            "PSEUDONYM_KEY is not set: the pipeline will not pseudonymise resident ID numbers with "
            "a known key. Set it to a long random secret (`openssl rand -hex 32`) and keep it: "
            "the same key keeps pseudonyms stable across runs. (`make run` makes one in .airflow/.)"
        )
    return key.encode()


def warehouse_dir() -> Path:
    """The warehouse folder (WAREHOUSE), without looking up any connection or secret."""
    return _path("WAREHOUSE", "warehouse")


def load_settings() -> Settings:
    conn_url, conn_token = (None, None)
    if not (os.environ.get("FEED_URL") and os.environ.get("FEED_TOKEN")):
        conn_url, conn_token = feed_connection()
    return Settings(
        warehouse_dir=warehouse_dir(),
        exports_dir=_path("EXPORTS", "exports"),
        data_dir=_path("DATA", "data/demo"),
        feed_url=(os.environ.get("FEED_URL") or conn_url or "http://127.0.0.1:8765").rstrip("/"),
        feed_token=os.environ.get("FEED_TOKEN") or conn_token,
        pseudonym_key=pseudonym_key(),
    )


def as_of_date(logical_date: dt.datetime) -> dt.date:
    """The as-of date D of a run: its logical date as a calendar day in Asia/Shanghai (docs/rules.md)."""
    import zoneinfo

    return logical_date.astimezone(zoneinfo.ZoneInfo(TIMEZONE)).date()


def run_load_id(as_of: dt.date, run_id: str) -> str:
    """The load id under which a run's rows land in the raw layer and its numbers in raw.run_metrics:
    `<D>:<run id>`, so that a rerun of the same run replaces its own rows and no other run's."""
    return f"{as_of.isoformat()}:{run_id}"


def is_province_code(code: str) -> bool:
    """Whether a supervising centre's code is a province's: a province-level division code of GB/T 2260 is two
    digits and 0000 (Fujian 350000); a city's ends in 00 (350100), and a centre without a division (PT) has none.
    bi/access.py applies the same rule to the same seed: Superset's image holds bi/ and the seed, not the
    pipeline."""
    return len(code) == 6 and code.isdigit() and code.endswith("0000")


@functools.cache
def province_code(seed: Path = SUPERVISING_CENTRES_SEED) -> str:
    """The province's code (350000), from the seed of the supervising centres: its one province-level code. The
    province's list holds every centre's rows, and rows that name no known centre go to it."""
    with seed.open(encoding="utf-8", newline="") as fh:
        codes = [row["supervising_centre"] for row in csv.DictReader(fh)]
    provinces = [code for code in codes if is_province_code(code)]
    if len(provinces) != 1:
        raise RuntimeError(
            f"{seed}: expected one province-level centre code (like 350000), found {provinces}"
        )
    return provinces[0]
