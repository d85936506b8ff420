"""What people do with alerts: acknowledge, mark expected, mute; reminders and escalation
read here. ``amazon_alert``'s lifecycle columns and ``amazon_alert_mute``; only this module
holds their SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crawlops.db import Connection

LIVE = ("open", "acknowledged", "expected")


def get(conn: Connection, alert_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        cur.execute(  # the added part is a constant
            "SELECT id, level, status, check_name, subject, resolved_at FROM amazon_alert WHERE id = %s"  # noqa: S608
            + (" FOR UPDATE" if lock else ""),
            (alert_id,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return dict(zip(("id", "level", "status", "check_name", "subject", "resolved_at"), row, strict=True))


def set_status(cur: Any, alert_id: int, status: str, *, actor: str, note: str) -> None:
    """Acknowledged or expected, by whom and why, on the caller's cursor."""
    cur.execute(
        "UPDATE amazon_alert SET status = %s, acted_by = %s, acted_at = UTC_TIMESTAMP(), action_note = %s "
        "WHERE id = %s",
        (status, actor[:128], note[:1000], alert_id),
    )


def add_mute(cur: Any, check: str, subject: str, minutes: int, *, actor: str, reason: str) -> int:
    cur.execute(
        "INSERT INTO amazon_alert_mute (check_name, subject, muted_from, muted_until, actor, reason) "
        "VALUES (%s, %s, UTC_TIMESTAMP(), UTC_TIMESTAMP() + INTERVAL %s MINUTE, %s, %s)",
        (check[:128], subject[:255], minutes, actor[:128], reason[:1000]),
    )
    return int(cur.lastrowid)


def end_mute(cur: Any, mute_id: int, *, actor: str) -> int:
    cur.execute(
        "UPDATE amazon_alert_mute SET ended_at = UTC_TIMESTAMP(), ended_by = %s "
        "WHERE id = %s AND ended_at IS NULL AND muted_until > UTC_TIMESTAMP()",
        (actor[:128], mute_id),
    )
    return int(cur.rowcount)


def active_mutes(conn: Connection, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Mutes in force at ``now`` (the database's clock by default), soonest to end first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, check_name, subject, muted_from, muted_until, actor, reason FROM amazon_alert_mute "
            "WHERE ended_at IS NULL AND muted_from <= COALESCE(%s, UTC_TIMESTAMP()) "
            "AND muted_until > COALESCE(%s, UTC_TIMESTAMP()) ORDER BY muted_until, id",
            (now, now),
        )
        rows = cur.fetchall()
    keys = ("id", "check", "subject", "muted_from", "muted_until", "actor", "reason")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def reminders_due(conn: Connection, sent_before: dt.datetime) -> int:
    """Queue for routing again the open (unacknowledged) alerts sent before ``sent_before``
    and seen again since they were sent: a reminder."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_alert SET delivery_status = 'stored' WHERE status = 'open' AND resolved_at IS NULL "
            "AND delivery_status = 'sent' AND delivered_at < %s AND last_seen_at > delivered_at",
            (sent_before,),
        )
        return int(cur.rowcount)


def to_escalate(conn: Connection, opened_before: dt.datetime, levels: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Open alerts at ``levels`` nobody acted on, opened before ``opened_before``, never
    escalated, and sent (or tried): not muted, held back, below the sent level or waiting to
    be routed: (id, level, channels, check_name, subject), oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, level, channels, check_name, subject FROM amazon_alert WHERE status = 'open' "  # noqa: S608
            "AND resolved_at IS NULL AND escalated_at IS NULL AND created_at < %s "
            "AND delivery_status NOT IN ('muted', 'logged', 'stored', 'suppressed') "
            f"AND level IN ({', '.join(['%s'] * len(levels))}) ORDER BY id LIMIT 200",
            (opened_before, *levels),
        )
        return list(cur.fetchall())


def mark_escalated(conn: Connection, alert_id: int) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE amazon_alert SET escalated_at = UTC_TIMESTAMP() WHERE id = %s", (alert_id,))


def set_routed(conn: Connection, alert_id: int, *, owner: str, channels: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_alert SET delivery_status = 'routed', owner = %s, channels = %s WHERE id = %s",
            (owner[:128] or None, channels[:1000], alert_id),
        )


def task_objects(conn: Connection, task_ids: list[str]) -> dict[str, str]:
    """The crawl object of each of these tasks that exists."""
    if not task_ids:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, task_type FROM amazon_task_information WHERE task_id IN ("  # noqa: S608
            + ", ".join(["%s"] * len(task_ids))
            + ")",
            task_ids,
        )
        return {str(t): str(o) for t, o in cur.fetchall()}
