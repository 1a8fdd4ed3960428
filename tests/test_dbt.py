"""dbt's own checks on the built warehouse: unit tests of the rules (boundary days), docs and data tests."""

import json
from pathlib import Path

import pytest

from pipeline.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from tests.helpers import AS_OF, DBT_SKIP_TESTS, dbt_build, dbt_unit_tests, rule_ids


def test_every_rule_has_a_unit_test_and_a_line_in_docs():
    ids = rule_ids()
    assert {"R-DATES", "R-REJECT-1", "R-REJECT-3", "R-REMIND", "R-SLA"} <= ids
    tested = (
        " ".join(f"{t['name']} {t.get('description', '')}" for t in dbt_unit_tests())
        .upper()
        .replace("_", "-")
    )
    docs = (PROJECT_ROOT / "docs" / "rules.md").read_text()
    for rule in sorted(ids):
        assert rule in tested, f"{rule} has no dbt unit test"
        assert f"| {rule} |" in docs, f"{rule} is not mapped in docs/rules.md"


@pytest.mark.slow
def test_docs_generate_and_every_model_column_is_described(built):
    """Every model of every layer (staging, intermediate, marts, ops) and each of its columns has a description."""
    result = dbt_build(built, AS_OF, command="docs generate")
    assert result.returncode == 0, result.stdout[-3000:]
    target = built.warehouse_dir / "dbt-target"
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    models = [k for k, n in manifest["nodes"].items() if n["resource_type"] == "model"]
    marts = [k for k in models if manifest["nodes"][k]["config"]["schema"] in ("marts", "ops")]
    assert len(marts) >= 7
    for key in models:
        node = manifest["nodes"][key]
        assert node["description"], f"{node['name']} has no description"
        columns = catalog["nodes"][key]["columns"]
        described = {c for c, v in node["columns"].items() if v.get("description")}
        missing = sorted(c.lower() for c in columns if c.lower() not in described)
        assert not missing, f"{node['name']}: columns without a description: {missing}"


@pytest.mark.slow
def test_every_model_has_a_key_test_and_every_source_table_is_described_fresh_and_used(built):
    """What dbt-project-evaluator checks (dbt_project/scripts/evaluate.sh), kept here where CI runs it."""
    manifest = json.loads((built.warehouse_dir / "dbt-target" / "manifest.json").read_text())
    tests: dict[str, list[tuple[str, str | None]]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and node.get("test_metadata"):
            tests.setdefault(node["attached_node"], []).append(
                (node["test_metadata"]["name"], node["column_name"])
            )
    for key, node in manifest["nodes"].items():
        if node["resource_type"] != "model" or node["name"] == "int_policy_parameters":  # one row, no key
            continue
        found = tests.get(key, [])
        keyed = any(name == "unique_combination" for name, _ in found) or any(
            name == "unique" and ("not_null", column) in found for name, column in found
        )
        assert keyed, f"{node['name']} has no primary-key test (unique + not_null, or unique_combination)"
    used = {parent for node in manifest["nodes"].values() for parent in node["depends_on"].get("nodes", [])}
    for key, source in manifest["sources"].items():
        name = f"{source['source_name']}.{source['name']}"
        assert source["description"], f"source {name} has no description"
        freshness = source["config"].get("freshness") or {}
        assert (freshness.get("warn_after") or {}).get("count"), f"source {name} declares no freshness"
        loaded_at = source["config"].get("loaded_at_field") or source["config"].get("loaded_at_query")
        assert loaded_at, f"source {name} has no loaded_at_field or loaded_at_query"
        assert key in used, f"source {name} is read by no model"


@pytest.mark.slow
def test_as_of_is_required(built):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, WAREHOUSE_DB=str(built.warehouse_db))
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "run",
            "--profiles-dir",
            ".",
            "--select",
            "renewal_eligibility",
            "--target-path",
            str(built.warehouse_dir / "t2"),
        ],
        check=False,
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "as_of" in result.stdout


@pytest.mark.slow
def test_incremental_certificates_staging_equals_a_full_rebuild(built, tmp_path):
    """stg_feed__certificates parses only the loads landed since its last run. After a load with a newer
    version of one certificate, an older version of another (which must not win), a same-time repeat and a new
    certificate, the incremental result must equal a rebuild from every load."""
    import duckdb

    from tests.helpers import private_copy

    copy = private_copy(built, tmp_path)
    con = duckdb.connect(str(copy.warehouse_db))
    first, second, third = [
        r[0]
        for r in con.execute(
            "SELECT certificate_no FROM raw.certificates ORDER BY certificate_no LIMIT 3"
        ).fetchall()
    ]
    later, earlier = "TIMESTAMPTZ '2030-01-01T00:00:00+08:00'", "TIMESTAMPTZ '2001-01-01T00:00:00+08:00'"
    for replaced, certificate_no in [
        (f"{later} AS updated_at, 9 AS level", first),  # a newer version
        (f"{earlier} AS updated_at, 9 AS level", second),  # an older version, which must not win
        ("updated_at AS updated_at", third),  # the same version again
        ("'NEW-CERTIFICATE' AS certificate_no", third),
    ]:
        con.execute(
            f"INSERT INTO raw.certificates SELECT * REPLACE ('next' AS load_id, {replaced}) "
            "FROM raw.certificates WHERE certificate_no = ? LIMIT 1",
            [certificate_no],
        )
    con.execute(
        "INSERT INTO raw.feed_loads (load_id, resource, finished_at) VALUES ('next', 'certificates', now())"
    )
    con.close()

    def staged() -> list[tuple]:
        con = duckdb.connect(str(copy.warehouse_db), read_only=True)
        try:
            return con.execute(
                "SELECT * FROM staging.stg_feed__certificates ORDER BY certificate_no"
            ).fetchall()
        finally:
            con.close()

    result = dbt_build(copy, AS_OF, "--select", "stg_feed__certificates", command="run")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "incremental model staging.stg_feed__certificates" in result.stdout
    incremental = staged()
    result = dbt_build(copy, AS_OF, "--select", "stg_feed__certificates", "--full-refresh", command="run")
    assert result.returncode == 0, result.stdout[-3000:]
    assert incremental == staged()
    level = {row[0]: row[4] for row in incremental}
    load = {row[0]: row[-1] for row in incremental}
    assert level[first] == 9  # the newer version won
    assert level[second] != 9  # the older one did not
    assert load[third] == "next"  # the same version again: the later load's row
    assert "NEW-CERTIFICATE" in level


@pytest.mark.slow
def test_incremental_certificates_with_latest_lookup_equals_a_full_rebuild(built, tmp_path):
    """int_all_certificates_with_latest_lookup re-decides only the certificates with a version from a new load
    or a lookup answer newer than the newest it holds; int_certificates_with_latest_lookup filters it to D.
    After new versions and new answers (found flipping both ways, a certificate looked up for the first time, one
    issued after D), each incremental run must give, row for row, what a full rebuild gives: for a later D, then
    for an earlier D after it (a backfill goes back in time)."""
    import datetime as dt

    import duckdb

    from tests.helpers import private_copy

    copy = private_copy(built, tmp_path / "incremental")
    models = ("--select", "+int_certificates_with_latest_lookup")

    def execute(sql: str, params: list | None = None) -> None:
        con = duckdb.connect(str(copy.warehouse_db))
        try:
            con.execute(sql, params or [])
        finally:
            con.close()

    def rows(settings) -> tuple[list[tuple], list[tuple]]:
        con = duckdb.connect(str(settings.warehouse_db), read_only=True)
        try:
            return tuple(
                con.execute(f"SELECT * FROM intermediate.{model} ORDER BY certificate_no").fetchall()
                for model in (
                    "int_all_certificates_with_latest_lookup",
                    "int_certificates_with_latest_lookup",
                )
            )
        finally:
            con.close()

    def incremental_equals_full(as_of: dt.date, round_no: int) -> tuple[dict[str, tuple], set[str]]:
        result = dbt_build(copy, as_of, *models, command="run")
        assert result.returncode == 0, result.stdout[-3000:]
        assert "incremental model intermediate.int_all_certificates_with_latest_lookup" in result.stdout
        incremental = rows(copy)
        full = private_copy(copy, tmp_path / f"full-{round_no}")
        result = dbt_build(full, as_of, *models, "--full-refresh", command="run")
        assert result.returncode == 0, result.stdout[-3000:]
        assert incremental == rows(full), (
            f"round {round_no}: the incremental result differs from a full rebuild"
        )
        every, as_of_d = incremental
        assert {r[0] for r in as_of_d} == {r[0] for r in every if r[5] <= as_of}
        return {r[0]: r for r in every}, {r[0] for r in as_of_d}

    con = duckdb.connect(str(copy.warehouse_db), read_only=True)
    found, not_found = (
        con.execute(
            f"""SELECT certificate_no FROM intermediate.int_certificates_with_latest_lookup
                WHERE is_queryable = {flag} ORDER BY certificate_no LIMIT 1"""
        ).fetchone()[0]
        for flag in ("true", "false")
    )
    con.close()

    later, earlier = AS_OF + dt.timedelta(days=30), AS_OF
    # round 1: new versions (a certificate never looked up, one issued after the earlier D, a changed level) and
    # new answers (found -> not found, not found -> found)
    for replaced in [
        "'NEW-UNCHECKED' AS certificate_no",
        f"'NEW-AFTER-D' AS certificate_no, DATE '{AS_OF + dt.timedelta(days=10)}' AS issued_on",
        "TIMESTAMPTZ '2030-01-01T00:00:00+08:00' AS updated_at, 9 AS level",
    ]:
        execute(
            f"INSERT INTO raw.certificates SELECT * REPLACE ('round-1' AS load_id, {replaced}) "
            "FROM raw.certificates WHERE certificate_no = $found LIMIT 1",
            {"found": found},
        )
    execute(
        "INSERT INTO raw.feed_loads (load_id, resource, finished_at) VALUES ('round-1', 'certificates', now())"
    )
    execute(
        """INSERT INTO raw.certificate_lookups VALUES
             ('round-1', ?, false, now()), ('round-1', ?, true, now()), ('round-1', 'NEW-AFTER-D', true, now())""",
        [found, not_found],
    )
    held, as_of_d = incremental_equals_full(later, 1)
    assert held[found][7] is False  # found -> not found, with a new version
    assert held[found][4] == 9
    assert held[not_found][7] is True  # not found -> found, no new version
    assert held["NEW-UNCHECKED"][6] is None  # never looked up: not queryable
    assert held["NEW-UNCHECKED"][7] is False
    assert {"NEW-UNCHECKED", "NEW-AFTER-D"} <= as_of_d

    # round 2, no new certificate load: NEW-UNCHECKED looked up for the first time and the flips back; and D goes
    # back to the earlier day, when NEW-AFTER-D did not exist yet
    execute(
        """INSERT INTO raw.certificate_lookups VALUES
             ('round-2', ?, true, now()), ('round-2', ?, false, now()), ('round-2', 'NEW-UNCHECKED', true, now())""",
        [found, not_found],
    )
    held, as_of_d = incremental_equals_full(earlier, 2)
    assert held[found][7] is True
    assert held[not_found][7] is False
    assert held["NEW-UNCHECKED"][7] is True
    assert "NEW-UNCHECKED" in as_of_d
    assert "NEW-AFTER-D" in held
    assert "NEW-AFTER-D" not in as_of_d


@pytest.mark.slow
def test_every_published_mart_has_an_enforced_contract_and_a_type_change_fails_the_build(tmp_path):
    """The marts are an interface (BI tools, PostgreSQL readers, the exports): each column's type is declared, and
    SQL that gives a column another type fails `dbt build` instead of publishing it."""
    import os
    import shutil
    import subprocess
    import sys

    import yaml

    config = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    assert config["models"]["renewal"]["marts"]["+contract"] == {"enforced": True}
    models = yaml.safe_load(
        (DBT_PROJECT_DIR / "models" / "marts" / "_marts__models.yml").read_text(encoding="utf-8")
    )
    marts = {p.stem for p in (DBT_PROJECT_DIR / "models" / "marts").glob("*.sql")}
    declared = {m["name"]: m["columns"] for m in models["models"]}
    assert set(declared) == marts
    assert all(column.get("data_type") for columns in declared.values() for column in columns)

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    env = dict(
        os.environ, WAREHOUSE_DB=str(tmp_path / "warehouse.duckdb"), DBT_SEND_ANONYMOUS_USAGE_STATS="false"
    )

    def build() -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                str(Path(sys.executable).parent / "dbt"),
                "build",
                "--select",
                "+centres",
                *DBT_SKIP_TESTS,
                "--profiles-dir",
                ".",
            ],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    assert build().returncode == 0
    sql = project / "models" / "marts" / "centres.sql"
    sql.write_text(
        sql.read_text(encoding="utf-8").replace("    city_zh\n", "    length(city_zh) as city_zh\n")
    )
    changed = build()
    assert changed.returncode != 0
    assert "contract" in changed.stdout.lower()
    assert "city_zh" in changed.stdout
