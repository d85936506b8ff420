"""The daily reports: ``amazon_daily_report``. Only this module holds its SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crawlops.db import Connection, Expiry


def upsert(conn: Connection, day: dt.date, *, markdown: str, html: str, summary: str, dag_run_id: str | None) -> None:
    """The day's row: re-running a day rewrites it."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_daily_report (report_date, markdown, html, summary, dag_run_id, created_at) "
            "VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP()) "
            "ON DUPLICATE KEY UPDATE markdown = VALUES(markdown), html = VALUES(html), summary = VALUES(summary), "
            "dag_run_id = VALUES(dag_run_id), created_at = VALUES(created_at)",
            (day, markdown, html, summary, dag_run_id[:250] if dag_run_id else None),
        )
    conn.commit()


def record_delivery(conn: Connection, day: dt.date, error: str | None) -> None:
    """``sent_at`` on success, the error otherwise."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_daily_report SET sent_at = IF(%s IS NULL, UTC_TIMESTAMP(), NULL), send_error = %s "
            "WHERE report_date = %s",
            (error, error, day),
        )
    conn.commit()


def unsent(conn: Connection, *, days: int) -> list[tuple[dt.date, str]]:
    """Reports built in the last ``days`` days that did not go out: (day, markdown), oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT report_date, markdown FROM amazon_daily_report WHERE sent_at IS NULL "
            "AND created_at >= UTC_TIMESTAMP() - INTERVAL %s DAY ORDER BY report_date",
            (days,),
        )
        return [(day, str(text)) for day, text in cur.fetchall()]


def latest(conn: Connection) -> tuple[Any, ...] | None:
    """The newest report: (report_date, created_at, dag_run_id, summary), or None."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT report_date, created_at, dag_run_id, summary FROM amazon_daily_report "
            "ORDER BY report_date DESC LIMIT 1"
        )
        return cur.fetchone()


def latest_html(conn: Connection) -> str | None:
    with conn.cursor() as cur:
        cur.execute("SELECT html FROM amazon_daily_report ORDER BY report_date DESC LIMIT 1")
        row = cur.fetchone()
    return None if row is None else str(row[0])


#: Reports expire by their day (the primary key).
EXPIRY = Expiry("amazon_daily_report", "report_date")
