"""The alert outbox and check outcomes: ``amazon_alert``, ``amazon_alert_delivery`` and
``amazon_check_run``. Only this module holds their SQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from crawlops.db import Connection, Expiry

LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO")  # most severe first
_RANK = "FIELD({}, 'INFO', 'WARNING', 'ERROR', 'CRITICAL')"
ALERT_TIME_COLUMNS = ("window_start", "created_at")


# --- findings -------------------------------------------------------------------------------


_OPEN = ("open", "acknowledged", "expected")  # statuses of an incident still going on
_LIVE = "status IN ('open', 'acknowledged', 'expected') AND resolved_at IS NULL"


def upsert_findings(conn: Connection, rows: Sequence[tuple[Any, ...]], *, quiet_close_seconds: int) -> list[int]:
    """Store findings as incidents: (level, source, check, subject, title, details, action,
    fingerprint, window_start, window_end, dag_run_id, crawl_object, marketplace).

    A finding whose fingerprint has a live incident (open, acknowledged or expected) that
    began at or before its window, and was last seen no more than ``quiet_close_seconds``
    before it, is that incident: a later window counts one more occurrence and makes its
    words current, its level the highest seen while it was open; a re-run of a window it
    holds changes nothing but its words (for the last window). Otherwise it is a new
    incident (one found quiet too long is closed first); re-running that window updates the
    same row. A level that rises queues the alert
    for delivery afresh, as does a new occurrence of one muted, suppressed or without a
    channel (it is judged again). Returns the alert ids; the caller commits."""
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
                    ids.append(int(alert_id))  # a re-run of a window the incident already holds
                    continue
                else:
                    _repeat(cur, int(alert_id), row, later=start > last_start, rises=_rank(row[0]) > _rank(level))
                    ids.append(int(alert_id))
                    continue
            ids.append(_insert(cur, row))
    return ids


def _rank(level: str) -> int:
    return LEVELS[::-1].index(level)


def _repeat(cur: Any, alert_id: int, row: tuple[Any, ...], *, later: bool, rises: bool) -> None:
    level, _, _, _, title, details, action, _, start, end, dag_run_id, _, _ = row
    again = "delivery_status IN ('muted', 'suppressed', 'no_channel')" if later else "FALSE"
    cur.execute(
        # delivery columns first: they read the stored values
        f"UPDATE amazon_alert SET "  # noqa: S608
        f"delivery_status = IF(%s OR {again}, 'stored', delivery_status), "
        "delivery_attempts = IF(%s, 0, delivery_attempts), next_attempt_at = IF(%s, NULL, next_attempt_at), "
        "occurrences = occurrences + %s, last_window_start = %s, last_window_end = %s, "
        "last_seen_at = IF(%s, UTC_TIMESTAMP(), last_seen_at), "
        "level = IF(%s, %s, level), title = %s, details = %s, action_taken = %s, dag_run_id = %s WHERE id = %s",
        (
            rises,
            rises,
            rises,
            int(later),
            start,
            end,
            later,
            rises,
            level,
            title,
            details,
            action,
            dag_run_id,
            alert_id,
        ),
    )


def _insert(cur: Any, row: tuple[Any, ...]) -> int:
    escalates = f"{_RANK.format('VALUES(level)')} > {_RANK.format('level')}"
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
    ``scope.<column>``) this run of the window no longer makes: a finding made only in this
    window is withdrawn (``resolved_at``); a live incident last seen in this window or
    before is closed (the check no longer finds it). Incidents seen after this window (this
    is a backfill) are left alone. Returns (withdrawn, closed)."""
    current = list(current) or [""]
    scoped = " AND (subject = %s OR subject LIKE %s)" if scope else ""
    which = (
        " AND check_name IN (" + ", ".join(["%s"] * len(checks)) + ")"
        " AND fingerprint NOT IN (" + ", ".join(["%s"] * len(current)) + ")" + scoped
    )
    params = [*checks, *current, *((scope, scope.replace("_", "\\_") + ".%") if scope else ())]
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_alert SET resolved_at = UTC_TIMESTAMP() WHERE window_start = %s AND window_end = %s "  # noqa: S608
            "AND occurrences = 1 AND resolved_at IS NULL" + which,
            [start, end, *params],
        )
        withdrawn = int(cur.rowcount)
        cur.execute(
            "UPDATE amazon_alert SET status = 'closed', closed_at = UTC_TIMESTAMP() "  # noqa: S608
            f"WHERE {_LIVE} AND last_window_start <= %s" + which,
            [start, *params],
        )
        return withdrawn, int(cur.rowcount)


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
    """Current findings of ``checks`` on one-hour windows starting in [start, end), by ``source``:
    (check_name, window_start, dag_run_id, title), oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT check_name, window_start, dag_run_id, title FROM amazon_alert WHERE check_name IN ("  # noqa: S608
            + ", ".join(["%s"] * len(checks))
            + ") AND window_start >= %s AND window_start < %s AND window_end = window_start + INTERVAL 1 HOUR "
            "AND source = %s AND resolved_at IS NULL ORDER BY id",
            (*checks, start, end, source),
        )
        return list(cur.fetchall())


# --- delivery -------------------------------------------------------------------------------


def pending(conn: Connection, limit: int) -> list[tuple[Any, ...]]:
    """Alerts waiting to be routed (new, risen, repeating again, or a reminder due): (id, level,
    source, check_name, subject, title, action_taken, fingerprint, window_start, window_end,
    delivery_attempts, dag_run_id, crawl_object, marketplace, status, occurrences, created_at,
    last_seen_at, delivered_at), oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, level, source, check_name, subject, title, action_taken, fingerprint, window_start, "
            "window_end, delivery_attempts, dag_run_id, crawl_object, marketplace, status, occurrences, "
            "created_at, last_seen_at, delivered_at FROM amazon_alert WHERE delivery_status = 'stored' "
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


def last_sent_at(conn: Connection, fingerprint: str) -> dt.datetime | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT MAX(delivered_at) FROM amazon_alert WHERE fingerprint = %s AND delivery_status = 'sent'",
            (fingerprint,),
        )
        return cur.fetchone()[0]


def held_back(conn: Connection, fingerprint: str) -> tuple[int, dt.datetime | None]:
    """Twins of the alert suppressed and not yet accounted for by a message: (count, oldest)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*), MIN(created_at) FROM amazon_alert WHERE fingerprint = %s "
            "AND delivery_status = 'suppressed' AND delivered_at IS NULL",
            (fingerprint,),
        )
        count, since = cur.fetchone()
        return int(count), since


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


def close_quiet(conn: Connection, before: dt.datetime) -> int:
    """Close live incidents last seen in a window that ended before ``before``."""
    with conn.cursor() as cur:
        cur.execute(
            f"UPDATE amazon_alert SET status = 'closed', closed_at = UTC_TIMESTAMP() "  # noqa: S608
            f"WHERE {_LIVE} AND last_window_end < %s",
            (before,),
        )
        return int(cur.rowcount)


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
    "amazon_alert_delivery": Expiry("amazon_alert_delivery", "sent_at", per="channel"),
    "amazon_check_run": Expiry("amazon_check_run", "window_end"),
}
