"""Named places in a run where the crash-safety test kills it, as a power cut or `kill -9` would
(tests/test_crash_safety.py): each is a moment between two writes that must not be seen apart."""

from __future__ import annotations

import os
import signal

CRASH_AT = "PIPELINE_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process's whole group (the run, Airflow's task, dbt, the feed) when PIPELINE_CRASH_AT names this
    point; nothing otherwise. No cleanup runs, exactly as when the machine dies."""
    if os.environ.get(CRASH_AT) == name:
        os.killpg(os.getpgrp(), signal.SIGKILL)
