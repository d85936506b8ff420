"""Alerts as incidents: a finding stored as a new alert or one more occurrence of a live one
(``amazon_alert_occurrence``), withdrawn or closed when no longer found; what people do
with them (acknowledge, mark expected, mute); reminders and escalation read here.
``amazon_alert``'s lifecycle columns, ``amazon_alert_occurrence`` and ``amazon_alert_mute``;
only this module holds their SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from crawlops.db import Connection
from crawlops.store.alerts import LEVELS, RANK

LIVE = ("open", "acknowledged", "expected")


_LIVE = f"status IN {LIVE!r} AND resolved_at IS NULL"  # a live incident, in SQL


def upsert_findings(conn: Connection, rows: Sequence[tuple[Any, ...]], *, quiet_close_seconds: int) -> list[int]:
    """Store findings as incidents: (level, source, check, subject, title, details, action,
    fingerprint, window_start, window_end, dag_run_id, crawl_object, marketplace).

    A finding whose fingerprint has a live incident (open, acknowledged or expected) that
    began at or before its window, and was last seen no more than ``quiet_close_seconds``
    before it, is that incident: a later window counts one more occurrence and makes its
    words current, its level the highest seen while it was open; a re-run of a window it
    holds refreshes that window's words only (and the alert's, for its last window).
    Otherwise it is a new incident (one found quiet too long is closed first); re-running
    that window updates the same row. Each (alert, window) is one row of
    ``amazon_alert_occurrence`` with what that run said, and ``occurrences`` counts them. A
    level that rises queues the alert for delivery afresh, as does a new occurrence of one
    muted, suppressed, abandoned or without a channel (it is judged again). Returns the
    alert ids; the caller commits."""
    ids = []
    with conn.cursor() as cur:
        for row in rows:
            fingerprint, start = row[7], row[8]
            cur.execute(
                f"SELECT id, window_start, last_window_start, last_window_end, level FROM amazon_alert "  # noqa: S608
                f"WHERE fingerprint = %s AND {_LIVE} ORDER BY last_window_start DESC, id DESC LIMIT 1 FOR UPDATE",
                (fingerprint,),
            )
            live = cur.fetchone()
            if live is not None and live[1] <= start:
                alert_id, _, last_start, last_end, level = live
                if start > last_end + dt.timedelta(seconds=quiet_close_seconds):
                    cur.execute(
                        "UPDATE amazon_alert SET status = 'closed', closed_at = UTC_TIMESTAMP() WHERE id = %s",
                        (alert_id,),
                    )
                elif start < last_start:
                    ids.append(_occurred(cur, int(alert_id), row))  # a re-run of a window it holds
                    continue
                else:
                    _repeat(cur, int(alert_id), row, later=start > last_start, rises=_rank(row[0]) > _rank(level))
                    ids.append(_occurred(cur, int(alert_id), row))
                    continue
            ids.append(_occurred(cur, _insert(cur, row), row))
    return ids


def _occurred(cur: Any, alert_id: int, row: tuple[Any, ...]) -> int:
    """The (alert, window) occurrence with what this run said; the alert's count follows."""
    level, title, start, end, dag_run_id = row[0], row[4], row[8], row[9], row[10]
    cur.execute(
        "INSERT INTO amazon_alert_occurrence (alert_id, window_start, window_end, level, title, dag_run_id, seen_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, UTC_TIMESTAMP()) ON DUPLICATE KEY UPDATE window_end = VALUES(window_end), "
        "level = VALUES(level), title = VALUES(title), dag_run_id = VALUES(dag_run_id)",
        (alert_id, start, end, level, title, dag_run_id),
    )
    cur.execute(
        "UPDATE amazon_alert SET occurrences = (SELECT COUNT(*) FROM amazon_alert_occurrence WHERE alert_id = %s) "
        "WHERE id = %s",
        (alert_id, alert_id),
    )
    return alert_id


def _rank(level: str) -> int:
    return LEVELS[::-1].index(level)


def _repeat(cur: Any, alert_id: int, row: tuple[Any, ...], *, later: bool, rises: bool) -> None:
    level, _, _, _, title, details, action, _, start, end, dag_run_id, _, _ = row
    again = "delivery_status IN ('muted', 'suppressed', 'no_channel', 'abandoned')" if later else "FALSE"
    cur.execute(
        # delivery columns first: they read the stored values
        f"UPDATE amazon_alert SET "  # noqa: S608
        f"delivery_status = IF(%s OR {again}, 'stored', delivery_status), "
        "delivery_attempts = IF(%s, 0, delivery_attempts), next_attempt_at = IF(%s, NULL, next_attempt_at), "
        "last_window_start = %s, last_window_end = %s, last_seen_at = IF(%s, UTC_TIMESTAMP(), last_seen_at), "
        "level = IF(%s, %s, level), title = %s, details = %s, action_taken = %s, dag_run_id = %s WHERE id = %s",
        (rises, rises, rises, start, end, later, rises, level, title, details, action, dag_run_id, alert_id),
    )  # fmt: skip


def _insert(cur: Any, row: tuple[Any, ...]) -> int:
    escalates = f"{RANK.format('VALUES(level)')} > {RANK.format('level')}"
    cur.execute(  # the formatted parts are constants of this module
        "INSERT INTO amazon_alert (level, source, check_name, subject, title, details, action_taken, "  # noqa: S608
        "fingerprint, window_start, window_end, dag_run_id, crawl_object, marketplace, last_window_start, "
        "last_window_end, last_seen_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "UTC_TIMESTAMP()) "
        # delivery columns first: they compare the stored level with the new one
        f"ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), "
        f"delivery_status = IF({escalates}, 'stored', delivery_status), "
        f"delivery_attempts = IF({escalates}, 0, delivery_attempts), "
        f"next_attempt_at = IF({escalates}, NULL, next_attempt_at), "
        "level = VALUES(level), title = VALUES(title), resolved_at = NULL, "
        "details = VALUES(details), action_taken = VALUES(action_taken), dag_run_id = VALUES(dag_run_id)",
        (*row, row[8], row[9]),
    )
    return int(cur.lastrowid)


def resolve_absent(
    conn: Connection,
    start: dt.datetime,
    end: dt.datetime,
    checks: Sequence[str],
    current: Sequence[str],
    *,
    scope: str | None = None,
) -> tuple[int, int]:
    """Findings of ``checks`` (with ``scope``: only those whose subject is ``scope`` or
    ``scope.<column>``) this run of the window no longer makes: their occurrence in this
    window is withdrawn, and an alert left with none is withdrawn (``resolved_at``); a live
    incident last seen in this window or before is closed (the check no longer finds it).
    Incidents seen after this window (this is a backfill) are left alone. Returns (alerts
    withdrawn, alerts closed)."""
    current = list(current) or [""]
    scoped = " AND (a.subject = %s OR a.subject LIKE %s)" if scope else ""
    which = (
        " AND a.check_name IN (" + ", ".join(["%s"] * len(checks)) + ")"
        " AND a.fingerprint NOT IN (" + ", ".join(["%s"] * len(current)) + ")" + scoped
    )
    params = [*checks, *current, *((scope, scope.replace("_", "\\_") + ".%") if scope else ())]
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.id FROM amazon_alert a JOIN amazon_alert_occurrence o ON o.alert_id = a.id "  # noqa: S608
            "WHERE o.window_start = %s AND o.window_end = %s AND a.resolved_at IS NULL" + which,
            [start, end, *params],
        )
        gone = [int(alert_id) for (alert_id,) in cur.fetchall()]
        withdrawn = 0
        for alert_id in gone:
            cur.execute(
                "DELETE FROM amazon_alert_occurrence WHERE alert_id = %s AND window_start = %s", (alert_id, start)
            )
            cur.execute(
                "UPDATE amazon_alert SET occurrences = (SELECT COUNT(*) FROM amazon_alert_occurrence WHERE "
                "alert_id = %s), resolved_at = IF(occurrences = 0, UTC_TIMESTAMP(), NULL) WHERE id = %s",
                (alert_id, alert_id),
            )
            cur.execute("SELECT resolved_at IS NOT NULL FROM amazon_alert WHERE id = %s", (alert_id,))
            withdrawn += int(cur.fetchone()[0])
        cur.execute(
            "UPDATE amazon_alert a SET a.status = 'closed', a.closed_at = UTC_TIMESTAMP() "  # noqa: S608
            f"WHERE a.{_LIVE} AND a.last_window_start <= %s" + which,
            [start, *params],
        )
        return withdrawn, int(cur.rowcount)


def close_quiet(conn: Connection, quiet_seconds: int) -> int:
    """Close live incidents last seen more than ``quiet_seconds`` before the newest window any
    check has judged (window time: while the DAGs are paused nothing closes, and a backfill of
    old windows moves nothing)."""
    with conn.cursor() as cur:
        cur.execute(
            f"UPDATE amazon_alert SET status = 'closed', closed_at = UTC_TIMESTAMP() WHERE {_LIVE} "  # noqa: S608
            "AND last_window_end < (SELECT MAX(window_end) FROM amazon_check_run) - INTERVAL %s SECOND",
            (quiet_seconds,),
        )
        return int(cur.rowcount)


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


def mark_escalated(conn: Connection, alert_id: int) -> bool:
    """Claim the alert's one escalation: False when it was escalated already."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_alert SET escalated_at = UTC_TIMESTAMP() WHERE id = %s AND escalated_at IS NULL", (alert_id,)
        )
        return cur.rowcount == 1


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
