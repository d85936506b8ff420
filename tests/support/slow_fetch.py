"""Fetch functions for worker tests (``python -m crawlops.worker support.slow_fetch:fetch``)."""

from __future__ import annotations

import os
import time

from crawlops.worker import Element, Result


def fetch(element: Element) -> list[Result]:
    """One result per element, after ``SLOW_FETCH_SECONDS`` (default 0.2 s)."""
    time.sleep(float(os.environ.get("SLOW_FETCH_SECONDS", "0.2")))
    return [Result(asin="B000000001", title=f"{element.keyword} p{element.page}", price=1.0, position=1)]
