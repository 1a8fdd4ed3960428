"""First-start set-up of Metabase (docker-compose service metabase-setup): the admin user and the marts
database, connected with the read-only login. Does nothing when Metabase is already set up."""

from __future__ import annotations

import os
import sys
import time

import requests


def main() -> int:
    url = os.environ["METABASE_URL"].rstrip("/")
    for _ in range(120):  # Metabase takes a minute or two on first start
        try:
            props = requests.get(f"{url}/api/session/properties", timeout=10).json()
            break
        except (requests.RequestException, ValueError):
            time.sleep(5)
    else:
        print(f"Metabase did not answer at {url}", file=sys.stderr)
        return 1
    token = props.get("setup-token")
    if not token or props.get("has-user-setup"):
        print("Metabase is already set up; nothing to do")
        return 0
    response = requests.post(f"{url}/api/setup", timeout=60, json={
        "token": token,
        "user": {"email": os.environ["METABASE_ADMIN_EMAIL"], "password": os.environ["METABASE_ADMIN_PASSWORD"],
                 "first_name": "备案续期", "last_name": "管理员", "site_name": "福建省职业技能鉴定指导中心"},
        "prefs": {"site_name": "福建省职业技能鉴定指导中心", "site_locale": "zh", "allow_tracking": False},
        "database": {"engine": "postgres", "name": "备案续期 marts", "details": {
            "host": os.environ["MARTS_HOST"], "port": 5432, "dbname": os.environ["MARTS_DB"],
            "user": os.environ["MARTS_USER"], "password": os.environ["MARTS_PASSWORD"],
            "schema-filters-type": "inclusion", "schema-filters-patterns": "marts,ops"}},
    })
    response.raise_for_status()
    print("Metabase set up with the marts database")
    return 0


if __name__ == "__main__":
    sys.exit(main())
