"""The alert outbox and check outcomes: ``amazon_alert``, ``amazon_alert_delivery`` and
``amazon_check_run``. Only this module holds their SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from crawlops.db import Connection, Expiry

LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO")  # most severe first
RANK = "FIELD({}, 'INFO', 'WARNING', 'ERROR', 'CRITICAL')"  # a level's rank in SQL
ALERT_TIME_COLUMNS = ("window_start", "created_at")


# --- findings -------------------------------------------------------------------------------


def mark_delivered(conn: Connection, ids: Sequence[int]) -> None:
    if not ids:
        return
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_alert SET delivery_status = 'sent', delivered_at = UTC_TIMESTAMP() "  # noqa: S608
            "WHERE id IN (" + ", ".join(["%s"] * len(ids)) + ")",
            list(ids),
        )
    conn.commit()


def findings_by_level(conn: Connection, dag_run_id: str) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT level, COUNT(*) FROM amazon_alert WHERE dag_run_id = %s GROUP BY level", (dag_run_id,))
        return {str(level): int(count) for level, count in cur.fetchall()}


def counts_by_level(conn: Connection, column: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Current alerts per level (every level, most severe first) whose ``column`` lies in
    [start, end); findings a later run of their window no longer made (resolved) are left out."""
    if column not in ALERT_TIME_COLUMNS:
        raise ValueError(f"alerts are counted by {ALERT_TIME_COLUMNS}, not {column!r}")
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT level, COUNT(*) FROM amazon_alert WHERE {column} >= %s AND {column} < %s "  # noqa: S608
            "AND resolved_at IS NULL GROUP BY level",
            (start, end),
        )
        by_level = dict.fromkeys(LEVELS, 0)
        for level, count in cur.fetchall():
            by_level[str(level)] = int(count)
    return by_level


def top_current(conn: Connection, start: dt.datetime, end: dt.datetime, limit: int) -> list[tuple[Any, ...]]:
    """Current alerts of windows starting in [start, end), most severe then newest first:
    (level, source, check_name, subject, title, window_start)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT level, source, check_name, subject, title, window_start FROM amazon_alert "
            "WHERE window_start >= %s AND window_start < %s AND resolved_at IS NULL "
            "ORDER BY FIELD(level, %s, %s, %s, %s) DESC, window_start DESC, id DESC LIMIT %s",
            (start, end, *reversed(LEVELS), limit),
        )
        return list(cur.fetchall())


def raised_between(conn: Connection, start: dt.datetime, end: dt.datetime, limit: int) -> list[tuple[Any, ...]]:
    """Alerts raised or seen again in [start, end), last seen first: (id, level, source,
    check_name, subject, title, window_start, window_end, created_at, dag_run_id,
    delivery_status, status (``withdrawn`` when a re-run no longer made it), occurrences,
    last_seen_at, owner, acted_by, acted_at, action_note, crawl_object, marketplace, escalated_at)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, level, source, check_name, subject, title, window_start, last_window_end, created_at, "
            "dag_run_id, delivery_status, IF(resolved_at IS NULL, status, 'withdrawn'), occurrences, last_seen_at, "
            "owner, acted_by, acted_at, action_note, "
            "crawl_object, marketplace, escalated_at FROM amazon_alert "
            "WHERE (created_at >= %s AND created_at < %s) OR (last_seen_at >= %s AND last_seen_at < %s) "
            "ORDER BY COALESCE(last_seen_at, created_at) DESC, id DESC LIMIT %s",
            (start, end, start, end, limit),
        )
        return list(cur.fetchall())


def hourly_titles(
    conn: Connection, checks: Sequence[str], start: dt.datetime, end: dt.datetime, source: str
) -> list[tuple[Any, ...]]:
    """What the findings of ``checks`` said in each one-hour window starting in [start, end),
    by ``source``: (check_name, window_start, dag_run_id, title), oldest first. From the
    occurrences: an alert seen in several hours tells each hour what that hour's run said."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.check_name, o.window_start, o.dag_run_id, o.title FROM amazon_alert_occurrence o "  # noqa: S608
            "JOIN amazon_alert a ON a.id = o.alert_id WHERE a.check_name IN ("
            + ", ".join(["%s"] * len(checks))
            + ") AND o.window_start >= %s AND o.window_start < %s "
            "AND o.window_end = o.window_start + INTERVAL 1 HOUR AND a.source = %s AND a.resolved_at IS NULL "
            "ORDER BY o.window_start, a.id",
            (*checks, start, end, source),
        )
        return list(cur.fetchall())


# --- delivery -------------------------------------------------------------------------------


def pending(conn: Connection, limit: int) -> list[tuple[Any, ...]]:
    """Alerts waiting to be routed (new, risen, repeating again, or a reminder due): (id, level,
    source, check_name, subject, title, action_taken, fingerprint, window_start, window_end,
    delivery_attempts, dag_run_id, crawl_object, marketplace, status, occurrences, created_at,
    last_seen_at, delivered_at, withdrawn), oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, level, source, check_name, subject, title, action_taken, fingerprint, window_start, "
            "window_end, delivery_attempts, dag_run_id, crawl_object, marketplace, status, occurrences, "
            "created_at, last_seen_at, delivered_at, resolved_at IS NOT NULL FROM amazon_alert "
            "WHERE delivery_status = 'stored' "
            "ORDER BY id LIMIT %s",
            (limit,),
        )
        return list(cur.fetchall())


_SETTABLE = frozenset({"next_attempt_at", "delivered_at", "delivery_error"})


def set_delivery_status(conn: Connection, ids: Sequence[int], status: str, **columns: Any) -> None:
    """Set the alerts' delivery status (and ``next_attempt_at`` / ``delivered_at`` / ``delivery_error``)."""
    if not ids:
        return
    unknown = set(columns) - _SETTABLE
    if unknown:
        raise ValueError(f"not a delivery column: {sorted(unknown)}")
    sets = ", ".join(["delivery_status = %s", *(f"{name} = %s" for name in columns)])
    with conn.cursor() as cur:
        cur.execute(
            f"UPDATE amazon_alert SET {sets} WHERE id IN ({', '.join(['%s'] * len(ids))})",  # noqa: S608
            [status, *columns.values(), *ids],
        )


def last_sent_at(conn: Connection, fingerprint: str, *, other_than: int) -> dt.datetime | None:
    """When another alert of the fingerprint (not ``other_than``) last went out."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT MAX(delivered_at) FROM amazon_alert WHERE fingerprint = %s AND delivery_status = 'sent' "
            "AND id <> %s",
            (fingerprint, other_than),
        )
        return cur.fetchone()[0]


def held_back(conn: Connection, fingerprint: str) -> int:
    """Twins of the alert suppressed and not yet accounted for by a message."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM amazon_alert WHERE fingerprint = %s "
            "AND delivery_status = 'suppressed' AND delivered_at IS NULL",
            (fingerprint,),
        )
        return int(cur.fetchone()[0])


def log_message(conn: Connection, *, channel: str, alerts: int, error: str | None, dag_run_id: str | None) -> None:
    """One message sent (or tried) on the channel; the caller commits."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_alert_delivery (channel, sent_at, alert_count, success, error, dag_run_id) "
            "VALUES (%s, UTC_TIMESTAMP(3), %s, %s, %s, %s)",
            (channel, alerts, error is None, error, dag_run_id),
        )


def messages_since(conn: Connection, channel: str, since: dt.datetime) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM amazon_alert_delivery WHERE channel = %s AND sent_at > %s", (channel, since))
        return int(cur.fetchone()[0])


def account_held(conn: Connection, alert_id: int, count: int) -> None:
    """The alert went out: its suppressed twins are accounted for by it (``suppressed_count``)."""
    if not count:
        return
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_alert a JOIN amazon_alert s ON s.fingerprint = a.fingerprint "
            "SET s.delivered_at = UTC_TIMESTAMP(3), a.suppressed_count = %s "
            "WHERE a.id = %s AND s.delivery_status = 'suppressed' AND s.delivered_at IS NULL",
            (count, alert_id),
        )


# --- check outcomes ---------------------------------------------------------------------------


def upsert_check(
    conn: Connection,
    check: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    status: str,
    findings: int,
    details_json: str,
    dag_run_id: str | None,
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_check_run (check_name, window_start, window_end, status, findings, details, "
            "dag_run_id) VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE status = VALUES(status), "
            "findings = VALUES(findings), details = VALUES(details), dag_run_id = VALUES(dag_run_id)",
            (check, start, end, status, findings, details_json, dag_run_id),
        )
    conn.commit()


def set_check_status(conn: Connection, check: str, start: dt.datetime, status: str, *, only_if: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_check_run SET status = %s WHERE check_name = %s AND status = %s AND window_start = %s",
            (status, check, only_if, start),
        )
    conn.commit()


def hourly_checks(conn: Connection, start: dt.datetime, end: dt.datetime, *, except_like: str) -> list[tuple[Any, ...]]:
    """Outcomes of one-hour checks ending in (start, end], but those named like ``except_like``:
    (check_name, window_start, status, findings, dag_run_id)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT check_name, window_start, status, findings, dag_run_id FROM amazon_check_run "
            "WHERE window_end > %s AND window_end <= %s AND window_end = window_start + INTERVAL 1 HOUR "
            "AND check_name NOT LIKE %s ORDER BY check_name, window_start",
            (start, end, except_like),
        )
        return list(cur.fetchall())


# --- retention ---------------------------------------------------------------------------------

#: How each table's rows expire, each by the head of an index (the delivery log's index is
#: (channel, sent_at): it is read one channel at a time).
EXPIRY = {
    "amazon_alert": Expiry("amazon_alert", "created_at"),
    "amazon_alert_send": Expiry("amazon_alert_send", "created_at"),
    "amazon_alert_mute": Expiry("amazon_alert_mute", "muted_until"),
    "amazon_alert_occurrence": Expiry("amazon_alert_occurrence", "window_start"),
    "amazon_alert_delivery": Expiry("amazon_alert_delivery", "sent_at", per="channel"),
    "amazon_check_run": Expiry("amazon_check_run", "window_end"),
}
