"""Wall-clock helpers for tests whose rows are stamped with the time they are written."""

from __future__ import annotations

import datetime as dt
import time


def inside_the_hour(margin_seconds: int = 45) -> dt.datetime:
    """Now (UTC), after waiting out the hour's last ``margin_seconds``: a test that stamps rows
    with the wall clock and reads them back by the hour they fall in must not straddle its end.
    Take it when the test starts (never at import: a suite that starts at 10:58 reaches a test
    after 11:00)."""
    now = dt.datetime.now(dt.UTC)
    left = 3600 - (now.minute * 60 + now.second + now.microsecond / 1e6)
    if left < margin_seconds:
        time.sleep(left + 1)
        now = dt.datetime.now(dt.UTC)
    return now
