"""The pre-commit hooks run exactly the commands of `make lint`, so a commit that passes them passes CI's lint."""

import re

import yaml

from pipeline.settings import PROJECT_ROOT


def recipe(target: str) -> list[str]:
    """The commands of a Makefile target, as written."""
    text = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    body = re.search(rf"^{target}:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.M)
    assert body, f"no target {target} in the Makefile"
    return [line.strip() for line in body.group(1).splitlines()]


def hook_command(entry: str) -> str:
    wrapped = re.fullmatch(r"bash -c '(.*)'", entry)
    return wrapped.group(1) if wrapped else entry


def test_pre_commit_runs_what_make_lint_runs():
    config = yaml.safe_load((PROJECT_ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert all(hook["language"] == "system" and hook["pass_filenames"] is False for hook in hooks)
    assert sorted(hook_command(h["entry"]) for h in hooks) == sorted(recipe("lint"))


def test_make_format_fixes_with_the_tools_lint_checks_with():
    tools = {command.split()[0].rsplit("/", 1)[-1] for command in recipe("lint")} - {"cd"}
    fixes = " ".join(recipe("format"))
    assert "ruff check --fix" in fixes
    assert "ruff format ." in fixes
    assert "sqlfluff fix" in fixes
    assert tools <= {"ruff", "sqlfluff", "mypy"}
