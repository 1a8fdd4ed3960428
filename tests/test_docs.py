"""The repository carries its own specification: docs/rules.md states every rule and names the unit tests
that pin it, docs/contract.md lists every published table with every column, and the docs, code and models
link only to files inside the repository."""

import re
from pathlib import Path

import pytest
import yaml

from pipeline.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from publish.marts import PUBLISHED
from tests.helpers import dbt_unit_tests, rule_ids

RULES = PROJECT_ROOT / "docs" / "rules.md"
CONTRACT = PROJECT_ROOT / "docs" / "contract.md"
# Where the specification was first written, beside a checkout of the repository; a clone does not have it.
UPSTREAM_RULES = PROJECT_ROOT.parent / "shared" / "RULES.md"


def test_rules_md_states_every_rule_of_the_upstream_rules():
    if not UPSTREAM_RULES.exists():
        pytest.skip(f"{UPSTREAM_RULES} is not beside this checkout")
    missing = rule_ids(UPSTREAM_RULES.read_text(encoding="utf-8")) - rule_ids()
    assert not missing, f"docs/rules.md does not state {sorted(missing)}"


def test_every_rule_has_an_index_row_and_a_section_of_its_own():
    text = RULES.read_text(encoding="utf-8")
    headings = re.findall(r"^#{3,4} (.+)$", text, re.M)
    for rule in sorted(rule_ids()):
        assert f"| {rule} |" in text, f"{rule} has no row in the index of docs/rules.md"
        assert any(re.match(rf"`?{rule}\b", h) or h.startswith(f"{rule}:") for h in headings), (
            f"{rule} has no section of its own in docs/rules.md"
        )


def test_rules_md_names_every_unit_test_and_no_other():
    names = {t["name"] for t in dbt_unit_tests()}
    cited = re.findall(r"`((?:r|history)_[a-z0-9_]+)(…)?`", RULES.read_text(encoding="utf-8"))
    whole = {name for name, ellipsis in cited if not ellipsis}
    assert whole <= names, f"docs/rules.md names unit tests that do not exist: {sorted(whole - names)}"
    prefixes = {name for name, ellipsis in cited if ellipsis}
    dangling = sorted(p for p in prefixes if not any(n.startswith(p) for n in names))
    assert not dangling, f"docs/rules.md abbreviates unit tests that do not exist: {dangling}"
    assert names <= whole, f"unit tests missing from docs/rules.md: {sorted(names - whole)}"


def model_columns() -> dict[tuple[str, str], list[str]]:
    """Each published model's documented columns, from the models' YAML of schemas marts and ops."""
    found = {}
    for schema in ("marts", "ops"):
        for path in sorted((DBT_PROJECT_DIR / "models" / schema).glob("_*__models.yml")):
            for model in yaml.safe_load(path.read_text(encoding="utf-8"))["models"]:
                found[(schema, model["name"])] = [c["name"] for c in model.get("columns", [])]
    return found


def contract_sections() -> dict[str, str]:
    text = CONTRACT.read_text(encoding="utf-8")
    parts = re.split(r"^### `([a-z_]+\.[a-z_]+)`\n", text, flags=re.M)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


@pytest.mark.parametrize(("schema", "table"), sorted(PUBLISHED))
def test_contract_lists_every_column_of_every_published_table(schema, table):
    sections = contract_sections()
    assert f"{schema}.{table}" in sections, f"docs/contract.md has no section `{schema}.{table}`"
    columns_table = sections[f"{schema}.{table}"].split("| column |", 1)[-1]
    listed = re.findall(r"^\| (?:\*\*)?`([a-z_0-9]+)`(?:\*\*)? \|", columns_table, re.M)
    documented = model_columns()[(schema, table)]
    assert sorted(set(listed)) == sorted(documented), (
        f"{schema}.{table}: docs/contract.md lists {sorted(set(listed) - set(documented))} that the model's "
        f"YAML does not describe and misses {sorted(set(documented) - set(listed))}"
    )


# The folders whose text may point at files: every kind of source, doc and model (not .venv or dbt's target).
LINKED = [
    "README.md",
    "bench/README.md",
    "docs",
    "dags",
    "pipeline",
    "ingest",
    "publish",
    "expectations",
    "mock_feed",
    "tests",
    "bi",
    "deploy",
    "dbt_project/models",
    "dbt_project/macros",
    "dbt_project/seeds",
    "dbt_project/scripts",
    "dbt_project/tests",
    "Makefile",
    "pyproject.toml",
    "docker-compose.yml",
]
SUFFIXES = {".md", ".py", ".sql", ".yml", ".yaml", ".csv", ".tsv", ".sh", ".toml", ""}


def text_files():
    for entry in LINKED:
        path = PROJECT_ROOT / entry
        paths = [path] if path.is_file() else sorted(path.rglob("*"))
        for p in paths:
            relative = p.relative_to(PROJECT_ROOT)
            if (
                p.is_file()
                and p.suffix in SUFFIXES
                and not any(part.startswith(".") for part in relative.parts)
            ):
                yield p


def test_nothing_points_outside_the_repository():
    # this file names the upstream specification on purpose (the test above), so it is left out
    outside = re.compile(r"\.\./shared|shared/(?:RULES|CONTRACT)|\b(?:RULES|STYLE)\.md|\bCONTRACT\b")
    found = [
        f"{p.relative_to(PROJECT_ROOT)}:{n}: {line.strip()[:100]}"
        for p in text_files()
        if p != Path(__file__).resolve()
        for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if outside.search(line)
    ]
    assert not found, "point at docs/rules.md or docs/contract.md instead:\n" + "\n".join(found)


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces as hyphens."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", strip_code(markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def strip_code(markdown: str) -> str:
    return re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)


@pytest.mark.parametrize(
    "doc",
    ["README.md", "bench/README.md", *sorted(f"docs/{p.name}" for p in (PROJECT_ROOT / "docs").glob("*.md"))],
)
def test_every_link_of_a_doc_resolves_inside_the_repository(doc):
    source = PROJECT_ROOT / doc
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", strip_code(source.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        resolved = (source.parent / path).resolve() if path else source
        if not resolved.is_relative_to(PROJECT_ROOT) or not resolved.exists():
            broken.append(f"{target}: no such file in the repository")
        elif (
            anchor
            and resolved.suffix == ".md"
            and anchor not in github_anchors(resolved.read_text(encoding="utf-8"))
        ):
            broken.append(f"{target}: no heading #{anchor} in {resolved.relative_to(PROJECT_ROOT)}")
    assert not broken, f"{doc}:\n" + "\n".join(broken)
