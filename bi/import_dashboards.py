"""Imports the dashboards bundle (bi/dashboards/, Superset's import/export YAML) into Superset, with its one
database pointed at the published marts: the DuckDB file read-only (`make bi`, `make dashboards`) or the
PostgreSQL marts (docker-compose). Run with Superset's environment (SUPERSET_CONFIG_PATH), e.g.

    bi/.venv/bin/python bi/import_dashboards.py --database-uri 'duckdb:////abs/published.duckdb?access_mode=read_only'

A dashboard whose marts the database does not have (say `marts.work_items` before that mart exists) is left
out with a log line, together with its datasets and charts, so a bundle can carry dashboards for marts that
are still to come. Re-importing overwrites every object of the bundle (matched by uuid)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import access  # bi/ is on the path: scripts run from it
import yaml

BUNDLE_DIR = Path(__file__).resolve().parent / "dashboards"
log = logging.getLogger("import_dashboards")


def read_bundle(bundle_dir: Path = BUNDLE_DIR) -> dict[str, dict[str, Any]]:
    """Every YAML file of the bundle, parsed, by its path relative to the bundle."""
    return {
        str(p.relative_to(bundle_dir)): yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted(bundle_dir.rglob("*.yaml"))
    }


# What Superset writes in place of a password in a URI it shows or exports (superset.constants.PASSWORD_MASK).
PASSWORD_MASK = "X" * 10


def point_at(bundle: dict[str, dict[str, Any]], database_uri: str, password: str | None = None) -> None:
    """Sets the bundle's database URI (and password, which an exported bundle never carries). The password
    goes beside a masked URI, as in an export: Superset's import keeps the given password only when the URI
    shows the mask, and stores no password at all for a URI without one."""
    databases = [path for path in bundle if path.startswith("databases/")]
    if len(databases) != 1:
        raise SystemExit(f"the bundle must hold exactly one database, found {databases or 'none'}")
    if password:
        from sqlalchemy.engine.url import make_url

        database_uri = (
            make_url(database_uri).set(password=PASSWORD_MASK).render_as_string(hide_password=False)
        )
        bundle[databases[0]]["password"] = password
    bundle[databases[0]]["sqlalchemy_uri"] = database_uri


def without_missing_marts(
    bundle: dict[str, dict[str, Any]], tables: set[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """The bundle less every physical dataset whose table is not among `tables` ((schema, name) pairs), the
    charts on those datasets and the dashboards showing those charts."""
    missing = {
        config["uuid"]
        for path, config in bundle.items()
        if path.startswith("datasets/")
        and not config.get("sql")
        and (config.get("schema"), config["table_name"]) not in tables
    }
    charts_out = {
        config["uuid"]
        for path, config in bundle.items()
        if path.startswith("charts/") and config["dataset_uuid"] in missing
    }
    kept = {}
    for path, config in bundle.items():
        if path.startswith("datasets/") and config["uuid"] in missing:
            log.info(
                "leaving out dataset %s: %s.%s is not in the marts database",
                path,
                config.get("schema"),
                config["table_name"],
            )
            continue
        if path.startswith("charts/") and config["uuid"] in charts_out:
            continue
        if path.startswith("dashboards/"):
            shown = {
                item["meta"].get("uuid")
                for item in config.get("position", {}).values()
                if isinstance(item, dict) and item.get("type") == "CHART"
            }
            if shown & charts_out:
                log.info(
                    "leaving out dashboard %s (%s): its marts are not published yet",
                    path,
                    config["dashboard_title"],
                )
                continue
        kept[path] = config
    return kept


def database_tables(database_uri: str) -> set[tuple[str, str]]:
    """(schema, table) of every table and view the database holds (duckdb-engine names a schema
    `<file>.<schema>`: the file part is dropped)."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.pool import NullPool

    engine = create_engine(database_uri, poolclass=NullPool)
    try:
        inspector = inspect(engine)
        return {
            (schema.rsplit(".", 1)[-1], name)
            for schema in inspector.get_schema_names()
            for name in inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
        }
    finally:
        engine.dispose()


def import_bundle(
    bundle: dict[str, dict[str, Any]],
    username: str = "admin",
    centres: list[access.Centre] | None = None,
    demo_logins: Path | None = None,
) -> None:
    """Imports databases, datasets, charts and dashboards in that order, each overwriting its earlier import
    (the dashboard importer alone would keep stale charts and datasets), then gives each centre's role its
    datasets and row filter, and (demo_logins: a folder for their passwords) a login per centre. Needs
    Superset's app context."""
    from flask import g
    from superset import security_manager
    from superset.commands.chart.importers.v1 import ImportChartsCommand
    from superset.commands.dashboard.importers.v1 import ImportDashboardsCommand
    from superset.commands.database.importers.v1 import ImportDatabasesCommand
    from superset.commands.dataset.importers.v1 import ImportDatasetsCommand

    g.user = security_manager.find_user(username=username)
    metadata = {"version": "1.0.0", "timestamp": "2026-01-01T00:00:00+00:00"}  # no type: read by all four
    contents = {
        path: yaml.safe_dump(config, allow_unicode=True)
        for path, config in bundle.items()
        if path != "metadata.yaml"
    }
    contents["metadata.yaml"] = yaml.safe_dump(metadata)
    passwords = {
        path: config["password"]
        for path, config in bundle.items()
        if path.startswith("databases/") and config.get("password")
    }
    for command in (
        ImportDatabasesCommand,
        ImportDatasetsCommand,
        ImportChartsCommand,
        ImportDashboardsCommand,
    ):
        command(contents, overwrite=True, passwords=passwords).run()
    scope_native_filters(bundle)
    if centres:
        access.grant_centres(bundle, centres)
        if demo_logins is not None:
            made = access.demo_logins(centres, demo_logins)
            if made:
                log.info("demo logins %s, passwords in %s/<login>_password", "、".join(made), demo_logins)


def scope_native_filters(bundle: dict[str, dict[str, Any]]) -> None:
    """Native filters name the charts they apply to by id, which only exists after the import: every filter of
    the bundle applies to all charts of its dashboard whose dataset has the filtered column."""
    from superset import db
    from superset.models.dashboard import Dashboard
    from superset.utils import json

    for path, config in bundle.items():
        if not path.startswith("dashboards/"):
            continue
        dashboard = db.session.query(Dashboard).filter_by(uuid=config["uuid"]).one()
        metadata = json.loads(dashboard.json_metadata or "{}")
        for native in metadata.get("native_filter_configuration", []):
            columns = {target["column"]["name"] for target in native.get("targets", [])}
            native["chartsInScope"] = sorted(
                chart.id
                for chart in dashboard.slices
                if columns & {column.column_name for column in chart.datasource.columns}
            )
        dashboard.json_metadata = json.dumps(metadata)
    db.session.commit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-uri", required=True, help="SQLAlchemy URI of the marts database")
    parser.add_argument("--password-env", help="environment variable holding the database password")
    parser.add_argument("--username", default="admin", help="Superset user who owns the imported objects")
    parser.add_argument(
        "--all-dashboards",
        action="store_true",
        help="import every dashboard, also those whose marts are not published yet (a new "
        "deployment before the pipeline's first run: they fill in after it)",
    )
    parser.add_argument(
        "--centres",
        type=Path,
        default=access.SEED,
        help="the dbt seed supervising_centres: a role per centre is made from it (default %(default)s)",
    )
    parser.add_argument(
        "--local-admin",
        type=Path,
        metavar="DIR",
        help="make the --username login an admin if it does not exist, its password kept in DIR/<login>_password "
        "(a local Superset; docker-compose's init makes its admin itself)",
    )
    parser.add_argument(
        "--demo-logins",
        type=Path,
        metavar="DIR",
        help="also make a login per centre role (centre_350100 …), its password kept in DIR/<login>_password",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from superset.app import create_app

    bundle = read_bundle()
    if without := access.datasets_without_centre(bundle):
        raise SystemExit(
            f"datasets without a {access.CENTRE_COLUMN} column: {', '.join(without)}; every dataset needs "
            "it, or the centres' row filter cannot keep each centre to its own rows"
        )
    centres = access.read_centres(args.centres)
    password = os.environ.get(args.password_env) if args.password_env else None
    point_at(bundle, args.database_uri, password)
    uri_with_password = args.database_uri
    if password:
        from sqlalchemy.engine.url import make_url

        uri_with_password = make_url(args.database_uri).set(password=password)
    if not args.all_dashboards:
        bundle = without_missing_marts(bundle, database_tables(uri_with_password))
    app = create_app()
    with app.app_context():
        if args.local_admin is not None and access.local_admin(
            args.local_admin, args.username, "备案续期", "管理员"
        ):
            log.info(
                "made the admin login %s, password in %s/%s_password",
                args.username,
                args.local_admin,
                args.username,
            )
        import_bundle(bundle, args.username, centres, args.demo_logins)
    titles = [config["dashboard_title"] for path, config in bundle.items() if path.startswith("dashboards/")]
    log.info("imported %d dashboards: %s", len(titles), "、".join(titles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
