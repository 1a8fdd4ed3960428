"""Publish the gated candidate marts as `published.duckdb`, replaced atomically (docs/contract.md §4).

The new file is written beside the old one and renamed over it: a reader that has the old file open keeps
reading the old snapshot (POSIX keeps the unlinked inode alive), a new reader gets the new one, and a
failed publish leaves the previous file untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from ingest.warehouse import open_duckdb, scalar, sql_literal

log = logging.getLogger(__name__)

# mart -> ordering that makes the published rows deterministic
MARTS = {
    "renewal_eligibility": "institution_id",
    "batch_counts": "institution_id, period_start, occupation_code, level, assessment_year, work_type",
    "institution_flags": "institution_id, flag",
    "review_sla": "application_id",
    "reminders": "institution_id, reminder_type",
    "renewal_history": "as_of, institution_id",
    "evaluation_plans": "plan_no",
    "renewal_application_facts": "institution_id",
    "renewal_warnings": "institution_id",
    "work_items": "list_centre, sort_order",
    "centre_summary": "supervising_centre, lifecycle_stage",
    "centres": "supervising_centre",
    "feed_freshness": "supervising_centre",
}
# schema ops: about the runs, not a function of D (so not compared between reruns)
OPS = {
    "run_metrics": "as_of, load_id, step, subject, metric",
    "centre_record_returns": "supervising_centre, source_file, row_number, field",
}
PUBLISHED = {("marts", m): order for m, order in MARTS.items()} | {
    ("ops", m): order for m, order in OPS.items()
}


def publish_marts(warehouse_db: Path, published_db: Path) -> dict[str, int]:
    published_db.parent.mkdir(parents=True, exist_ok=True)
    tmp = published_db.with_name(f".{published_db.name}.{uuid.uuid4().hex}.tmp")
    counts: dict[str, int] = {}
    try:
        con = open_duckdb(tmp)
        try:
            con.execute(f"ATTACH {sql_literal(str(warehouse_db))} AS candidate (READ_ONLY)")
            for schema in sorted({schema for schema, _ in PUBLISHED}):
                con.execute(f"CREATE SCHEMA {schema}")
            for (schema, mart), order in PUBLISHED.items():
                con.execute(
                    f"CREATE TABLE {schema}.{mart} AS SELECT * FROM candidate.{schema}.{mart} "
                    f"ORDER BY {order}"
                )
                counts[mart] = scalar(con, f"SELECT count(*) FROM {schema}.{mart}")
            # carry the Chinese/English descriptions that dbt persisted, so BI tools show them
            comments = con.execute(
                """SELECT schema_name, table_name, comment, NULL FROM duckdb_tables()
                   WHERE database_name = 'candidate' AND comment IS NOT NULL
                   UNION ALL
                   SELECT schema_name, table_name, comment, column_name FROM duckdb_columns()
                   WHERE database_name = 'candidate' AND comment IS NOT NULL"""
            ).fetchall()
            for schema, table, comment, column in comments:
                if (schema, table) not in PUBLISHED:
                    continue
                target = f"COLUMN {schema}.{table}.{column}" if column else f"TABLE {schema}.{table}"
                con.execute(f"COMMENT ON {target} IS {sql_literal(comment)}")
            # what was published, for the gate's volume check of the next run
            con.execute("""CREATE TABLE ops.publication AS
                           SELECT (SELECT max(as_of) FROM marts.renewal_eligibility) AS as_of,
                                  (SELECT count(*) FROM candidate.staging.stg_feed__institutions) AS institutions,
                                  (SELECT count(*) FROM candidate.staging.stg_feed__certificates) AS certificates""")
            con.execute("DETACH candidate")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, published_db)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
    log.info("published %s to %s", ", ".join(f"{n:,} {m}" for m, n in counts.items()), published_db)
    return counts


def publish_parquet(published_db: Path, parquet_link: Path) -> dict[str, str]:
    """One Parquet file per published table under `parquet_link` (`<schema>/<table>.parquet`).

    The files are written to a fresh folder beside it, and `parquet_link` is a symbolic link swapped onto
    that folder with one rename, so a reader sees the old set or the new one; older folders are removed.
    """
    versions = parquet_link.parent / f".{parquet_link.name}.versions"
    folder = versions / uuid.uuid4().hex
    files: dict[str, str] = {}
    con = open_duckdb(published_db, read_only=True)
    try:
        for schema, table in PUBLISHED:
            (folder / schema).mkdir(parents=True, exist_ok=True)
            path = folder / schema / f"{table}.parquet"
            con.execute(
                f"COPY {schema}.{table} TO {sql_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)"
            )
            files[f"{schema}.{table}"] = str(parquet_link / schema / f"{table}.parquet")
    finally:
        con.close()
    if parquet_link.exists() and not parquet_link.is_symlink():
        raise RuntimeError(f"{parquet_link} exists and is not the symbolic link this step manages")
    tmp_link = parquet_link.with_name(f".{parquet_link.name}.{uuid.uuid4().hex}.link")
    tmp_link.symlink_to(folder.relative_to(parquet_link.parent))
    os.replace(tmp_link, parquet_link)
    for old in versions.iterdir():
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    log.info("published Parquet files of %d tables under %s", len(files), parquet_link)
    return files
