"""What the crawlers saw, per minute (``amazon_crawl_outcome``): the kit's outcome counts per
crawl object, marketplace, outcome and failure reason, folded in from Redis by supervision.
Only this module holds the table's SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from crawlops.db import Connection, Expiry

EXPIRY = Expiry("amazon_crawl_outcome", "minute")


def upsert_minutes(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """(minute, crawl_object, marketplace, outcome, reason, elements) rows; a minute folded
    again takes its newer count (the kit's count of a minute only grows)."""
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_crawl_outcome (minute, crawl_object, marketplace, outcome, reason, elements) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE elements = GREATEST(elements, VALUES(elements))",
            [(m, o[:64], mp[:16], out[:16], why[:32], n) for m, o, mp, out, why, n in rows],
        )
    conn.commit()
    return len(rows)


def totals(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[tuple[str, str, str, str, int]]:
    """Elements per (crawl_object, marketplace, outcome, reason) over minutes in [start, end)
    (naive UTC), through the primary key's minute range."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT crawl_object, marketplace, outcome, reason, SUM(elements) FROM amazon_crawl_outcome "
            "WHERE minute >= %s AND minute < %s GROUP BY crawl_object, marketplace, outcome, reason",
            (start, end),
        )
        return [(o, m, out, why, int(n)) for o, m, out, why, n in cur.fetchall()]
