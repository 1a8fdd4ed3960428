"""`make mutants`: apply each mutation of tests/mutation/mutants.tsv alone to the rule SQL or seeds, run the fast
test tier against it, and report each mutation killed or survived, the score and the rule ids covered.

A mutation is killed when the fast tier fails on it: first tests/test_rules.py (the dbt unit tests and the policy
pins, ~10 s), then, only if those pass, the rest of `make test-fast`. The file is restored after each mutation,
whatever happens. Exit status 1 when the score is below --min-score or a rule id has fewer than two mutations.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# mutants.tsv: written with the tests; mutants_independent.tsv: written blind to them, by another hand
MUTANT_FILES = sorted(Path(__file__).parent.glob("mutants*.tsv"))


@dataclass(frozen=True)
class Mutation:
    line: str
    file: str
    old: str
    new: str
    rule: str


def unescape(text: str) -> str:
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], text)


def load_mutations(paths: list[Path] = MUTANT_FILES) -> list[Mutation]:
    found = []
    for path in paths:
        found += load_mutation_file(path)
    return found


def load_mutation_file(path: Path) -> list[Mutation]:
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 4:
            raise ValueError(
                f"{path}:{number}: expected 4 tab-separated fields (file, old, new, rule), got {len(fields)}"
            )
        file, old, new, rule = fields
        found.append(Mutation(f"{path.stem}:{number}", file, unescape(old), unescape(new), rule.strip()))
    return found


def fast_tier_fails(env: dict[str, str]) -> tuple[bool, str]:
    """Run the fast tier, rule tests first; (failed, the first failing test or '')."""
    pytest = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    for args in (["tests/test_rules.py"], ["-m", "not slow", "--ignore", "tests/test_rules.py", "tests"]):
        result = subprocess.run(pytest + args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, re.MULTILINE)
            return True, failed[0] if failed else f"pytest exit {result.returncode}"
    return False, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rule", help="only the mutations of this rule id")
    parser.add_argument(
        "--file", help="only the mutations of this file of tests/mutation (e.g. mutants_independent)"
    )
    parser.add_argument("--min-score", type=float, default=0.9)
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the check that the fast tier passes without mutations (development only)",
    )
    args = parser.parse_args(argv)

    import os

    sys.path.insert(0, str(ROOT))
    from tests.helpers import build_empty_warehouse, rule_ids

    mutations = [
        m
        for m in load_mutations()
        if (not args.rule or m.rule == args.rule) and (not args.file or m.line.startswith(f"{args.file}:"))
    ]
    work = Path(tempfile.mkdtemp(prefix="mutants-"))
    print(f"building the empty warehouse for the dbt unit tests in {work} …", flush=True)
    built = build_empty_warehouse(work)
    if built.returncode != 0:
        print(built.stdout[-3000:], file=sys.stderr)
        return 2
    env = dict(os.environ, RULES_EMPTY_WAREHOUSE=str(work))
    failed, first = (False, "") if args.no_baseline else fast_tier_fails(env)
    if failed:
        print(f"the fast tier fails without any mutation ({first}): fix that first", file=sys.stderr)
        return 2

    results: list[tuple[Mutation, str, str]] = []
    started = time.monotonic()
    for m in mutations:
        path = ROOT / m.file
        original = path.read_text(encoding="utf-8")
        count = original.count(m.old)
        if count != 1:
            results.append((m, "STALE", f"old text found {count} times"))
            print(f"  {m.line:<24} {m.rule:<11} STALE    {m.file}: old text found {count} times", flush=True)
            continue
        t0 = time.monotonic()
        try:
            path.write_text(original.replace(m.old, m.new, 1), encoding="utf-8")
            killed, by = fast_tier_fails(env)
        finally:
            path.write_text(original, encoding="utf-8")
        status = "killed" if killed else "SURVIVED"
        results.append((m, status, by))
        print(
            f"  {m.line:<24} {m.rule:<11} {status:<8} {time.monotonic() - t0:5.1f} s  {m.file}"
            + (f"  by {by}" if by else ""),
            flush=True,
        )

    applied = [r for r in results if r[1] != "STALE"]
    killed = sum(1 for r in applied if r[1] == "killed")
    score = killed / len(applied) if applied else 0.0
    per_rule: dict[str, list[int]] = {}
    for m, status, _ in applied:
        per_rule.setdefault(m.rule, [0, 0])[status == "killed"] += 1
    print(
        f"\n{killed} of {len(applied)} mutations killed: score {score:.0%} "
        f"({len(results) - len(applied)} stale, {time.monotonic() - started:.0f} s)"
    )
    for rule in sorted(per_rule):
        survived, dead = per_rule[rule]
        print(f"  {rule:<11} {dead + survived} mutations, {dead} killed")
    thin = sorted(
        r for r in (rule_ids() if not args.rule else {args.rule}) if sum(per_rule.get(r, [0, 0])) < 2
    )
    if thin:
        print(f"rule ids with fewer than two mutations: {', '.join(thin)}")
    stale = [r for r in results if r[1] == "STALE"]
    return 0 if score >= args.min_score and not thin and not stale else 1


if __name__ == "__main__":
    sys.exit(main())
