"""Two `make run` at once: on the same warehouse or exports folder the second refuses at once, naming the first,
and touches nothing of it; on different ones (each warehouse holds its own Airflow metadata) both go ahead."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from pipeline.commands import local_run_command
from pipeline.local_run import RunLocked, exclusive_run
from pipeline.settings import PROJECT_ROOT


def _holder(*locks) -> subprocess.Popen:
    """Another process holding the locks as a running `make run` does, until it is stopped."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from pipeline.local_run import exclusive_run
        with exclusive_run(*[Path(p) for p in {[str(p) for p in locks]!r}]):
            print("held", flush=True)
            time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_lock_is_refused_with_the_holders_pid_and_dropped_when_it_dies(tmp_path):
    lock = tmp_path / "warehouse" / ".run.lock"
    holder = _holder(lock)
    try:
        with (
            pytest.raises(RunLocked, match=rf"pid {holder.pid}, .*started .*lock {lock}"),
            exclusive_run(lock),
        ):
            pass
    finally:
        holder.kill()  # SIGKILL: no cleanup runs, the kernel drops the lock
        holder.wait()
    with exclusive_run(lock):
        assert f"pid {os.getpid()}," in lock.read_text()


def test_a_second_make_run_on_the_same_warehouse_refuses_at_once_and_leaves_the_first_alone(tmp_path):
    warehouse = tmp_path / "warehouse"
    holder = _holder(warehouse / ".run.lock")
    try:
        second = subprocess.run(
            local_run_command("--warehouse", str(warehouse), "--as-of", "2026-11-25"),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert holder.poll() is None  # the first is still running
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 1
    assert f"another run is in progress (pid {holder.pid}," in second.stderr
    assert "this one did nothing" in second.stderr
    # refused before anything was made: no warehouse file, no Airflow log of this date
    assert sorted(p.name for p in warehouse.iterdir()) == [".run.lock"]


def local_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        local_run_command(*args),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runs_on_different_warehouses_go_ahead_side_by_side(tmp_path):
    """A run holding warehouse A and its exports does not hold up a run on warehouse B with other exports:
    B gets past the locks (and stops at its own bad date, before any work); on A's exports it is refused."""
    a, b = tmp_path / "a", tmp_path / "b"
    holder = _holder(a / "warehouse" / ".run.lock", a / "exports" / ".run.lock")
    try:
        beside = local_run(
            "--warehouse", str(b / "warehouse"), "--exports", str(b / "exports"), "--as-of", "2020-01-01"
        )
        same_exports = local_run(
            "--warehouse", str(b / "warehouse"), "--exports", str(a / "exports"), "--as-of", "2020-01-01"
        )
        assert holder.poll() is None
    finally:
        holder.kill()
        holder.wait()
    assert beside.returncode == 2, beside.stderr
    assert "2020-01-01 is before" in beside.stderr
    assert same_exports.returncode == 1, same_exports.stderr
    assert f"another run is in progress (pid {holder.pid}," in same_exports.stderr


def test_each_warehouse_keeps_its_own_airflow_metadata(tmp_path):
    from pipeline.local_run import airflow_env, airflow_home

    homes = [airflow_home(tmp_path / name) for name in ("a", "b")]
    assert homes[0] != homes[1]
    envs = [airflow_env(home, {}) for home in homes]
    assert [e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] for e in envs] == [
        f"sqlite:///{home / 'airflow.db'}" for home in homes
    ]
    assert all(
        e["AIRFLOW__LOGGING__BASE_LOG_FOLDER"].startswith(str(h)) for e, h in zip(envs, homes, strict=True)
    )
