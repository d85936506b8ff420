"""The aggregates a Prometheus scrape reads (``crawlops.metrics``): each one indexed query
whose cost is bounded by what is open, recent or per crawl object, never by the history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crawlops.db import Connection

OPEN = ("Pending", "In Progress")


def _rows(conn: Connection, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def open_tasks(conn: Connection) -> list[tuple[Any, ...]]:
    """(crawl object, status, tasks) of open tasks (``idx_task_status``)."""
    return _rows(
        conn,
        "SELECT task_type, task_status, COUNT(*) FROM amazon_task_information WHERE task_status IN (%s, %s) "
        "GROUP BY task_type, task_status",
        OPEN,
    )


def settle_backlog(conn: Connection) -> list[tuple[Any, ...]]:
    """(crawl object, tasks) finished and not settled yet (``idx_task_settled``)."""
    return _rows(
        conn,
        "SELECT task_type, COUNT(*) FROM amazon_task_information WHERE settled_at IS NULL "
        "AND task_status IN ('Completed', 'Failed') GROUP BY task_type",
    )


def newest_rows(conn: Connection, table: str) -> list[tuple[Any, ...]]:
    """(marketplace, newest create_time) of a results table: a loose scan of ``idx_result_market_time``."""
    return _rows(conn, f"SELECT marketplace, MAX(create_time) FROM {table} GROUP BY marketplace")  # noqa: S608


def failed_deliveries(conn: Connection, since: dt.datetime) -> int:
    """Alerts created since ``since`` whose delivery failed (``idx_alert_created``)."""
    rows = _rows(
        conn, "SELECT COUNT(*) FROM amazon_alert WHERE created_at >= %s AND delivery_status = 'failed'", (since,)
    )
    return int(rows[0][0] or 0)


def failing_sends(conn: Connection, since: dt.datetime) -> list[tuple[Any, ...]]:
    """(channel, sends queued since ``since`` that failed or were abandoned) per channel
    (``idx_send_created``)."""
    return _rows(
        conn,
        "SELECT channel, COUNT(*) FROM amazon_alert_send WHERE created_at >= %s "
        "AND status IN ('failed', 'abandoned') GROUP BY channel",
        (since,),
    )


def live_alerts(conn: Connection) -> list[tuple[Any, ...]]:
    """(level, status, count) of the alerts still open, acknowledged or expected (``idx_alert_status``)."""
    return _rows(
        conn,
        "SELECT level, status, COUNT(*) FROM amazon_alert WHERE status IN ('open', 'acknowledged', 'expected') "
        "AND resolved_at IS NULL GROUP BY level, status",
    )


def latest_checks(conn: Connection, since: dt.datetime) -> list[tuple[Any, ...]]:
    """(check, status of its newest window, when that window was checked) of every check with a
    window ending since ``since`` (``idx_check_time``)."""
    return _rows(
        conn,
        "SELECT c.check_name, c.status, c.checked_at FROM amazon_check_run c JOIN ("
        "SELECT check_name, MAX(window_end) AS newest FROM amazon_check_run WHERE window_end >= %s "
        "GROUP BY check_name) n ON n.check_name = c.check_name AND c.window_end = n.newest",
        (since,),
    )
