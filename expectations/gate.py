"""The data-quality gate between dbt and publication, with Great Expectations.

GX's SQL datasources return no rows on DuckDB (duckdb-engine; see DEVELOPERS.md), so each check reads
exactly the columns it needs from the candidate warehouse with DuckDB and GX validates them as pandas
dataframes. The suites are code (expectations/suites.py). A failed expectation fails the gate; the caller
then publishes nothing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)


class GateFailed(RuntimeError):
    """The candidate marts failed the gate; nothing is published. The message lists each failure."""


@dataclass
class Failure:
    check: str
    expectation: str
    column: str | None
    unexpected_count: int | None
    examples: list

    def describe(self) -> str:
        col = f" on {self.column}" if self.column else ""
        count = f": {self.unexpected_count:,} unexpected" if self.unexpected_count is not None else ""
        examples = f" (e.g. {', '.join(map(str, self.examples[:5]))})" if self.examples else ""
        return f"{self.check}: {self.expectation}{col}{count}{examples}"


@dataclass
class GateResult:
    success: bool
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    rows_checked: dict[str, int] = field(default_factory=dict)


def _context():
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    return context


def _validate(context, check, frame) -> tuple[list[Failure], int, dict]:
    import great_expectations as gx

    batch = (
        context.data_sources.add_pandas(f"candidate_{check.name}")
        .add_dataframe_asset(check.name)
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=check.name, expectations=check.expectations()))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=check.name, data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    failures = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        res = r.result or {}
        examples = res.get("partial_unexpected_list") or []
        if not examples and r.exception_info and r.exception_info.get("raised_exception"):
            examples = [r.exception_info.get("exception_message")]
        failures.append(Failure(check.name, cfg.type, cfg.kwargs.get("column"),
                                res.get("unexpected_count"), examples))
    return failures, len(result.results), result.to_json_dict()


def run_gate(warehouse_db: Path, as_of: str, results_dir: Path | None = None) -> GateResult:
    """Validate the candidate marts in `warehouse_db`; raise GateFailed when any expectation fails."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from expectations.suites import SUITES  # imports great_expectations
    outcome = GateResult(success=True, evaluated=0)
    documents = {}
    context = _context()
    con = duckdb.connect(str(warehouse_db), read_only=True)
    try:
        for check in SUITES:
            frame = con.execute(check.sql, {"as_of": as_of} if "$as_of" in check.sql else None).df()
            outcome.rows_checked[check.name] = len(frame)
            failures, evaluated, document = _validate(context, check, frame)
            outcome.failures += failures
            outcome.evaluated += evaluated
            documents[check.name] = document
    finally:
        con.close()
    outcome.success = not outcome.failures
    if results_dir is not None:
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / "validation_results.json").write_text(
            json.dumps({"as_of": as_of, "success": outcome.success, "suites": documents},
                       ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    if not outcome.success:
        lines = "\n".join(f"  - {f.describe()}" for f in outcome.failures)
        raise GateFailed(f"data-quality gate failed for {as_of}: {len(outcome.failures)} of "
                         f"{outcome.evaluated} expectations failed; nothing was published.\n{lines}")
    log.info("gate passed: %d expectations over %s", outcome.evaluated,
             ", ".join(f"{n} ({c:,} rows)" for n, c in outcome.rows_checked.items()))
    return outcome
