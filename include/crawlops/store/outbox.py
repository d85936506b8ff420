"""The alert outbox per channel, ``amazon_alert_send``, and the summary it leaves on each
alert (``amazon_alert.delivery_status``). Only this module holds its SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from crawlops.db import Connection


def queue(conn: Connection, rows: Iterable[tuple[int, str, str, str]]) -> int:
    """Queue (alert_id, channel, kind, mentions_json) sends; the caller commits."""
    rows = list(rows)
    if rows:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO amazon_alert_send (alert_id, channel, kind, mentions, created_at) "
                "VALUES (%s, %s, %s, %s, UTC_TIMESTAMP(3))",
                rows,
            )
    return len(rows)


def due(conn: Connection, now: dt.datetime, limit: int) -> list[tuple[Any, ...]]:
    """Sends to try now (pending, or failed and past their backoff), oldest first: (send id,
    alert id, channel, kind, mentions, attempts, level, source, check_name, subject, title,
    action_taken, window_start, window_end, dag_run_id, occurrences, created_at, last_seen_at,
    owner, suppressed_count, status, withdrawn)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT s.id, s.alert_id, s.channel, s.kind, s.mentions, s.attempts, a.level, a.source, a.check_name, "
            "a.subject, a.title, a.action_taken, a.window_start, a.last_window_end, a.dag_run_id, a.occurrences, "
            "a.created_at, a.last_seen_at, a.owner, a.suppressed_count, a.status, a.resolved_at IS NOT NULL "
            "FROM amazon_alert_send s "
            "JOIN amazon_alert a ON a.id = s.alert_id WHERE s.status IN ('pending', 'failed') "
            "AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= %s) ORDER BY s.id LIMIT %s",
            (now, limit),
        )
        return list(cur.fetchall())


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(["%s"] * len(ids))


def mark(conn: Connection, ids: Sequence[int], status: str, *, next_attempt_at: dt.datetime | None = None) -> None:
    """Set the sends' status (``no_channel``, ``cancelled``; or ``pending`` again, deferred to
    ``next_attempt_at``)."""
    if ids:
        with conn.cursor() as cur:
            cur.execute(
                f"UPDATE amazon_alert_send SET status = %s, next_attempt_at = %s WHERE id IN ({_ids(ids)})",  # noqa: S608
                [status, next_attempt_at, *ids],
            )


def sent(conn: Connection, ids: Sequence[int]) -> None:
    if ids:
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE amazon_alert_send SET status = 'sent', attempts = attempts + 1, "  # noqa: S608
                f"delivered_at = UTC_TIMESTAMP(3), error = NULL WHERE id IN ({_ids(ids)})",
                list(ids),
            )


def failed(
    conn: Connection, ids: Sequence[int], error: str, *, now: dt.datetime, max_attempts: int, backoff_seconds: float
) -> None:
    """A failed attempt: retried with exponential backoff, abandoned after ``max_attempts``."""
    if ids:
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE amazon_alert_send SET attempts = attempts + 1, error = %s, "  # noqa: S608
                "status = IF(attempts >= %s, 'abandoned', 'failed'), "
                "next_attempt_at = %s + INTERVAL (%s * POW(2, attempts - 1)) SECOND "
                f"WHERE id IN ({_ids(ids)})",
                [error, max_attempts, now, backoff_seconds, *ids],
            )


def summarise(conn: Connection, alert_ids: Iterable[int]) -> None:
    """Each alert's delivery summary from each channel's newest message (not escalations):
    ``failed`` while a channel retries, else ``abandoned`` if one gave up, else ``no_channel``
    if none existed, else ``sent`` once every channel took it (``routed`` meanwhile)."""
    ids = sorted(set(alert_ids))
    if not ids:
        return
    # each channel's newest send: an old round given up on does not outlive a later success
    newest = (
        "(SELECT s.* FROM amazon_alert_send s JOIN (SELECT MAX(id) AS id FROM amazon_alert_send WHERE alert_id IN ("  # noqa: S608
        + _ids(ids)
        + ") AND kind <> 'escalation' AND status <> 'cancelled' GROUP BY alert_id, channel) n ON n.id = s.id)"
    )
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_alert a JOIN (SELECT alert_id, "  # noqa: S608 (the parts are constants and placeholders)
            "CASE WHEN SUM(status = 'failed') > 0 THEN 'failed' WHEN SUM(status = 'abandoned') > 0 THEN 'abandoned' "
            "WHEN SUM(status = 'pending') > 0 THEN 'routed' WHEN SUM(status = 'sent') > 0 THEN 'sent' "
            "ELSE 'no_channel' END AS summary, MAX(attempts) AS attempts, MAX(delivered_at) AS delivered, "
            "MIN(CASE WHEN status = 'failed' THEN next_attempt_at END) AS next_at, "
            "MAX(CASE WHEN status IN ('failed', 'abandoned') THEN error END) AS error "
            f"FROM {newest} latest GROUP BY alert_id) s ON s.alert_id = a.id "
            "SET a.delivery_status = s.summary, a.delivery_attempts = s.attempts, "
            "a.delivered_at = COALESCE(s.delivered, a.delivered_at), a.next_attempt_at = s.next_at, "
            "a.delivery_error = s.error",
            ids,
        )
