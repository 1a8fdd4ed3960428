"""Publication targets: published.duckdb and Parquet swapped atomically under readers; PostgreSQL on a real
server, loaded in bulk, swapped in one transaction while a BI reader queries it, readable by bi_reader only."""

import shutil
import threading
import time
from dataclasses import replace

import duckdb
import psycopg2
import pytest

from pipeline import steps
from publish.marts import MARTS, PUBLISHED
from tests.helpers import AS_OF


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory, built):
    """Two candidates that differ: the built warehouse (A) and a copy with a third of the institutions' mart
    rows removed (B), so a reader can tell which snapshot it saw."""
    tmp = tmp_path_factory.mktemp("snapshots")
    a = replace(built, warehouse_dir=tmp / "a")
    b = replace(built, warehouse_dir=tmp / "b")
    for s in (a, b):
        s.warehouse_dir.mkdir()
        shutil.copy(built.warehouse_db, s.warehouse_db)
    con = duckdb.connect(str(b.warehouse_db))
    con.execute("DELETE FROM marts.renewal_eligibility WHERE hash(institution_id) % 3 = 0")
    con.close()
    for s in (a, b):
        steps.publish(AS_OF, settings=s)
    return a, b


def counts(con) -> tuple[int, int]:
    return tuple(
        con.execute(
            "SELECT (SELECT count(*) FROM marts.renewal_eligibility), (SELECT count(*) FROM marts.reminders)"
        ).fetchone()
    )


@pytest.mark.slow
def test_duckdb_and_parquet_readers_see_one_snapshot_or_the_other(snapshots, tmp_path):
    a, b = snapshots
    target = replace(a, warehouse_dir=tmp_path)
    shutil.copy(a.warehouse_db, target.warehouse_db)
    steps.publish(AS_OF, settings=target)
    expected = {}
    for s in (a, b):
        con = duckdb.connect(str(s.published_db), read_only=True)
        expected[counts(con)] = s
        con.close()
    assert len(expected) == 2
    held = duckdb.connect(str(target.published_db), read_only=True)  # a BI tool with the file open
    seen, errors, stop = set(), [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                con = duckdb.connect(str(target.published_db), read_only=True)
                seen.add(counts(con))
                con.close()
                pq = duckdb.connect()
                rows = pq.execute(
                    f"SELECT count(*) FROM '{target.parquet_dir}/marts/renewal_eligibility.parquet'"
                )
                seen.add(("parquet", rows.fetchone()[0]))
                pq.close()
            except Exception as exc:
                errors.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(6):
            source = (b, a)[n % 2]
            shutil.copy(source.warehouse_db, target.warehouse_db)
            steps.publish(AS_OF, settings=target)
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[:3]
    assert {c for c in seen if c[0] != "parquet"} <= set(expected)
    assert {c[1] for c in seen if c[0] == "parquet"} <= {c[0] for c in expected}
    assert counts(held) in expected  # the held connection still reads a whole snapshot
    held.close()
    for schema, table in PUBLISHED:
        assert (target.parquet_dir / schema / f"{table}.parquet").exists()
    versions = list((tmp_path / ".parquet.versions").iterdir())
    assert len(versions) == 1  # older Parquet sets are removed


@pytest.mark.slow
def test_postgres_skipped_without_configuration(snapshots, monkeypatch, caplog):
    monkeypatch.delenv("MARTS_POSTGRES_DSN", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_MARTS_POSTGRES", raising=False)
    caplog.set_level("INFO")
    assert steps.publish_to_postgres(AS_OF, settings=snapshots[0]) == {"skipped": True}
    assert "PostgreSQL publication skipped" in caplog.text


@pytest.mark.slow
def test_postgres_publication_is_complete_commented_and_read_only(snapshots, postgres):
    a, _ = snapshots
    published = steps.publish_to_postgres(AS_OF, settings=a, dsn=postgres)
    duck = duckdb.connect(str(a.published_db), read_only=True)
    pg = psycopg2.connect(postgres)
    pg.autocommit = True
    cur = pg.cursor()
    for mart in MARTS:
        cur.execute(f"SELECT count(*) FROM marts.{mart}")
        assert (
            cur.fetchone()[0]
            == published[mart]
            == duck.execute(f"SELECT count(*) FROM marts.{mart}").fetchone()[0]
        )
    # values survive the trip: compare one mart's rows in full, as text
    columns = [r[0] for r in duck.execute("DESCRIBE marts.renewal_eligibility").fetchall()]
    select = ", ".join(f"{c}::VARCHAR" for c in columns)
    mine = duck.execute(f"SELECT {select} FROM marts.renewal_eligibility ORDER BY institution_id").fetchall()
    cur.execute(
        f"SELECT {', '.join(c + '::text' for c in columns)} FROM marts.renewal_eligibility "
        "ORDER BY institution_id"
    )
    theirs = cur.fetchall()
    assert len(mine) == len(theirs)
    for m, t in zip(mine, theirs, strict=False):
        assert [v.lower() if v in ("true", "false") else v for v in m] == list(t)
    cur.execute(
        "SELECT col_description('marts.renewal_eligibility'::regclass, attnum) FROM pg_attribute "
        "WHERE attrelid = 'marts.renewal_eligibility'::regclass AND attname = 'lifecycle_stage'"
    )
    assert cur.fetchone()[0] == "续期阶段代码 / lifecycle stage (R-STAGE)"
    cur.execute("DROP ROLE IF EXISTS metabase; CREATE ROLE metabase LOGIN IN ROLE bi_reader")
    reader = psycopg2.connect(postgres.replace("user=postgres", "user=metabase"))
    rcur = reader.cursor()
    rcur.execute("SELECT count(*) FROM marts.reminders")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        rcur.execute("DELETE FROM marts.reminders")
    reader.close()
    pg.close()
    duck.close()


@pytest.mark.slow
def test_postgres_takes_a_nul_from_the_feed_as_u_fffd(snapshots, postgres, tmp_path):
    """PostgreSQL's text cannot hold NUL, which a hostile feed value may carry: the value is published with U+FFFD
    in its place (as the exports show control characters) and the rest of the publication goes through."""
    a, _ = snapshots
    nul = replace(a, warehouse_dir=tmp_path / "nul")
    nul.warehouse_dir.mkdir()
    shutil.copy(a.warehouse_db, nul.warehouse_db)
    con = duckdb.connect(str(nul.warehouse_db))
    institution = con.execute("SELECT min(institution_id) FROM marts.renewal_eligibility").fetchone()[0]
    con.execute(
        "UPDATE marts.renewal_eligibility SET institution_name = '福州' || chr(0) || '中心' WHERE institution_id = ?",
        [institution],
    )
    con.close()
    steps.publish(AS_OF, settings=nul)
    published = steps.publish_to_postgres(AS_OF, settings=nul, dsn=postgres)
    pg = psycopg2.connect(postgres)
    cur = pg.cursor()
    cur.execute(
        "SELECT institution_name FROM marts.renewal_eligibility WHERE institution_id = %s", [institution]
    )
    assert cur.fetchone() == ("福州\ufffd中心",)
    cur.execute("SELECT count(*) FROM marts.renewal_eligibility")
    assert cur.fetchone()[0] == published["renewal_eligibility"] > 1
    pg.close()
    # the next test starts from snapshot A again
    steps.publish_to_postgres(AS_OF, settings=a, dsn=postgres)


@pytest.mark.slow
def test_postgres_second_publish_swaps_atomically_under_a_reader(snapshots, postgres):
    a, b = snapshots
    steps.publish_to_postgres(AS_OF, settings=a, dsn=postgres)
    expected = set()
    for s in (a, b):
        con = duckdb.connect(str(s.published_db), read_only=True)
        expected.add(counts(con))
        con.close()
    seen, errors, stop = set(), [], threading.Event()

    def reader():
        con = psycopg2.connect(postgres)
        con.autocommit = True
        cur = con.cursor()
        while not stop.is_set():
            try:
                cur.execute(
                    "SELECT (SELECT count(*) FROM marts.renewal_eligibility), "
                    "(SELECT count(*) FROM marts.reminders)"
                )
                seen.add(tuple(cur.fetchone()))
            except Exception as exc:
                errors.append(repr(exc))
        con.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(4):
            steps.publish_to_postgres(AS_OF, settings=(b, a)[n % 2], dsn=postgres)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[:3]
    assert seen
    assert seen <= expected
    assert len(seen) == 2  # the reader saw both snapshots, each whole


@pytest.mark.slow
def test_production_bi_login_reads_the_marts(snapshots, postgres):
    """deploy/marts-db-init.sh (docker-compose marts-db) on the real server, then a publish: the BI login
    reads the marts and cannot change them."""
    import re

    from pipeline.settings import PROJECT_ROOT

    script = (PROJECT_ROOT / "deploy" / "marts-db-init.sh").read_text()
    sql = re.search(r"<<SQL\n(.*?)\nSQL", script, re.DOTALL)[1].replace("${BI_PASSWORD}", "pw")
    pg = psycopg2.connect(postgres)
    pg.autocommit = True
    cur = pg.cursor()
    cur.execute("DROP DATABASE IF EXISTS metabase")
    cur.execute("SELECT rolname FROM pg_roles WHERE rolname IN ('bi_reader', 'bi_metabase', 'metabase')")
    for (role,) in cur.fetchall():  # left by other tests: start from what a new marts-db has
        cur.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
    for statement in filter(str.strip, sql.split(";")):
        cur.execute(statement)
    pg.close()
    steps.publish_to_postgres(AS_OF, settings=snapshots[0], dsn=postgres)
    bi = psycopg2.connect(postgres.replace("user=postgres", "user=bi_metabase password=pw"))
    bcur = bi.cursor()
    bcur.execute("SELECT count(*) FROM marts.renewal_eligibility")
    assert bcur.fetchone()[0] > 0
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        bcur.execute("CREATE TABLE marts.scratch (x int)")
    bi.close()
