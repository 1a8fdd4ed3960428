import datetime as dt
import hashlib
import hmac
import itertools
import json
import logging
import os
from urllib.parse import parse_qs, urlsplit

import duckdb
import orjson
import pytest
from openpyxl import Workbook

from ingest.centre_records import load_centre_records, parse_date
from ingest.feed_client import FeedClient
from ingest.land import land_resource
from ingest.warehouse import connect
from tests.helpers import TOKEN


def test_certificates_land_pseudonymised(tmp_path, feed, dataset):
    con = connect(tmp_path / "w.duckdb")
    result = land_resource(con, FeedClient(feed.url, TOKEN), "certificates", "L1", b"secret")
    source = [json.loads(line) for line in (dataset / "certificates.jsonl").read_text().splitlines()]
    assert result.items == len(source)
    row = json.loads(
        con.execute(
            "SELECT to_json(c) FROM raw.certificates AS c WHERE certificate_no = ?",
            [source[0]["certificate_no"]],
        ).fetchone()[0]
    )
    assert "holder_id_no" not in row
    assert (
        row["holder_id_hash"]
        == hmac.new(b"secret", source[0]["holder_id_no"].encode(), hashlib.sha256).hexdigest()
    )
    assert row["holder_name"][0] == source[0]["holder_name"][0]
    assert set(row["holder_name"][1:]) == {"*"}
    # typed landing: every documented field is a column, cast to its type; no field is left over
    assert (row["level"], row["issued_on"], row["extra"]) == (
        source[0]["level"],
        source[0]["issued_on"],
        None,
    )
    dump = con.execute("SELECT string_agg(to_json(c)::VARCHAR, '\n') FROM raw.certificates AS c").fetchone()[
        0
    ]
    assert not any(c["holder_id_no"] in dump for c in source[:500])


def test_every_certificate_is_looked_up_once_across_windows(tmp_path, feed, dataset, monkeypatch):
    """Lookups take the due certificate numbers from DuckDB a window at a time: with windows of 3 requests
    (1,500 numbers) the test feed spans many windows, and every certificate must get exactly one answer."""
    from ingest import lookups

    monkeypatch.setattr(lookups, "REQUESTS_PER_WINDOW", 3)
    con = connect(tmp_path / "w.duckdb")
    client = FeedClient(feed.url, TOKEN)
    landed = land_resource(con, client, "certificates", "L1", b"secret")
    assert landed.items > 10 * 1_500
    result = lookups.verify_lookups(con, client, "L1")
    answers = con.execute("""SELECT count(*), count(DISTINCT certificate_no),
                                    (SELECT count(DISTINCT certificate_no) FROM raw.certificates)
                             FROM raw.certificate_lookups""").fetchone()
    assert answers[0] == answers[1] == answers[2] == result.checked == landed.items
    assert result.requests == -(-landed.items // lookups.BATCH_SIZE)
    assert 0 < result.found < result.checked  # the test data holds certificates the feed cannot find
    assert lookups.verify_lookups(con, client, "L2").checked == result.checked - result.found  # rechecked


class PagesFeed(FeedClient):
    """A feed serving these page bodies (the cursor is the page's index), read by the client's own code."""

    def __init__(self, *bodies: bytes) -> None:
        super().__init__("http://feed.invalid")
        self.bodies = bodies

    def request_json(self, method, target, what, body=None, parse=None):
        body = self.bodies[int(parse_qs(urlsplit(target).query).get("cursor", ["0"])[0])]
        return body, parse(body)


@pytest.mark.parametrize(
    "form",
    ["compact", "spaced", "escaped", "number", "quote in name", "no name", "unknown field", "quarantined"],
)
def test_personal_data_is_pseudonymised_whatever_the_json_form(tmp_path, form):
    """Whatever the item's JSON form, no resident ID and no full name lands: not in the columns, not in `extra`
    (a page with an unknown field) and not in the quarantine (an item that fails its checks)."""

    id_no, name = "350521196510134129", '付"怡浩' if form == "quote in name" else "付怡浩"
    record = {
        "certificate_no": "S179935000001243000001",
        "plan_no": "P1",
        "institution_id": "35000001",
        "level": 3,
        "issued_on": "2024-02-17",
        "holder_name": name,
        "holder_id_no": id_no,
        "updated_at": "2024-02-17T10:00:00+08:00",
    }
    if form == "number":
        record["holder_id_no"] = int(id_no[:17])
    if form == "no name":
        del record["holder_name"]
    if form == "unknown field":
        record["holder_photo_no"] = "P-77"
    if form == "quarantined":
        record["issued_on"] = "soon"
    text = json.dumps(
        record, ensure_ascii=form == "escaped", separators=(", ", ": ") if form == "spaced" else (",", ":")
    )
    if form == "escaped":
        text = text.replace(f'"{id_no}"', '"' + "".join(f"\\u{ord(c):04x}" for c in id_no) + '"')

    con = connect(tmp_path / "w.duckdb")
    body = ('{"items":[' + text + '],"next_cursor":null}').encode()
    land_resource(con, PagesFeed(body), "certificates", "L1", b"secret")
    landed = "raw.quarantine" if form == "quarantined" else "raw.certificates"
    stored = con.execute(f"SELECT to_json(t)::VARCHAR FROM {landed} AS t").fetchone()[0]
    row = json.loads(stored)
    if form == "quarantined":
        assert row["reason"] == "issued_on: expected a date, got soon"
        row = row["record"]
    if form == "unknown field":
        assert row["extra"] == {"holder_photo_no": "P-77"}
    assert "holder_id_no" not in stored
    assert id_no[:17] not in stored
    assert (
        row["holder_id_hash"]
        == hmac.new(b"secret", str(record["holder_id_no"]).encode(), hashlib.sha256).hexdigest()
    )
    if form == "no name":
        assert row.get("holder_name") is None
    else:
        assert row["holder_name"] == name[0] + "*" * (len(name) - 1)
        assert name[1:] not in stored


def test_failed_pull_leaves_nothing_visible(tmp_path, dataset):
    from mock_feed.server import FaultOptions
    from tests.helpers import RunningFeed

    broken = RunningFeed(dataset, FaultOptions(malformed_rate=1.0))
    con = connect(tmp_path / "w.duckdb")
    try:
        client = FeedClient(broken.url, TOKEN, max_attempts=2, backoff_base=0.01)
        with pytest.raises(Exception, match="certificates page 0"):
            land_resource(con, client, "certificates", "L1", b"k")
    finally:
        broken.stop()
    assert con.execute("SELECT count(*) FROM raw.certificates").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM raw.feed_loads").fetchone()[0] == 0


def test_dates_in_the_accepted_forms():
    assert str(parse_date("2026-03-05")) == "2026-03-05"
    assert str(parse_date("2026/3/5")) == "2026-03-05"
    assert str(parse_date(46086)) == "2026-03-05"
    assert str(parse_date("46086")) == "2026-03-05"
    with pytest.raises(ValueError, match="is not a date"):
        parse_date("05.03.26x")


def _warehouse_with_institutions(tmp_path) -> duckdb.DuckDBPyConnection:
    con = connect(tmp_path / "w.duckdb")
    con.execute("""INSERT INTO raw.institutions (load_id, page_no, institution_id)
                   VALUES ('L0', 0, '35000001'), ('L0', 0, '35000002')""")
    return con


BAD_ROWS = [
    # (application_id, institution_id, received_on, incentive_evidence, expected reason fragment)
    ("XQ1", "35000001", "2026-10-01", "是", None),
    ("XQ2", "35000002", "2026/10/2", "false", None),
    ("XQ3", "35000001", "2026-13-40", "true", "received_on"),
    ("XQ4", "35999999", "2026-10-01", "true", "not an institution"),
    ("", "35000001", "2026-10-01", "true", "application_id is missing"),
    ("XQ6", "35000001", "2026-10-01", "maybe", "not a boolean"),
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("chinese", [False, True])
def test_bad_centre_rows_are_quarantined(tmp_path, fmt, chinese):
    con = _warehouse_with_institutions(tmp_path)
    folder = tmp_path / "centre_records"
    folder.mkdir()
    header = (
        ["申请编号", "机构编号", "收到日期", "是否提供激励制度佐证材料", "是否提供不可抗力书面说明"]
        if chinese
        else [
            "application_id",
            "institution_id",
            "received_on",
            "incentive_evidence",
            "force_majeure_statement",
        ]
    )
    rows = [[*list(r[:4]), "否"] for r in BAD_ROWS]
    if fmt == "csv":
        text = "\n".join(",".join(r) for r in [header, *rows])
        (folder / "renewal_applications.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    else:
        wb = Workbook()
        wb.active.append(header)
        for r in rows:
            wb.active.append(r)
        wb.save(folder / "renewal_applications.xlsx")
    result = load_centre_records(con, folder, "L1")
    assert result.loaded["renewal_applications"] == 2
    assert result.quarantined["renewal_applications"] == 4
    quarantined = con.execute("SELECT row_number, reason FROM raw.quarantine ORDER BY row_number").fetchall()
    expected = [(n + 2, r[4]) for n, r in enumerate(BAD_ROWS) if r[4]]
    assert [q[0] for q in quarantined] == [e[0] for e in expected]
    for (_, reason), (_, fragment) in zip(quarantined, expected, strict=False):
        assert fragment in reason
    good = con.execute(
        "SELECT application_id, received_on::VARCHAR, incentive_evidence "
        "FROM raw.centre_renewal_applications ORDER BY 1"
    ).fetchall()
    assert good == [("XQ1", "2026-10-01", True), ("XQ2", "2026-10-02", False)]


@pytest.mark.parametrize("flat_reads", [True, False])
def test_every_combination_of_missing_empty_and_mistyped_fields_gets_its_reasons(tmp_path, flat_reads):
    """Each item is quarantined with every reason that applies, in the fields' order, and only such items: over
    all combinations of a field absent, empty, of the wrong type or right, for a required text field, an optional
    integer and two required typed fields (landing tells the usable items with one test, then spells out why)."""
    from ingest.land import pull

    values = {
        "certificate_no": (None, "", "C"),  # None: the field is absent
        "level": (None, "", "x", 3),
        "issued_on": (None, "", "soon", "2024-02-17"),
        "updated_at": (None, "", "later", "2024-02-17T10:00:00+08:00"),
    }
    expected_type = {"level": "an integer", "issued_on": "a date", "updated_at": "a timestamp"}
    items, expected = [], {}
    for n, combo in enumerate(itertools.product(*values.values())):
        given = {field: value for field, value in zip(values, combo, strict=True) if value is not None}
        items.append({"plan_no": f"P{n}", "institution_id": "35000001"} | given)
        reasons = []
        for field in values:
            text = str(given.get(field, ""))
            if field != "level" and text == "":
                reasons.append(f"{field}: missing")
            if field in expected_type and text not in ("", "3") and not text.startswith("2024-02-17"):
                reasons.append(f"{field}: expected {expected_type[field]}, got {text}")
        expected[f"P{n}"] = "; ".join(reasons) or None
    body = orjson.dumps({"items": items, "next_cursor": None})
    con = connect(tmp_path / "w.duckdb")
    pull(con, PagesFeed(body), "certificates", "L1", b"k", False, dt.timedelta(days=1), flat_reads)
    landed = dict.fromkeys(row[0] for row in con.execute("SELECT plan_no FROM raw.certificates").fetchall())
    quarantined = dict(con.execute("SELECT record->>'plan_no', reason FROM raw.quarantine").fetchall())
    assert len(expected) == 3 * 4 * 4 * 4
    assert landed | quarantined == expected
    assert 0 < len(landed) < len(quarantined)


def test_bad_feed_records_are_quarantined_and_the_rest_lands(tmp_path, dataset):
    """Schema drift: an unknown new field is kept; a missing or mistyped required field is quarantined."""
    from tests.helpers import RunningFeed

    data = tmp_path / "drift"
    data.mkdir()
    plans = [json.loads(line) for line in (dataset / "plans.jsonl").read_text().splitlines()[:20]]
    plans[0]["new_field_from_upstream"] = {"anything": [1, 2]}
    del plans[1]["assessment_date"]
    plans[2]["candidates"] = "many"
    plans[3]["plan_no"] = None
    plans[4]["level"] = "高级"
    (data / "plans.jsonl").write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in plans))
    drifted = RunningFeed(data)
    con = connect(tmp_path / "w.duckdb")
    try:
        result = land_resource(con, FeedClient(drifted.url, TOKEN), "plans", "L1", b"k")
    finally:
        drifted.stop()
    assert (result.items, result.quarantined) == (20, 4)
    assert con.execute("SELECT count(*) FROM raw.plans").fetchone()[0] == 16
    extra = dict(con.execute("SELECT plan_no, extra FROM raw.plans").fetchall())
    assert json.loads(extra.pop(plans[0]["plan_no"])) == {"new_field_from_upstream": {"anything": [1, 2]}}
    assert set(extra.values()) == {None}  # the other items have no field beyond the columns
    reasons = dict(
        con.execute(
            "SELECT coalesce(record->>'plan_no', '?'), reason FROM raw.quarantine "
            "WHERE source = 'feed' AND file = 'plans'"
        ).fetchall()
    )
    assert reasons == {
        plans[1]["plan_no"]: "assessment_date: missing",
        plans[2]["plan_no"]: "candidates: expected an integer, got many",
        "?": "plan_no: missing",
        plans[4]["plan_no"]: "level: expected an integer, got 高级",
    }


def test_every_accepted_header_is_documented():
    from ingest.centre_records import KINDS
    from pipeline.settings import PROJECT_ROOT

    doc = (PROJECT_ROOT / "docs" / "centre_records.md").read_text()
    for kind, (fields, _) in KINDS.items():
        assert f"`{kind}`" in doc
        for f in fields:
            assert f"| `{f.name}` | {f.aliases[0]} |" in doc, (
                f"{kind}.{f.name} is not in docs/centre_records.md"
            )


def test_a_warehouse_of_json_items_is_converted_to_typed_columns_once(tmp_path):
    """Warehouses landed before typed landing held each item as JSON: opening one converts its raw feed tables
    in place, with the same rows in the same order, and the fields that are not columns kept in `extra`."""
    path = tmp_path / "w.duckdb"
    old = duckdb.connect(str(path))
    old.execute("CREATE SCHEMA raw")
    for table in ("institutions", "registered_occupations", "plans", "certificates"):
        old.execute(
            f"CREATE TABLE raw.{table} (load_id VARCHAR NOT NULL, page_no INTEGER NOT NULL, item JSON)"
        )
    items = [
        {"certificate_no": "C2", "level": 3, "issued_on": "2024-02-17", "holder_id_hash": "ab" * 32},
        {"certificate_no": "C1", "level": "x", "updated_at": "2024-02-17T10:00:00+08:00", "photo": [1]},
    ]
    old.executemany("INSERT INTO raw.certificates VALUES ('L0', 7, ?)", [[json.dumps(i)] for i in items])
    old.close()

    con = connect(path)
    rows = con.execute(
        "SELECT certificate_no, page_no, level, issued_on::VARCHAR, updated_at IS NOT NULL, holder_id_hash, extra "
        "FROM raw.certificates"
    ).fetchall()
    assert rows == [
        ("C2", 7, 3, "2024-02-17", False, "ab" * 32, None),
        ("C1", 7, None, None, True, None, '{"photo":[1]}'),
    ]
    con.close()
    assert connect(path).execute("SELECT count(*) FROM raw.certificates").fetchone()[0] == 2  # converted once


def _as_landed(table: str, item: dict, key: bytes) -> dict:
    """A feed item as typed landing must keep it: each documented field in its column's type, personal data
    pseudonymised, no nulls (a null and a missing field are the same to a column)."""
    from ingest.warehouse import FEED_FIELDS, PERSONAL_FIELDS

    types = {field: type_ for field, type_, _ in FEED_FIELDS[table]}
    convert = {
        "DATE": dt.date.fromisoformat,
        "TIMESTAMPTZ": dt.datetime.fromisoformat,
        "INTEGER": int,
        "BOOLEAN": bool,
    }
    landed = {}
    for field, value in item.items():
        if field.startswith("_") or value is None:  # `_` fields are the server's own, never served
            continue
        if field == "holder_id_no":
            value = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
        elif field == "holder_name":
            value = value[0] + "*" * (len(value) - 1)
        elif field in types and types[field] != "VARCHAR":
            value = convert[types[field]](value)
        landed[PERSONAL_FIELDS.get(field, field)] = value
    return landed


def _sorted(records: list[dict], key: list[str]) -> list[dict]:
    return sorted(records, key=lambda r: tuple(str(r.get(k)) for k in key))


def test_typed_landing_keeps_every_field_of_every_item(tmp_path, dataset):
    """Every item of every resource, read back from its raw row (typed columns plus `extra`), equals the item
    served: nothing is lost, every value has its type, and only personal data is changed (pseudonymised)."""
    from ingest.warehouse import FEED_RESOURCES
    from tests.helpers import RunningFeed

    data = tmp_path / "data"
    data.mkdir()
    served = {}
    for table in FEED_RESOURCES.values():
        items = [json.loads(line) for line in (dataset / f"{table}.jsonl").read_text().splitlines()]
        for n, item in enumerate(items):
            if n % 7 == 3:  # an upstream addition, on some items of each resource
                item["upstream_note"] = {"n": n, "tags": ["新", None]}
        (data / f"{table}.jsonl").write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items))
        served[table] = items
    running = RunningFeed(data)
    con = connect(tmp_path / "w.duckdb")
    try:
        for resource in FEED_RESOURCES:
            land_resource(con, FeedClient(running.url, TOKEN), resource, "L1", b"secret")
    finally:
        running.stop()
    for table, items in served.items():
        cursor = con.execute(f"SELECT * EXCLUDE (load_id, page_no) FROM raw.{table}")
        names = [d[0] for d in cursor.description]
        landed = []
        for row in cursor.fetchall():
            record = {k: v for k, v in zip(names, row, strict=True) if v is not None and k != "extra"}
            landed.append(record | json.loads(row[names.index("extra")] or "{}"))
        expected = [_as_landed(table, item, b"secret") for item in items]
        assert len(landed) == len(expected) >= 60, table
        key = [c for c in names if c != "extra"][:2]
        assert _sorted(landed, key) == _sorted(expected, key), table
        assert sum(1 for r in landed if "upstream_note" in r) == len(items[3::7])


def test_a_pull_counts_its_own_repeats_and_quarantine_across_batches(tmp_path, dataset, monkeypatch):
    """Usable items go straight into the raw table, batch by batch; a batch with an unusable item is read again to
    quarantine it. Repeated keys and the watermark are counted over this pull's rows only, also when a rerun lands
    under the same load id."""
    from ingest import land
    from tests.helpers import RunningFeed

    class SmallPages(FeedClient):
        def fetch_pages(self, resource, updated_since=None, limit=None, known=frozenset()):
            return super().fetch_pages(resource, updated_since, 4, known)

    monkeypatch.setattr(land, "PAGES_PER_FILE", 1)  # 33 items: 9 pages of 4, a batch a page per thread
    plans = [json.loads(line) for line in (dataset / "plans.jsonl").read_text().splitlines()[:30]]
    plans[5]["level"] = "高级"
    plans[17]["assessment_date"] = "2024-13-01"
    for plan in plans[:3]:
        plans.append(plan | {"updated_at": "2030-01-01T08:00:00+08:00", "status": "changed"})
    data = tmp_path / "repeats"
    data.mkdir()
    (data / "plans.jsonl").write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in plans))
    served = RunningFeed(data)
    con = connect(tmp_path / "w.duckdb")
    con.execute("SET threads = 2")  # two files a batch, whatever the machine: 5 batches
    try:
        pulls = [
            land_resource(con, SmallPages(served.url, TOKEN), "plans", "L1", b"k", full_refresh=True)
            for _ in range(2)
        ]
    finally:
        served.stop()
    assert [(r.pages, r.items, r.quarantined, r.repeated) for r in pulls] == [(9, 33, 2, 3)] * 2
    assert con.execute("SELECT count(*), count(DISTINCT plan_no) FROM raw.plans").fetchone() == (62, 28)
    assert con.execute(
        "SELECT count(*), count(DISTINCT record->>'plan_no') FROM raw.quarantine WHERE file = 'plans'"
    ).fetchone() == (4, 2)
    watermarks = con.execute(
        "SELECT max_updated_at, items FROM raw.feed_loads ORDER BY started_at"
    ).fetchall()
    assert watermarks == [(dt.datetime(2030, 1, 1, tzinfo=dt.UTC), 33)] * 2


def test_a_spool_has_no_name_so_a_killed_pull_leaves_nothing_behind():
    """Spools live in /dev/shm (memory): a named one outlived a pull killed mid-way (test_resilience kills one)."""
    from ingest.land import landing_spool, spool_path

    with landing_spool("certificates") as spool:
        spool.write(b'{"a":1}\n{"a":2}\n')
        spool.flush()
        assert os.fstat(spool.fileno()).st_nlink == 0  # no directory entry
        assert duckdb.sql(f"SELECT sum(a) FROM read_json('{spool_path(spool)}')").fetchall() == [(3,)]


def test_a_page_is_read_against_the_documented_fields():
    """A page of objects with documented fields only, each a string, an integer, a boolean or null, takes the
    fast reader and is flat; any other page is parsed in full (and landed with `extra` if a field is unknown),
    and a body that is no JSON object is refused (the client retries it)."""
    from ingest.feed_client import PageShape, page_reader

    read = page_reader(frozenset({"a", "b"}))
    flat = b'{"items":[{"a":1},{"b":"x","a":null},{},{"a":true}],"next_cursor":"2","other":[1]}'
    assert read(flat) == PageShape(4, "2", unknown=False, flat=True)
    for body, unknown in (
        (b'{"items":[{"a":1,"c":2}],"next_cursor":null}', True),
        (b'{"items":[{"a":1},7],"next_cursor":null}', True),
        (b'{"items":[{"a":1.5},{"b":true}],"next_cursor":3}', False),
        (b'{"items":[{"a":1e2}],"next_cursor":3}', False),
        (b'{"items":[{"a":{"b":1}},{"b":[]}],"next_cursor":null}', False),
    ):
        assert read(body) == PageShape(
            len(orjson.loads(body)["items"]), orjson.loads(body)["next_cursor"], unknown=unknown, flat=False
        )
    assert read(b'{"next_cursor":null}') is None  # fetch_pages names what is missing
    deep = b"[" * 1000 + b"]" * 1000  # deeper than msgspec goes, not orjson: read in full
    assert read(b'{"items":[{"a":' + deep + b'}],"next_cursor":null}') == PageShape(1, None, False, False)
    for body in (b'{"items":[{"a":', b""):
        with pytest.raises(orjson.JSONDecodeError):  # a ValueError: request_json retries it
            read(body)
    with pytest.raises(ValueError, match="not a JSON object"):
        read(b"[1]")


def test_flat_pages_land_as_json_pages_do(tmp_path, caplog):
    """A flat page's items, read as structs of text, land exactly as when read as JSON, whatever the JSON form of
    their strings and integers; an item that repeats a field, which DuckDB cannot read as a struct, makes the
    pull start again reading JSON (the first of the repeated values, as json_extract_string takes)."""
    from ingest.land import pull

    items = [
        '{"certificate_no":"C1","plan_no":"P1","institution_id":"35000001","level":3,"issued_on":"2024-02-17",'
        '"holder_name":"\\u4ed8\\u6021\\u6d69","holder_id_no":"350521196510134129",'
        '"updated_at":"2024-02-17T10:00:00+08:00"}',
        '{"certificate_no":"C2","plan_no":"P1","institution_id":"35000001","level":"4","issued_on":"2024-02-17",'
        '"holder_name":"付\\"怡\\n","holder_id_no":350521196510134,"updated_at":"2024-02-17T10:00:00Z",'
        '"occupation_code":""}',
        '{"certificate_no":"C3","plan_no":"P1","institution_id":"35000001","level":-0,"issued_on":"2024-02-17",'
        '"holder_name":null,"updated_at":"2024-02-17 10:00:00+08","occupation_code":"4-01-02-01"}',
        '{"certificate_no":"C4","plan_no":"P1","institution_id":"35000001","level":99999999999999999999,'
        '"issued_on":"2024-02-17","updated_at":"2024-02-17T10:00:00+08:00","holder_id_no":"\\u0033\\u0035"}',
    ]
    body = ('{"items":[' + ",".join(items) + '],"next_cursor":null}').encode()
    assert page_reader_shape(body).flat

    def landed(path, bodies, **kwargs):
        con = connect(path)
        pull(con, PagesFeed(*bodies), "certificates", "L1", b"k", False, dt.timedelta(days=1), **kwargs)
        return (
            con.execute(
                "SELECT * EXCLUDE (load_id, page_no) FROM raw.certificates ORDER BY certificate_no"
            ).fetchall()
            + con.execute("SELECT reason FROM raw.quarantine ORDER BY reason").fetchall()
        )

    as_json = landed(tmp_path / "json.duckdb", [body], flat_reads=False)
    assert len(as_json) == 3 + 1  # three land; C4, whose level does not cast, is quarantined
    assert landed(tmp_path / "flat.duckdb", [body]) == as_json

    # a batch with a page that is not flat (a new field) is read as JSON whole, keeping the field in `extra`
    photo = (
        b'{"items":['
        + items[0].replace('"C1"', '"C0"').encode()[:-1]
        + b',"photo_no":"P-77"}],"next_cursor":"1"}'
    )
    assert not page_reader_shape(photo).flat
    both = landed(tmp_path / "both.duckdb", [photo, body])
    assert both == landed(tmp_path / "both-json.duckdb", [photo, body], flat_reads=False)
    assert both[0][-1] == '{"photo_no":"P-77"}'
    assert both[1:] == as_json

    repeated = body.replace(b'"plan_no":"P1"', b'"plan_no":"P1","plan_no":"P2"', 1)
    assert page_reader_shape(repeated).flat  # msgspec keeps the last value, DuckDB's struct read refuses it
    con = connect(tmp_path / "repeated.duckdb")
    with caplog.at_level(logging.WARNING, logger="ingest.land"):
        land_resource(con, PagesFeed(repeated), "certificates", "L1", b"k")
    assert "pulling certificates again, reading every page as JSON" in caplog.text
    assert con.execute("SELECT DISTINCT plan_no FROM raw.certificates").fetchall() == [("P1",)]
    assert con.execute("SELECT count(*) FROM raw.certificates").fetchone() == (3,)
    assert con.execute("SELECT count(*) FROM raw.feed_loads").fetchone() == (1,)


def page_reader_shape(body: bytes):
    from ingest.feed_client import page_reader
    from ingest.warehouse import FEED_FIELDS

    return page_reader(frozenset(f for f, _, _ in FEED_FIELDS["certificates"]))(body)


def test_a_page_duckdb_cannot_read_fails_without_quoting_it(tmp_path):
    """A page both Python parsers accept but DuckDB refuses (a repeated "items" key): the pull fails naming the
    resource and pages, without DuckDB's message, which quotes the page and so the resident ID number."""
    id_no = "350521196510134129"
    item = f'{{"holder_id_no":"{id_no}","certificate_no":"C1"}}'
    body = f'{{"items":[{item}],"items":[{item}],"next_cursor":null}}'.encode()

    con = connect(tmp_path / "w.duckdb")
    with pytest.raises(RuntimeError, match="certificates pages 0-0: DuckDB could not read them") as failed:
        land_resource(con, PagesFeed(body), "certificates", "L1", b"k")
    assert id_no not in str(failed.value)
    assert failed.value.__cause__ is None
    assert failed.value.__suppress_context__  # the traceback does not show DuckDB's message either
    assert con.execute("SELECT count(*) FROM raw.certificates").fetchone() == (0,)
