"""Two `make run` at once: the second refuses at once, naming the first, and touches nothing of it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

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
            [
                sys.executable,
                "-m",
                "pipeline.local_run",
                "--warehouse",
                str(warehouse),
                "--as-of",
                "2026-11-25",
            ],
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
