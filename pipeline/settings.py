"""Paths and connection settings shared by ingest, dbt, the gate, publication and the DAGs.

Everything comes from the environment so that `make run`, the tests and docker-compose can point the
same code at different folders; defaults are the project's own folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
TIMEZONE = "Asia/Shanghai"


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
    def centre_records_dir(self) -> Path:
        return self.data_dir / "centre_records"


def _path(name: str, default: str) -> Path:
    value = Path(os.environ.get(name) or default)
    return value if value.is_absolute() else PROJECT_ROOT / value


def load_settings() -> Settings:
    return Settings(
        warehouse_dir=_path("WAREHOUSE", "warehouse"),
        exports_dir=_path("EXPORTS", "exports"),
        data_dir=_path("DATA", "data/demo"),
        feed_url=os.environ.get("FEED_URL", "http://127.0.0.1:8765").rstrip("/"),
        feed_token=os.environ.get("FEED_TOKEN") or None,
        # Key of the HMAC that replaces resident ID numbers. Production sets its own secret; the default
        # only keeps local runs reproducible.
        pseudonym_key=(os.environ.get("PSEUDONYM_KEY") or "local-development-key").encode(),
    )


def as_of_date(logical_date) -> "datetime.date":  # noqa: F821 - pendulum/datetime, imported lazily
    """The as-of date D of a run: its logical date as a calendar day in Asia/Shanghai (RULES.md Terms)."""
    import zoneinfo

    return logical_date.astimezone(zoneinfo.ZoneInfo(TIMEZONE)).date()
