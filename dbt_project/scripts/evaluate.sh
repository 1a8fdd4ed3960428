#!/usr/bin/env bash
# Run dbt Labs' dbt-project-evaluator over a copy of dbt_project/ and print its findings.
#
#   dbt_project/scripts/evaluate.sh EVALUATOR DBT_UTILS [WORK_DIR]
#
# EVALUATOR and DBT_UTILS are local copies of github.com/dbt-labs/dbt-project-evaluator and dbt-labs/dbt-utils
# (the package hub is out of reach here): a checked-out folder, or a git directory from which the tags
# v1.3.2 and 1.4.1 are exported (EVALUATOR_REF, DBT_UTILS_REF override them). The project itself never gets
# the packages: the copy (WORK_DIR, default a new /tmp/dbt-evaluate.*) gets a packages.yml with local paths,
# the evaluator settings below and scripts/evaluator_exceptions.csv (each accepted finding and why).
set -euo pipefail

[ $# -ge 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
project=$(dirname "$here")
root=$(dirname "$project")
python="$root/.venv/bin/python"
dbt="$root/.venv/bin/dbt"
work=${3:-$(mktemp -d /tmp/dbt-evaluate.XXXXXX)}
mkdir -p "$work/packages"

# a checked-out package is used as it is; a git directory gives the pinned tag
package() {  # package SOURCE REF NAME
    local source=$1 ref=$2 name=$3 dest="$work/packages/$3"
    rm -rf "$dest" && mkdir -p "$dest"
    if [ -f "$source/dbt_project.yml" ]; then
        cp -R "$source/." "$dest/"
    else
        git --git-dir="$source" archive "$ref" | tar -x -C "$dest"
    fi
    [ -f "$dest/dbt_project.yml" ] || { echo "error: $source ($ref) is not a dbt package" >&2; exit 2; }
}
package "$1" "${EVALUATOR_REF:-v1.3.2}" dbt_project_evaluator
package "$2" "${DBT_UTILS_REF:-1.4.1}" dbt_utils
# the evaluator asks the hub for dbt_utils: point it at the local copy instead
printf 'packages:\n  - local: %s\n' "$work/packages/dbt_utils" > "$work/packages/dbt_project_evaluator/packages.yml"

rm -rf "$work/project"
mkdir -p "$work/project"
(cd "$project" && tar --exclude=./target --exclude=./logs --exclude=./dbt_packages --exclude=./scripts -cf - .) \
    | tar -xf - -C "$work/project"
printf 'packages:\n  - local: %s\n  - local: %s\n' \
    "$work/packages/dbt_project_evaluator" "$work/packages/dbt_utils" > "$work/project/packages.yml"
cp "$here/evaluator_exceptions.csv" "$work/project/seeds/dbt_project_evaluator_exceptions.csv"

"$python" - "$work/project/dbt_project.yml" <<'EOF'
import sys

import yaml

path = sys.argv[1]
config = yaml.safe_load(open(path))
config.setdefault("vars", {})["dbt_project_evaluator"] = {
    # macros/test_unique_combination.sql is the project's own compound-key test (no dbt_utils at run time)
    "primary_key_test_macros": [
        ["dbt.test_unique", "dbt.test_not_null"],
        ["dbt_utils.test_unique_combination_of_columns"],
        ["renewal.test_unique_combination"],
    ],
}
# the marts' names are the published contract (docs/contract.md), so the fct_/dim_ naming rule does not apply
config.setdefault("models", {})["dbt_project_evaluator"] = {
    "marts": {"structure": {"fct_model_naming_conventions": {"+enabled": False}}}
}
# the exceptions seed above replaces the package's empty one
seeds = config.setdefault("seeds", {})
seeds["dbt_project_evaluator"] = {"dbt_project_evaluator_exceptions": {"+enabled": False}}
seeds.setdefault("renewal", {})["dbt_project_evaluator_exceptions"] = {"+schema": "dbt_project_evaluator"}
yaml.safe_dump(config, open(path, "w"), sort_keys=False, allow_unicode=True)
EOF

cd "$work/project"
export WAREHOUSE_DB="$work/evaluate.duckdb"
rm -f "$WAREHOUSE_DB"
"$dbt" deps --profiles-dir . --quiet
# the evaluator's own tests warn on each finding; the summary below is what to read
"$dbt" build --profiles-dir . --vars '{as_of: "2000-01-01"}' \
    --select package:dbt_project_evaluator dbt_project_evaluator_exceptions > "$work/build.log" \
    || { tail -40 "$work/build.log" >&2; echo "the evaluator failed: $work/build.log" >&2; exit 1; }

"$python" - "$WAREHOUSE_DB" <<'EOF'
import sys

import duckdb

con = duckdb.connect(sys.argv[1], read_only=True)
tables = [
    r[0]
    for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'fct\\_%' ESCAPE '\\' ORDER BY 1"
    ).fetchall()
]
for table in ("fct_test_coverage", "fct_documentation_coverage"):
    row = con.execute(f"SELECT * FROM {table}").fetchdf().iloc[0]
    print(f"{table}: " + ", ".join(f"{k}={row[k]}" for k in row.index if k != "measured_at"))
print()
findings = 0
for table in tables:
    if table in ("fct_test_coverage", "fct_documentation_coverage"):
        continue
    rows = con.execute(f"SELECT * FROM {table}").fetchall()
    findings += len(rows)
    print(f"{len(rows):>4}  {table}")
    for row in rows:
        print("        " + " | ".join(str(v) for v in row))
print(f"\n{findings} findings, after the accepted exceptions of scripts/evaluator_exceptions.csv:")
for fct, column, excluded, _ in con.execute(
    "SELECT * FROM dbt_project_evaluator.dbt_project_evaluator_exceptions ORDER BY ALL"
).fetchall():
    print(f"        {fct}: {column} {excluded}")
EOF
echo "work directory: $work"
