"""A run killed at any point (SIGKILL to its whole process group, as a power cut) and then run again leaves the marts,
the day's exports and the reminder ledger exactly as a run that was never killed; no reminder is marked sent
without its file at any moment.

The kills come at the crash points of ingest/crash_points.py, one after another in one warehouse: each rerun starts
from whatever the killed run before it left, and is itself killed at a later point, until the last rerun is let
finish. The time-based kill at a random moment is the soak's (bench/soak.py, tests/test_soak.py)."""

from __future__ import annotations

import csv
import datetime as dt
import os
import signal
import subprocess

import duckdb
import pytest
from helpers import file_digests

from ingest.crash_points import CRASH_AT
from pipeline.commands import generate_command, local_run_command
from pipeline.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

DAY = dt.date(2026, 9, 1)
# in the order a run reaches them: after a resource's landing commits; between the new published.duckdb and its
# Parquet files; with exports/<D>/ in place and the ledger not yet told; with the ledger told and no e-mail sent
POINTS = ["land:committed", "publish:marts_replaced", "export:before_ledger", "email:before_send"]


def run(data, folder, crash_at: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_AT, "FROM", "TO", "AS_OF", "DATA")}
    env["PSEUDONYM_KEY"] = "crash-test-key"
    if crash_at:
        env[CRASH_AT] = crash_at
    command = local_run_command("--as-of", DAY.isoformat(), "--data", str(data))
    command += ["--warehouse", str(folder / "warehouse"), "--exports", str(folder / "exports")]
    with open(folder / f"run-{crash_at or 'clean'}.log".replace(":", "_"), "w") as log:
        proc = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            return proc.wait(timeout=900)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def marts(folder) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(folder / "warehouse" / "published.duckdb"), read_only=True)
    try:
        tables = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' ORDER BY 1"
        ).fetchall()
        return {t: sorted(con.execute(f"SELECT * FROM marts.{t}").fetchall(), key=repr) for (t,) in tables}
    finally:
        con.close()


def ledger(folder) -> list[tuple]:
    path = folder / "warehouse" / "reminder_ledger.duckdb"
    if not path.exists():
        return []
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(con.execute("SELECT * FROM reminder_ledger").fetchall())
    finally:
        con.close()


def unsent_in_ledger(folder) -> list[tuple]:
    """Ledger rows with no line in the CSV of their day's export: marked sent without the file that sends them."""
    exported = set()
    for path in (folder / "exports").glob("*/*_续期提醒_*.csv"):
        with open(path, encoding="utf-8-sig", newline="") as fh:
            exported |= {(r["机构编号"], r["备案到期时间"], path.parent.name) for r in csv.DictReader(fh)}
    return [r for r in ledger(folder) if (r[0], r[1].isoformat(), r[4].isoformat()) not in exported]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    data = tmp_path_factory.mktemp("crash-data")
    subprocess.run(generate_command(data, DAY, 30), check=True, capture_output=True)
    return data


@pytest.fixture(scope="module")
def clean(dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp("never-killed")
    assert run(dataset, folder) == 0, (folder / "run-clean.log").read_text()[-3000:]
    return folder


def test_killed_at_every_point_then_rerun_equals_a_run_never_killed(dataset, clean, tmp_path):
    for point in POINTS:
        code = run(dataset, tmp_path, crash_at=point)
        log = (tmp_path / f"run-{point}.log".replace(":", "_")).read_text()
        assert code == -signal.SIGKILL, f"the run was not killed at {point} (exit {code}):\n{log[-3000:]}"
        assert not unsent_in_ledger(tmp_path), (
            f"after a kill at {point}, reminders marked sent without their file"
        )
    if (tmp_path / "warehouse" / "reminder_ledger.duckdb").exists():
        assert ledger(tmp_path) == ledger(clean)  # the kill before the e-mail came after the ledger was told
    assert run(dataset, tmp_path) == 0, (tmp_path / "run-clean.log").read_text()[-3000:]
    assert marts(tmp_path) == marts(clean)
    day = DAY.isoformat()
    assert file_digests(tmp_path / "exports" / day) == file_digests(clean / "exports" / day)
    assert ledger(clean), "the day sent nothing: the ledger was not tested"
    assert ledger(tmp_path) == ledger(clean)
    assert not unsent_in_ledger(tmp_path)
