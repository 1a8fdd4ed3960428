"""The data-quality gate between dbt and publication: the Great Expectations suites (expectations/suites.py)
over the candidate marts. A failed expectation fails the gate; the caller then publishes nothing."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest import clock
from ingest.warehouse import open_duckdb, scalar, sql_identifier, sql_literal
from pipeline.settings import province_code

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.expectations import Expectation

    from expectations.suites import Check

log = logging.getLogger(__name__)


class GateFailed(RuntimeError):
    """The candidate marts failed the gate; nothing is published. The message lists each failure."""


@dataclass
class Failure:
    check: str
    expectation: str
    column: str | None
    unexpected_count: int | None
    examples: list[object]

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


def _context(docs_dir: Path | None) -> EphemeralDataContext:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        context.add_data_docs_site(
            "gate",
            {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


# GX 1.24's SQL datasources return no rows on DuckDB (duckdb-engine), so each check reads exactly the columns it
# needs with DuckDB and GX validates them as pandas dataframes. At province scale a check covers millions of rows,
# and pandas frames of that size took two minutes. So DuckDB first narrows each check's rows to the *suspects*:
# rows that break at least one of its expectations by that expectation's SQL form, below. GX then judges the
# suspects, and its verdict, counts and examples are the gate's. A clean warehouse hands GX empty frames; a check
# whose expectations lack a SQL form hands GX every row. tests/test_gate.py proves, expectation by expectation,
# that the narrowing never hides a row GX would fail.
#
# The rows an expectation fails, as a SQL predicate over the check's columns (GX skips nulls except in the
# null check). Uniqueness uses a window count, so these run in a SELECT list, never in a WHERE clause. Each takes
# the expectation (its subclass's fields: column, value_set …) and the function that makes a value a parameter.
SUSPECT_SQL: dict[str, Callable[[Any, Callable[[object], str]], str]] = {
    "ExpectColumnValuesToNotBeNull": lambda e, p: f"{sql_identifier(e.column)} IS NULL",
    "ExpectColumnValuesToBeInSet": lambda e, p: (
        f"{sql_identifier(e.column)} IS NOT NULL AND NOT list_contains({p(list(e.value_set))}, {sql_identifier(e.column)})"
    ),
    "ExpectColumnValuesToBeBetween": lambda e, p: (
        f"{sql_identifier(e.column)} IS NOT NULL AND ({sql_identifier(e.column)} < {p(e.min_value)} "
        f"OR {sql_identifier(e.column)} > {p(e.max_value)})"
    ),
    "ExpectColumnValuesToMatchRegex": lambda e, p: (
        f"{sql_identifier(e.column)} IS NOT NULL AND NOT regexp_matches({sql_identifier(e.column)}::VARCHAR, {p(e.regex)})"
    ),
    "ExpectColumnValuesToBeUnique": lambda e, p: (
        f"{sql_identifier(e.column)} IS NOT NULL AND count(*) OVER (PARTITION BY {sql_identifier(e.column)}) > 1"
    ),
    "ExpectCompoundColumnsToBeUnique": lambda e, p: (
        f"count(*) OVER (PARTITION BY {', '.join(map(sql_identifier, e.column_list))}) > 1"
    ),
}


def suspects_sql(check_sql: str, expectations: list[Expectation]) -> tuple[str, dict[str, object]] | None:
    """SQL for the rows of `check_sql` that break at least one expectation, and its parameters;
    None when some expectation has no SQL form (GX then sees every row)."""
    params: dict[str, object] = {}

    def param(value: object) -> str:
        name = f"suspect_{len(params)}"
        params[name] = value
        return f"${name}"

    predicates = []
    for expectation in expectations:
        predicate = SUSPECT_SQL.get(type(expectation).__name__)
        if predicate is None:
            return None
        predicates.append(f"coalesce({predicate(expectation, param)}, false)")
    sql = (
        f"SELECT * EXCLUDE (__suspect) FROM (SELECT *, {' OR '.join(predicates)} AS __suspect "
        f"FROM ({check_sql})) WHERE __suspect"
    )
    return sql, params


def _validate(
    context: EphemeralDataContext, check: Check, frame: pd.DataFrame
) -> tuple[list[Failure], int, dict]:
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
    key = str(frame.columns[0])  # each check's first column is the row's key, shown in examples
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=check.name,
            validation_definitions=[definition],
            actions=[],
            result_format={
                "result_format": "SUMMARY",
                "unexpected_index_column_names": [key],
                "partial_unexpected_count": 5,
            },
        )
    )
    result = next(iter(checkpoint.run(batch_parameters={"dataframe": frame}).run_results.values()))
    failures = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        assert cfg is not None  # a result of a checkpoint's run carries its expectation
        res = r.result or {}
        examples: list[object] = [
            _example(row, key, cfg.kwargs.get("column"))
            for row in res.get("partial_unexpected_index_list") or []
        ]
        examples = examples or res.get("partial_unexpected_list") or []
        if not examples and r.exception_info and r.exception_info.get("raised_exception"):
            examples = [r.exception_info.get("exception_message")]
        failures.append(
            Failure(check.name, cfg.type, cfg.kwargs.get("column"), res.get("unexpected_count"), examples)
        )
    return failures, len(result.results), result.to_json_dict()


def _example(row: dict, key: str, column: str | None) -> str:
    """'plan_no=P123 (known_institution=None)': the offending row's key and, when it is another column, its value."""

    def show(value: object) -> object:
        return None if value != value else value  # NaN -> None

    text = f"{key}={show(row.get(key))}"
    return f"{text} ({column}={show(row.get(column))})" if column and column != key else text


def attach_published(con: duckdb.DuckDBPyConnection, published_db: Path | None) -> bool:
    """Attach the last publication read-only as `published`; whether it holds one (the volume check needs it)."""
    if published_db is None or not published_db.exists():
        return False
    con.execute(f"ATTACH {sql_literal(str(published_db))} AS published (READ_ONLY)")
    return bool(
        scalar(
            con,
            """SELECT count(*) FROM duckdb_tables() WHERE database_name = 'published'
               AND schema_name = 'ops' AND table_name = 'publication'""",
        )
    )


def check_rows(
    con: duckdb.DuckDBPyConnection, check: Check, params: dict[str, object]
) -> tuple[pd.DataFrame, int]:
    """The frame GX validates for `check` (its suspect rows when narrowing applies) and the rows it covers."""
    check_params = {k: v for k, v in params.items() if f"${k}" in check.sql}
    narrowed = suspects_sql(check.sql, check.expectations())
    if narrowed is None:
        frame = con.execute(check.sql, check_params).df()
        return frame, len(frame)
    frame = con.execute(narrowed[0], check_params | narrowed[1]).df()
    return frame, scalar(con, f"SELECT count(*) FROM ({check.sql})", check_params)


def write_results(
    results_dir: Path, as_of: str, success: bool, documents: dict, changed_since: dt.datetime | None = None
) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "validation_results.json").write_text(
        json.dumps(
            {
                "as_of": as_of,
                "success": success,
                # null: every row was checked; else the certificate checks' rows landed after this time
                "changed_since": changed_since.isoformat() if changed_since else None,
                "suites": documents,
            },
            ensure_ascii=False,
            indent=1,
            default=str,
        ),
        encoding="utf-8",
    )


def run_gate(
    warehouse_db: Path,
    as_of: str,
    results_dir: Path | None = None,
    published_db: Path | None = None,
    docs_dir: Path | None = None,
    changed_since: dt.datetime | None = None,
) -> GateResult:
    """Validate the candidate marts in `warehouse_db` (volume against the last publication, `published_db`); raise
    GateFailed if any expectation fails. Results go to `results_dir`, the GX Data Docs site to `docs_dir`. With
    `changed_since`, the row checks on the certificates cover only the rows landed after it (suites.changed);
    without, every row (pipeline/check_scope.py decides which)."""
    from expectations.suites import MAX_DROP, SUITES  # imports great_expectations

    outcome = GateResult(success=True, evaluated=0)
    documents = {}
    context = _context(docs_dir)
    params = {
        "as_of": dt.date.fromisoformat(as_of),
        "now": clock.now(),
        "max_drop": float(os.environ.get("GATE_MAX_DROP") or MAX_DROP),
        "changed_since": changed_since,
        "province": province_code(),
    }
    con = open_duckdb(warehouse_db, read_only=True)
    try:
        has_published = attach_published(con, published_db)
        for check in SUITES:
            if check.needs_published and not has_published:
                log.info("gate: %s skipped, no earlier publication to compare with", check.name)
                continue
            frame, outcome.rows_checked[check.name] = check_rows(con, check, params)
            failures, evaluated, document = _validate(context, check, frame)
            outcome.failures += failures
            outcome.evaluated += evaluated
            documents[check.name] = document | {
                "rows_checked": outcome.rows_checked[check.name],
                "rows_handed_to_gx": len(frame),
            }
    finally:
        con.close()
    if docs_dir is not None:
        context.build_data_docs()  # once for all checks (an action per checkpoint rebuilt the site each time)
    outcome.success = not outcome.failures
    if results_dir is not None:
        write_results(results_dir, as_of, outcome.success, documents, changed_since)
    if not outcome.success:
        lines = "\n".join(f"  - {f.describe()}" for f in outcome.failures)
        raise GateFailed(
            f"data-quality gate failed for {as_of}: {len(outcome.failures)} of "
            f"{outcome.evaluated} expectations failed; nothing was published.\n{lines}"
        )
    log.info(
        "gate passed (%s): %d expectations over %s",
        f"rows changed since {changed_since.isoformat()}" if changed_since else "every row",
        outcome.evaluated,
        ", ".join(f"{n} ({c:,} rows)" for n, c in outcome.rows_checked.items()),
    )
    return outcome
