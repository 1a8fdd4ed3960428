"""Each supervising centre reads only its own rows of the PostgreSQL marts (row-level security that
publish_postgres re-creates on every swap), on a real server: a login in role bi_centre_350100 sees 350100's
rows of every table and nothing of 350200's, whatever it tries; the province's login (bi_reader) sees all."""

import io

import duckdb
import psycopg2
import pytest

from pipeline import steps
from publish.marts import PUBLISHED
from publish.postgres import centre_role
from tests.helpers import AS_OF, private_copy

CITY, OTHER = "350100", "350200"
CITY_LOGIN, PROVINCE_LOGIN = "reader_350100", "reader_province"


@pytest.fixture(scope="module")
def published(built, tmp_path_factory):
    settings = private_copy(built, tmp_path_factory.mktemp("centre-access"))
    steps.publish(AS_OF, settings=settings)
    return settings


@pytest.fixture(scope="module")
def marts_db(published, postgres):
    """The marts published into a database of their own, with a login for 350100 and one for the province,
    created as an admin would (the centre's role comes with the publication)."""
    admin = psycopg2.connect(postgres)
    admin.autocommit = True
    cur = admin.cursor()
    cur.execute("DROP DATABASE IF EXISTS centre_marts WITH (FORCE)")
    cur.execute("CREATE DATABASE centre_marts")
    dsn = postgres.replace("dbname=postgres", "dbname=centre_marts")
    steps.publish_to_postgres(AS_OF, settings=published, dsn=dsn)
    for login in (CITY_LOGIN, PROVINCE_LOGIN):
        cur.execute(f"DROP ROLE IF EXISTS {login}")
    cur.execute(f"CREATE ROLE {CITY_LOGIN} LOGIN PASSWORD 'pw' IN ROLE {centre_role(CITY)}")
    cur.execute(f"CREATE ROLE {PROVINCE_LOGIN} LOGIN PASSWORD 'pw' IN ROLE bi_reader")
    try:
        yield dsn
    finally:
        cur.execute("DROP DATABASE IF EXISTS centre_marts WITH (FORCE)")
        for login in (CITY_LOGIN, PROVINCE_LOGIN):
            cur.execute(f"DROP ROLE IF EXISTS {login}")
        admin.close()


def connect_as(dsn: str, login: str):
    con = psycopg2.connect(dsn.replace("user=postgres", f"user={login} password=pw"))
    con.autocommit = True
    return con


def expected_rows(published) -> dict[tuple[str, str], tuple[int, int | None]]:
    """(schema, table): (all rows, 350100's rows or None where no centre may read the table), from the
    published DuckDB file: by supervising_centre, else by the centre of the row's institution."""
    return {table: (total, own) for table, (total, own, _) in rules(published).items()}


def with_centre_column(published) -> list[tuple[str, str]]:
    return [table for table, (_, _, by) in rules(published).items() if by == "supervising_centre"]


def rules(published) -> dict[tuple[str, str], tuple[int, int | None, str | None]]:
    duck = duckdb.connect(str(published.published_db), read_only=True)
    out = {}
    for schema, table in PUBLISHED:
        columns = {
            c for (c,) in duck.execute(f"SELECT column_name FROM (DESCRIBE {schema}.{table})").fetchall()
        }
        total = duck.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
        if "supervising_centre" in columns:
            by, where = "supervising_centre", f"supervising_centre = '{CITY}'"
        elif "institution_id" in columns:
            by = "institution_id"
            where = (
                "institution_id IN (SELECT institution_id FROM marts.renewal_eligibility "
                f"WHERE supervising_centre = '{CITY}')"
            )
        else:
            out[schema, table] = (total, None, None)
            continue
        own = duck.execute(f"SELECT count(*) FROM {schema}.{table} WHERE {where}").fetchone()[0]
        out[schema, table] = (total, own, by)
    duck.close()
    return out


@pytest.mark.slow
def test_a_centre_reads_its_own_rows_of_every_table_and_the_province_all(published, marts_db):
    expected = expected_rows(published)
    city = connect_as(marts_db, CITY_LOGIN).cursor()
    province = connect_as(marts_db, PROVINCE_LOGIN).cursor()
    for (schema, table), (total, own) in expected.items():
        province.execute(f"SELECT count(*) FROM {schema}.{table}")
        assert province.fetchone()[0] == total, (schema, table)
        if own is None:  # ops.run_metrics: the pipeline's runs, the province's alone
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                city.execute(f"SELECT count(*) FROM {schema}.{table}")
            continue
        city.execute(f"SELECT count(*) FROM {schema}.{table}")
        assert city.fetchone()[0] == own, (schema, table)
    assert ("ops", "run_metrics") in {t for t, (_, own) in expected.items() if own is None}
    # the comparison can fail: the centre has rows, and other centres have more
    assert expected["marts", "renewal_eligibility"][1] > 0
    assert expected["marts", "review_sla"][1] > 0
    assert expected["marts", "batch_counts"][1] > 0  # by its institutions
    assert all(total > own for total, own in expected.values() if own is not None and total)
    city.execute("SELECT DISTINCT supervising_centre FROM marts.renewal_eligibility")
    assert city.fetchall() == [(CITY,)]


@pytest.mark.slow
def test_a_centre_cannot_reach_another_centres_rows_in_any_way(published, marts_db):
    expected = expected_rows(published)
    own_institutions = expected["marts", "renewal_eligibility"][1]
    con = connect_as(marts_db, CITY_LOGIN)
    city = con.cursor()
    # asked for by name
    for schema, table in with_centre_column(published):
        city.execute(f"SELECT count(*) FROM {schema}.{table} WHERE supervising_centre = %s", [OTHER])
        assert city.fetchone()[0] == 0, (schema, table)
    province = connect_as(marts_db, PROVINCE_LOGIN).cursor()
    province.execute("SELECT count(*) FROM marts.renewal_eligibility WHERE supervising_centre = %s", [OTHER])
    assert province.fetchone()[0] > 0  # they are there
    province.execute(
        "SELECT institution_id FROM marts.renewal_eligibility WHERE supervising_centre = %s LIMIT 1", [OTHER]
    )
    other_institution = province.fetchone()[0]
    city.execute("SELECT count(*) FROM marts.batch_counts WHERE institution_id = %s", [other_institution])
    assert city.fetchone()[0] == 0
    # an error as a side channel: the policy is applied before the reader's own condition
    city.execute(
        "SELECT count(*) FROM marts.renewal_eligibility "
        f"WHERE 1 / (CASE WHEN supervising_centre = '{OTHER}' THEN 0 ELSE 1 END) = 1"
    )
    assert city.fetchone()[0] == own_institutions
    # a function of its own that would see every row it is called on (read-only is only a default)
    city.execute("SET default_transaction_read_only = off")
    city.execute("""CREATE FUNCTION pg_temp.peek(centre text) RETURNS boolean LANGUAGE plpgsql COST 0.0001 AS
                    $$ BEGIN RAISE NOTICE 'peeked %', centre; RETURN true; END $$""")
    con.notices.clear()
    city.execute("SELECT count(*) FROM marts.renewal_eligibility WHERE pg_temp.peek(supervising_centre)")
    assert city.fetchone()[0] == own_institutions
    assert con.notices
    assert all(f"peeked {CITY}" in notice for notice in con.notices), con.notices[:3]
    # COPY reads through the policy too
    out = io.StringIO()
    city.copy_expert("COPY marts.renewal_eligibility (supervising_centre) TO STDOUT", out)
    assert set(out.getvalue().split()) == {CITY}
    # the column statistics (most common values) are hidden from a reader under row-level security
    admin = psycopg2.connect(marts_db)
    admin.autocommit = True
    admin.cursor().execute("ANALYZE marts.renewal_eligibility")
    admin.close()
    city.execute(
        "SELECT count(*) FROM pg_stats WHERE schemaname = 'marts' AND tablename = 'renewal_eligibility'"
    )
    assert city.fetchone()[0] == 0
    # no way around the policy: switching it off, or becoming another role
    city.execute("SET row_security = off")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        city.execute("SELECT count(*) FROM marts.renewal_eligibility")
    city.execute("RESET row_security")
    for role in ("bi_reader", centre_role(OTHER), "postgres"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            city.execute(f"SET ROLE {role}")
    con.close()


@pytest.mark.slow
def test_the_rule_holds_after_the_next_swap(published, marts_db):
    """The policies belong to the tables, which each publication replaces: they are made again with them."""
    steps.publish_to_postgres(AS_OF, settings=published, dsn=marts_db)
    expected = expected_rows(published)
    city = connect_as(marts_db, CITY_LOGIN).cursor()
    for table in ("renewal_eligibility", "review_sla", "work_items", "evaluation_plans"):
        city.execute(f"SELECT count(*) FROM marts.{table}")
        assert city.fetchone()[0] == expected["marts", table][1], table
    city.execute("SELECT count(*) FROM marts.review_sla WHERE supervising_centre <> %s", [CITY])
    assert city.fetchone()[0] == 0
