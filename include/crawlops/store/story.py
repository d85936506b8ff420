"""The demo's story: ``crawlops_demo_story``, one row per hour the demo seeded. Only this module holds its SQL.

Not part of the package's schema (no migration creates it): ``make demo``'s seeding
(``crawlops_dev.story``) creates it in the demo database. A row with a ``fault`` names a
fault the demo injected into that hour, with what the package did about it; the Crawl Ops
page shows those as its "Demo story" panel. Where the table does not exist (every real
deployment) the readers answer nothing and the page shows no such panel.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crawlops.db import Connection

TABLE = "crawlops_demo_story"
#: MySQL/MariaDB: "Table doesn't exist".
_NO_SUCH_TABLE = 1146

DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    hour       DATETIME      NOT NULL PRIMARY KEY,
    fault      VARCHAR(32)   NULL,
    title      VARCHAR(255)  NULL,
    story      TEXT          NULL,
    seeded_at  DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
"""


def ensure_table(conn: Connection) -> None:
    with conn.cursor() as cur:
        cur.execute(DDL)
    conn.commit()


def _rows(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The query's rows; none when the table does not exist (every real deployment)."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    except Exception as exc:
        if getattr(exc, "args", None) and exc.args[0] == _NO_SUCH_TABLE:
            return []
        raise


def seeded_hours(conn: Connection, start: dt.datetime, end: dt.datetime) -> set[dt.datetime]:
    """Hours in [start, end) the demo seeded (naive UTC); none when the table does not exist."""
    return {row[0] for row in _rows(conn, f"SELECT hour FROM {TABLE} WHERE hour >= %s AND hour < %s", (start, end))}  # noqa: S608


def record_hour(
    conn: Connection, hour: dt.datetime, *, fault: str | None, title: str | None, story: str | None
) -> None:
    """The hour is seeded (with the fault injected into it, if any)."""
    with conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {TABLE} (hour, fault, title, story) VALUES (%s, %s, %s, %s) "  # noqa: S608 - a constant
            "ON DUPLICATE KEY UPDATE fault = VALUES(fault), title = VALUES(title), story = VALUES(story)",
            (hour, fault, title, story),
        )
    conn.commit()


def faults_between(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[tuple[Any, ...]]:
    """(hour, fault, title, story) of the injected faults in [start, end), oldest first; none
    when the table does not exist (a real deployment)."""
    return _rows(
        conn,
        f"SELECT hour, fault, title, story FROM {TABLE} WHERE fault IS NOT NULL "  # noqa: S608 - a constant
        "AND hour >= %s AND hour < %s ORDER BY hour",
        (start, end),
    )
