import datetime as dt
import json
import os
import re
import subprocess
import time

import requests

from mock_feed.generate import generate_dataset, resident_id_check_digit
from pipeline.commands import serve_command
from tests.helpers import AS_OF, TOKEN

CERT = re.compile(r"^[YS]\d{4}35\d{6}\d{2}[1-5]\d{6}$")


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_generation_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    generate_dataset(a, AS_OF, institutions=15, seed=3)
    generate_dataset(b, AS_OF, institutions=15, seed=3)
    for f in sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_generated_records_have_contract_forms(dataset):
    certs = read(dataset / "certificates.jsonl")
    assert certs
    assert all(CERT.match(c["certificate_no"]) for c in certs)
    for c in certs[:2000]:
        ident = c["holder_id_no"]
        assert len(ident) == 18
        assert resident_id_check_digit(ident[:17]) == ident[17]
    institutions = read(dataset / "institutions.jsonl")
    assert {i["institution_type"] for i in institutions} == {"employer", "school", "social_org"}
    assert any(c.get("_queryable") is False for c in certs), "some certificates must not be queryable"


def test_paging_auth_and_lookup(feed, dataset):
    url = f"{feed.url}/api/v1/plans"
    assert requests.get(url).status_code == 401
    headers = {"Authorization": f"Bearer {TOKEN}"}
    seen, cursor = [], None
    while True:
        params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
        page = requests.get(url, params=params, headers=headers).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    plans = read(dataset / "plans.jsonl")
    assert sorted(p["plan_no"] for p in seen) == sorted(p["plan_no"] for p in plans)
    keys = [(p["updated_at"], p["plan_no"]) for p in seen]
    assert keys == sorted(keys)

    since = "2026-11-01T00:00:00+08:00"
    recent = requests.get(url, params={"updated_since": since, "limit": 1000}, headers=headers).json()[
        "items"
    ]
    expected = [
        p for p in plans if dt.datetime.fromisoformat(p["updated_at"]) >= dt.datetime.fromisoformat(since)
    ]
    assert len(recent) == len(expected)

    certs = read(dataset / "certificates.jsonl")
    hidden = next(c["certificate_no"] for c in certs if c.get("_queryable") is False)
    shown = certs[0]["certificate_no"]
    answer = requests.post(
        f"{feed.url}/api/v1/certificates/lookup",
        headers=headers,
        json={"certificate_nos": [shown, hidden, "Y000035000000000000000"]},
    ).json()
    assert [r["found"] for r in answer["results"]] == [True, False, False]
    assert requests.get(f"{feed.url}/api/v1/certificates/{hidden}", headers=headers).status_code == 404
    assert (
        "_queryable"
        not in requests.get(f"{feed.url}/api/v1/certificates", headers=headers, params={"limit": 5}).text
    )
    assert requests.get(f"{feed.url}/openapi.json").json()["openapi"].startswith("3.")
    assert requests.get(f"{feed.url}/healthz").json() == {"status": "ok"}


def test_every_item_is_served_as_stored_minus_underscore_fields(feed, dataset):
    """The feed serves items from flat files written by DuckDB at start-up: every record of the dataset comes
    back exactly once, equal to what is stored minus `_` fields, in (updated_at, key) order."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    served, cursor = [], None
    while True:
        page = requests.get(
            f"{feed.url}/api/v1/certificates",
            headers=headers,
            params={"limit": 1000, **({"cursor": cursor} if cursor else {})},
        ).json()
        served += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    stored = [
        {k: v for k, v in c.items() if not k.startswith("_")} for c in read(dataset / "certificates.jsonl")
    ]

    def key(c):
        return dt.datetime.fromisoformat(c["updated_at"]), c["certificate_no"]

    assert served == sorted(stored, key=key)


def test_a_stopped_feed_removes_its_serialised_dataset(dataset, tmp_path, monkeypatch):
    """The feed serialises the dataset to a temporary directory (3.7 GB at 6,000 institutions); stopping it the
    way every caller does (SIGTERM) must remove it."""
    from pipeline.local_run import start_feed

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    proc, url = start_feed(dataset, TOKEN, "")
    assert list(tmp_path.glob("mock-feed-*")), "the feed should serve from a temporary directory"
    assert requests.get(f"{url}/healthz", timeout=5).ok
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert not list(tmp_path.glob("mock-feed-*"))


def test_a_feed_stopped_while_loading_removes_its_temporary_copy(dataset, tmp_path):
    """SIGTERM while the dataset is still being serialised (minutes at province scale) cleans up too."""
    proc = subprocess.Popen(
        serve_command(dataset, 0),
        env=dict(os.environ, TMPDIR=str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("mock-feed-*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert list(tmp_path.glob("mock-feed-*")), "the feed should load into a temporary directory"
    proc.terminate()  # at once: the load of the test dataset takes about a second
    proc.wait(timeout=30)
    assert proc.stdout.read() == b"", "stopped before it was ready"
    assert not list(tmp_path.glob("mock-feed-*"))
