"""The feed with a history (mock_feed/timeline.py): each day's dataset is a view of one timeline, with records that
arrive late or are corrected, and the mock feed serves the timeline as it stood on a day."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import subprocess
import time

import orjson
import pytest
import requests
from helpers import file_digests

from mock_feed.timeline import NotATimeline, generate_timeline, view
from pipeline.commands import mock_feed_command, serve_command
from pipeline.local_run import free_port

START, END = dt.date(2025, 12, 1), dt.date(2026, 10, 30)
KEYS = {
    "institutions.jsonl": ("institution_id",),
    "registered_occupations.jsonl": ("institution_id", "occupation_code"),
    "plans.jsonl": ("plan_no",),
    "certificates.jsonl": ("certificate_no",),
}


@pytest.fixture(scope="module")
def timeline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("timeline")
    generate_timeline(folder, START, END, institutions=100, seed=7)
    return folder


def records(folder, name):
    with open(folder / name, encoding="utf-8") as lines:
        return [orjson.loads(line) for line in lines]


def rows(folder, kind):
    with open(folder / "centre_records" / f"{kind}.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def day_end(day):
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone(dt.timedelta(hours=8)))


def test_a_view_holds_each_record_once_as_it_stood_that_day(timeline, tmp_path):
    day = dt.date(2026, 9, 20)
    view(timeline, day, tmp_path)
    for name, key in KEYS.items():
        versions = records(timeline, name)
        seen = records(tmp_path, name)
        keys = [tuple(r[k] for k in key) for r in seen]
        assert len(keys) == len(set(keys)), name
        assert all(dt.datetime.fromisoformat(r["updated_at"]) < day_end(day) for r in seen), name
        newest = {}
        for record in versions:  # each key's newest version by the end of the day
            if dt.datetime.fromisoformat(record["updated_at"]) < day_end(day):
                newest[tuple(record[k] for k in key)] = record
        assert {tuple(r[k] for k in key): r for r in seen} == newest, name
    applications = rows(tmp_path, "renewal_applications")
    assert "_known_on" not in applications[0]
    assert all(r["review_completed_on"] <= day.isoformat() for r in applications if r["review_completed_on"])


def test_days_are_views_of_one_history(timeline, tmp_path):
    """A later day has every record of an earlier day, in the same or a later version, and more."""
    days = [START, dt.date(2026, 9, 30), END]
    for day in days:
        view(timeline, day, tmp_path / day.isoformat())
    for earlier, later in itertools.pairwise(days):
        for name, key in KEYS.items():
            before = {tuple(r[k] for k in key): r for r in records(tmp_path / earlier.isoformat(), name)}
            after = {tuple(r[k] for k in key): r for r in records(tmp_path / later.isoformat(), name)}
            assert before.keys() <= after.keys(), name
            assert all(after[k]["updated_at"] >= v["updated_at"] for k, v in before.items()), name
        assert len(records(tmp_path / later.isoformat(), "certificates.jsonl")) > len(
            records(tmp_path / earlier.isoformat(), "certificates.jsonl")
        )


def test_no_record_is_served_before_its_institution(timeline):
    """A plan, a certificate or a registered occupation the feed serves on a day has its institution served by
    then: the gate refuses a plan of an unknown institution, so a day that broke this would publish nothing."""
    first_seen: dict[str, str] = {}
    for institution in records(timeline, "institutions.jsonl"):
        iid = institution["institution_id"]
        first_seen.setdefault(iid, institution["updated_at"])  # a key's versions come oldest first
    early = []
    for name in ("plans.jsonl", "certificates.jsonl", "registered_occupations.jsonl"):
        for record in records(timeline, name):
            iid = record["institution_id"]
            when = dt.datetime.fromisoformat(record["updated_at"])
            if when < dt.datetime.fromisoformat(first_seen[iid]) and when.date() >= START:
                early.append((name, iid, record["updated_at"], first_seen[iid]))
    assert not early, f"{len(early)} records served before their institution, e.g. {early[:3]}"


def test_late_and_corrected_records(timeline):
    plans: dict[str, list[dict]] = {}
    for plan in records(timeline, "plans.jsonl"):
        plans.setdefault(plan["plan_no"], []).append(plan)
    corrected = [
        v for v in plans.values() if len({p["passed"] for p in v if p["status"] == "completed"}) == 2
    ]
    assert corrected, "no plan had its passed count corrected"
    for versions in corrected:
        completed = [p for p in versions if p["status"] == "completed"]
        first, fixed = (
            dt.datetime.fromisoformat(completed[0]["updated_at"]),
            dt.datetime.fromisoformat(completed[-1]["updated_at"]),
        )
        assert (fixed.date() - first.date()).days == 7
    assert any(v[0]["status"] == "planned" and v[-1]["status"] == "completed" for v in plans.values())
    late = [
        c
        for c in records(timeline, "certificates.jsonl")
        if (dt.datetime.fromisoformat(c["updated_at"]).date() - dt.date.fromisoformat(c["issued_on"])).days
        == 30
    ]
    assert late, "no certificate was uploaded a month after its issue"
    applications = rows(timeline, "renewal_applications")
    typos = [r for r in applications if "年" in r["received_on"]]
    assert typos, "no spreadsheet row was typed badly"
    for typo in typos:  # the same row, fixed a few days later
        fixed = [
            r
            for r in applications
            if r["application_id"] == typo["application_id"] and "年" not in r["received_on"]
        ]
        assert fixed
        assert (
            2
            <= (dt.date.fromisoformat(fixed[0]["_known_on"]) - dt.date.fromisoformat(typo["_known_on"])).days
            <= 6
        )
    statuses = {}
    for institution in records(timeline, "institutions.jsonl"):
        statuses.setdefault(institution["institution_id"], []).append(institution["status"])
    assert any(s[0] == "active" and s[-1] != "active" for s in statuses.values()), "no termination on the way"


def test_the_same_arguments_give_the_same_timeline(timeline, tmp_path):
    generate_timeline(tmp_path, START, END, institutions=100, seed=7)
    assert file_digests(tmp_path) == file_digests(timeline)


def test_a_day_outside_the_timeline_is_refused(timeline, tmp_path):
    with pytest.raises(NotATimeline, match="outside the timeline"):
        view(timeline, END + dt.timedelta(days=1), tmp_path)
    with pytest.raises(NotATimeline, match="not a timeline"):
        view(tmp_path, START, tmp_path / "out")


def test_the_feed_serves_a_timeline_as_of_a_day(timeline, tmp_path):
    day = dt.date(2026, 9, 10)
    view(timeline, day, tmp_path / "view")
    port = free_port()
    command = serve_command(timeline, port, "--as-of", day.isoformat())
    feed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                assert feed.poll() is None, "the feed exited"
                assert time.monotonic() < deadline, "the feed did not start"
                time.sleep(0.2)
        for resource, name in (("plans", "plans.jsonl"), ("institutions", "institutions.jsonl")):
            page = requests.get(f"{url}/api/v1/{resource}", params={"limit": 1000}, timeout=10).json()
            served = sorted(json.dumps(i, sort_keys=True) for i in page["items"])
            expected = sorted(json.dumps(r, sort_keys=True) for r in records(tmp_path / "view", name))
            assert page["next_cursor"] is None, resource
            assert served == expected, resource
    finally:
        feed.terminate()
        feed.wait(timeout=30)


def test_serving_a_timeline_needs_a_day(timeline):
    done = subprocess.run(mock_feed_command("serve", "--data", str(timeline)), capture_output=True, text=True)
    assert done.returncode == 2
    assert "--as-of" in done.stderr
