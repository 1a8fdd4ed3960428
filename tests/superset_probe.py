"""Runs SQL through Superset for the tests, with bi/.venv's Python (Superset cannot share the project's venv):

    superset_probe.py engine STATE_DIR SQL…        through the engine Superset builds for the marts database
                                                   (its stored URI, password and extra), in Superset's app
    superset_probe.py sqllab URL STATE_DIR SQL…    through SQL Lab's API of a running Superset, as admin

Prints one JSON object per statement: {"sql", "ok", "rows" or "error"}; and for `engine` first the stored
database ({"uri", "has_password"})."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

BI_DIR = Path(__file__).resolve().parent.parent / "bi"
sys.path.insert(0, str(BI_DIR))


def through_engine(state_dir: Path, statements: list[str]) -> list[dict]:
    from local_superset import superset_env

    os.environ.update(superset_env(state_dir))
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset import db
        from superset.models.core import Database

        database = db.session.query(Database).one()
        out: list[dict] = [{"uri": database.sqlalchemy_uri, "has_password": bool(database.password)}]
        for sql in statements:
            try:
                with database.get_sqla_engine() as engine, engine.connect() as con:
                    rows = con.exec_driver_sql(sql).fetchall()
                out.append({"sql": sql, "ok": True, "rows": [list(map(str, r)) for r in rows]})
            except Exception as exc:
                out.append({"sql": sql, "ok": False, "error": str(exc).splitlines()[0][:400]})
        return out


def through_sql_lab(url: str, state_dir: Path, statements: list[str]) -> list[dict]:
    import requests

    http = requests.Session()
    password = (state_dir / "admin_password").read_text().strip()
    login = http.post(
        f"{url}/api/v1/security/login",
        json={"username": "admin", "password": password, "provider": "db", "refresh": False},
        timeout=60,
    )
    login.raise_for_status()
    http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    http.headers["X-CSRFToken"] = http.get(f"{url}/api/v1/security/csrf_token/", timeout=60).json()["result"]
    http.headers["Referer"] = url
    database_id = http.get(f"{url}/api/v1/database/", timeout=60).json()["ids"][0]
    out = []
    for n, sql in enumerate(statements):
        answer = http.post(
            f"{url}/api/v1/sqllab/execute/",
            json={
                "database_id": database_id,
                "sql": sql,
                "runAsync": False,
                "schema": "marts",
                "client_id": re.sub(r"\W", "", f"probe{os.getpid()}{n}")[:11],
                "queryLimit": 1000,
            },
            timeout=120,
        )
        body = answer.json()
        if answer.status_code == 200 and body.get("status") == "success":
            out.append({"sql": sql, "ok": True, "rows": body.get("data")})
        else:
            error = body.get("message") or body.get("errors") or body
            out.append({"sql": sql, "ok": False, "status": answer.status_code, "error": str(error)[:400]})
    return out


def main(argv: list[str]) -> int:
    if argv[0] == "engine":
        results = through_engine(Path(argv[1]), argv[2:])
    elif argv[0] == "sqllab":
        results = through_sql_lab(argv[1].rstrip("/"), Path(argv[2]), argv[3:])
    else:
        raise SystemExit(__doc__)
    for result in results:
        print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
