"""The pipeline's clock: when a thing was stored (a load's landing, a lookup's answer, a step's metrics) and how
old it is now (retention, the lookups to ask again, the gate's lookup ages, the check scope).

It is the wall clock, moved by RENEWAL_CLOCK_OFFSET_S seconds when that is set. Production never sets it. The
soak (bench/soak.py) runs a season in hours: it sets the offset so that each day's run stands on its own day, and
what ages by the clock then ages as it would over the season. Every process of a run reads the same offset, so
the times they store stay in order with one another."""

from __future__ import annotations

import datetime as dt
import os

OFFSET_ENV = "RENEWAL_CLOCK_OFFSET_S"


def offset() -> dt.timedelta:
    """RENEWAL_CLOCK_OFFSET_S as a timedelta (zero when unset)."""
    raw = os.environ.get(OFFSET_ENV, "").strip()
    if not raw:
        return dt.timedelta(0)
    try:
        return dt.timedelta(seconds=int(raw))
    except ValueError:
        raise ValueError(f"{OFFSET_ENV}={raw!r}: expected a whole number of seconds, e.g. -86400") from None


def now() -> dt.datetime:
    """The pipeline's time now, in UTC."""
    return dt.datetime.now(dt.UTC) + offset()
