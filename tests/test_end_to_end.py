"""The daily DAG through real Airflow (`airflow dags test`, SQLite metadata), the real mock feed over HTTP,
real dbt and DuckDB files: what `make run` does, twice, on a small dataset."""

import csv
import io
import json
import re
import subprocess
import zipfile

import duckdb
import pytest
from openpyxl import load_workbook

from pipeline.commands import local_run_command
from pipeline.settings import PROJECT_ROOT
from publish.marts import MARTS
from tests.helpers import AS_OF, file_digests


def run(dataset, warehouse, exports):
    result = subprocess.run(
        local_run_command(
            "--as-of",
            AS_OF.isoformat(),
            "--data",
            str(dataset),
            "--warehouse",
            str(warehouse),
            "--exports",
            str(exports),
        ),
        check=False,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout


ID_LIKE = re.compile(r"\d{17}[\dX]")  # the form of a PRC resident ID number


def mart_rows(published):
    con = duckdb.connect(str(published), read_only=True)
    try:
        return {m: con.execute(f"SELECT * FROM marts.{m}").fetchall() for m in MARTS}
    finally:
        con.close()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, dataset):
    tmp = tmp_path_factory.mktemp("e2e")
    warehouse, exports = tmp / "warehouse", tmp / "exports"
    out1 = run(dataset, warehouse, exports)
    first = (mart_rows(warehouse / "published.duckdb"), file_digests(exports / AS_OF.isoformat()))
    out2 = run(dataset, warehouse, exports)
    second = (mart_rows(warehouse / "published.duckdb"), file_digests(exports / AS_OF.isoformat()))
    return warehouse, exports, out1, out2, first, second


@pytest.mark.slow
def test_run_publishes_the_marts_and_prints_a_summary(two_runs, dataset):
    warehouse, exports, out1, _, (marts, _), _ = two_runs
    assert "By lifecycle stage" in out1
    assert "By renewal verdict" in out1
    assert str(warehouse / "published.duckdb") in out1
    assert str(exports / AS_OF.isoformat()) in out1
    institutions = [json.loads(line) for line in (dataset / "institutions.jsonl").read_text().splitlines()]
    assert len(marts["renewal_eligibility"]) == len(institutions)
    assert all(marts[m] for m in ("renewal_eligibility", "batch_counts", "reminders", "institution_flags"))
    con = duckdb.connect(str(warehouse / "published.duckdb"), read_only=True)
    stages = {
        r[0] for r in con.execute("SELECT DISTINCT lifecycle_stage FROM marts.renewal_eligibility").fetchall()
    }
    assert {"not_yet_due", "window_open", "grace_period", "abandoned", "terminated"} <= stages
    con.close()


@pytest.mark.slow
def test_rerun_gives_identical_marts_and_exports(two_runs):
    *_, first, second = two_runs
    assert first[0] == second[0]
    assert first[1] == second[1]


@pytest.mark.slow
def test_exports_open_and_match_the_reminders_mart(two_runs):
    warehouse, exports, *_ = two_runs
    folder = exports / AS_OF.isoformat()
    con = duckdb.connect(str(warehouse / "published.duckdb"), read_only=True)
    expected = dict(
        con.execute("SELECT supervising_centre, count(*) FROM marts.reminders GROUP BY 1").fetchall()
    )
    con.close()
    total = 0
    for path in folder.glob("*.csv"):
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert rows[0][:2] == ["机构编号", "机构名称"]
        centre = path.name.split("_")[0]
        assert len(rows) - 1 == expected.get(centre, 0), path.name
        total += len(rows) - 1
        book = load_workbook(path.with_suffix(".xlsx"))
        assert book.sheetnames[0] == "今日须办"  # the work list first, then the reminders by type
        per_type = book.worksheets[book.sheetnames.index("汇总") + 1 :]
        for sheet in per_type:  # one sheet per reminder type
            assert sheet.freeze_panes == "A2"
            assert [c.value for c in sheet[1]][:2] == [
                "机构名称",
                "机构备案号",
            ]
        assert sum(sheet.max_row - 1 for sheet in per_type) == len(rows) - 1
    assert total == sum(expected.values()) > 0


@pytest.mark.slow
def test_no_resident_id_or_full_name_anywhere(two_runs, dataset):
    warehouse, exports, *_ = two_runs
    certs = [json.loads(line) for line in (dataset / "certificates.jsonl").read_text().splitlines()]
    ids = {c["holder_id_no"] for c in certs}
    names = {c["holder_name"] for c in certs if len(c["holder_name"]) >= 3}
    for db in (warehouse / "warehouse.duckdb", warehouse / "published.duckdb"):
        con = duckdb.connect(str(db), read_only=True)
        columns = con.execute("""SELECT schema_name, table_name, column_name FROM duckdb_columns()
                                 WHERE data_type IN ('VARCHAR', 'JSON') AND database_name = current_database()""").fetchall()
        for schema, table, column in columns:
            values = con.execute(f'SELECT DISTINCT "{column}"::VARCHAR FROM "{schema}"."{table}"').fetchall()
            text = "\n".join(v[0] for v in values if v[0])
            leaked = set(ID_LIKE.findall(text)) & ids
            assert not leaked, f"{db.name} {schema}.{table}.{column} holds a resident ID"
            if "certificate" in table:  # institution contacts may share a common name with a holder
                assert not names & set(text.split("\n")), (
                    f"{schema}.{table}.{column} holds a holder's full name"
                )
        con.close()
    for path in (p for p in (exports / AS_OF.isoformat()).rglob("*") if p.is_file()):
        if path.suffix in (".csv", ".json"):
            blobs = [path.read_bytes().decode("utf-8-sig")]
        else:
            with zipfile.ZipFile(path) as z:
                blobs = [z.read(n).decode("utf-8", "replace") for n in z.namelist()]
        for blob in blobs:
            assert not set(ID_LIKE.findall(blob)) & ids, path.name
