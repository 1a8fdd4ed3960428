"""Small units: no function of the project's code (the tests aside) is longer than MAX_LINES lines, counted from
its `def` to its last line. A longer one is split into functions that each do one thing, named for what they do,
so that each can be read, tested and changed on its own."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from pipeline.settings import PROJECT_ROOT

MAX_LINES = 60
# every folder of Python code outside tests/ (virtualenvs and other hidden folders below them are skipped)
CODE_FOLDERS = ("bench", "bi", "dags", "deploy", "expectations", "ingest", "mock_feed", "pipeline", "publish")


def code_files() -> Iterator[Path]:
    """The project's Python files outside tests/, as paths relative to the checkout."""
    yield from (p.relative_to(PROJECT_ROOT) for p in sorted(PROJECT_ROOT.glob("*.py")))
    for folder in CODE_FOLDERS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            relative = path.relative_to(PROJECT_ROOT)
            if not any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
                yield relative


def function_lengths(source: str) -> dict[str, int]:
    """Every function and method of a module by qualified name (Class.method, outer.inner): its length in lines."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                assert child.end_lineno is not None
                lengths[prefix + child.name] = child.end_lineno - child.lineno + 1
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return lengths


def too_long() -> dict[tuple[str, str], int]:
    """(file, function) -> lines, for every function of the project's code over MAX_LINES."""
    return {
        (path.as_posix(), name): lines
        for path in code_files()
        for name, lines in function_lengths((PROJECT_ROOT / path).read_text(encoding="utf-8")).items()
        if lines > MAX_LINES
    }


def test_no_function_outside_the_tests_is_over_60_lines():
    found = too_long()
    assert not found, f"functions over {MAX_LINES} lines, to split into smaller ones: " + ", ".join(
        f"{path} {name} ({lines} lines)" for (path, name), lines in sorted(found.items())
    )


def test_the_length_counts_from_def_to_the_last_line_of_nested_functions_and_methods():
    source = "class A:\n    def f(self):\n        def g():\n            return 1\n\n        return g\n"
    assert function_lengths(source) == {"A.f": 5, "A.f.g": 2}
    assert any(path.as_posix() == "publish/exports.py" for path in code_files())
    assert not any(part.startswith(".") for path in code_files() for part in path.parts)
