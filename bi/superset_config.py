"""Superset's settings for the renewal marts (SUPERSET_CONFIG_PATH points here). Superset's own state (its
SQLite metadata, the secret key) lives in SUPERSET_STATE_DIR, never in the repository."""

import os
from pathlib import Path

STATE_DIR = Path(os.environ.get("SUPERSET_STATE_DIR", Path(__file__).resolve().parent.parent / ".superset"))

# bi/superset.py writes the key on first start; Superset refuses to run with its built-in default key.
SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY") or (STATE_DIR / "secret_key").read_text().strip()
SQLALCHEMY_DATABASE_URI = os.environ.get("SUPERSET_METADATA_URI") or f"sqlite:///{STATE_DIR / 'superset.db'}"

# The provincial centre reads Chinese: the UI and its number/date formats default to it.
BABEL_DEFAULT_LOCALE = "zh"
LANGUAGES = {"zh": {"flag": "cn", "name": "Chinese"}, "en": {"flag": "us", "name": "English"}}
D3_FORMAT = {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["¥", ""]}

# No result cache: every chart query opens a new connection, so after a publication (the file is swapped
# by rename) the next refresh reads the new snapshot, never a cached answer from the old one.
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
# Dashboard filter and explore state live in Superset's own metadata database (its metastore cache), so every
# gunicorn worker sees the same state: a per-process SimpleCache lost a filter whenever the next request
# reached the other worker.
FILTER_STATE_CACHE_CONFIG = {"CACHE_TYPE": "SupersetMetastoreCache", "CACHE_DEFAULT_TIMEOUT": 86400}
EXPLORE_FORM_DATA_CACHE_CONFIG = {"CACHE_TYPE": "SupersetMetastoreCache", "CACHE_DEFAULT_TIMEOUT": 86400}

# A local, single-user-at-a-time deployment: no Redis, no Celery, no outside calls.
# DASHBOARD_VIRTUALIZATION off: every chart loads at once, also below the fold (a printout, a screenshot)
FEATURE_FLAGS = {"DASHBOARD_VIRTUALIZATION": False, "ALERT_REPORTS": False, "THUMBNAILS": False}
TALISMAN_ENABLED = os.environ.get("SUPERSET_TALISMAN", "false") == "true"
CONTENT_SECURITY_POLICY_WARNING = False
# The marts database is a DuckDB file on this machine (or PostgreSQL in docker-compose); the default check
# only refuses SQLite, but say so explicitly rather than rely on it.
PREVENT_UNSAFE_DB_CONNECTIONS = False
ROW_LIMIT = 50000
SUPERSET_WEBSERVER_TIMEOUT = 120
