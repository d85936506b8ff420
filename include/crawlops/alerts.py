"""Findings and alerts: every check's result goes through ``record_findings``.

A finding is stored as one row of ``amazon_alert`` per (source, check, subject, window):
re-running a window updates its rows instead of adding copies. Every finding is logged at
its level. Delivery (DingTalk for WARNING and above) hooks onto the stored rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from crawlops.db import Connection
from crawlops.model import Window

log = logging.getLogger(__name__)


class Level(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return list(Level).index(self)


_LOG_LEVELS = {
    Level.INFO: logging.INFO,
    Level.WARNING: logging.WARNING,
    Level.ERROR: logging.ERROR,
    Level.CRITICAL: logging.CRITICAL,
}


@dataclasses.dataclass(frozen=True)
class Finding:
    """What a check found, and what was done about it."""

    level: Level
    source: str
    check: str
    title: str
    subject: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    action: str = ""

    @property
    def fingerprint(self) -> str:
        """Identity of "the same alert": source, check and subject, not the wording."""
        key = "\x1f".join((self.source, self.check, self.subject))
        return hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(
            Level(data["level"]), data["source"], data["check"], data["title"],
            data.get("subject", ""), data.get("details") or {}, data.get("action", ""),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "source": self.source,
            "check": self.check,
            "subject": self.subject,
            "title": self.title,
            "details": self.details,
            "action": self.action,
        }


_RANK = "FIELD({}, 'INFO', 'WARNING', 'ERROR', 'CRITICAL')"


def record_findings(
    conn: Connection,
    findings: Iterable[Finding],
    *,
    window: Window,
    dag_run_id: str | None = None,
    resolves: Iterable[str] = (),
) -> list[int]:
    """Log and store findings (upserted per fingerprint and window); returns their alert ids.

    Re-running a window keeps its history honest: a finding made again is current again; one
    that escalates (INFO to ERROR, say) is queued for delivery afresh, since the quieter one
    may never have been sent; and with ``resolves`` (the check names a check owns), a finding
    of those checks for this window that this run no longer makes is marked resolved.
    """
    start, end = window.naive()
    ids = []
    findings = list(findings)
    escalates = f"{_RANK.format('VALUES(level)')} > {_RANK.format('level')}"
    with conn.cursor() as cur:
        for finding in findings:
            log.log(
                _LOG_LEVELS[finding.level],
                "[%s] %s/%s %s: %s%s",
                finding.level.value,
                finding.source,
                finding.check,
                finding.subject,
                finding.title,
                f" -> {finding.action}" if finding.action else "",
            )
            cur.execute(  # the formatted parts are constants of this module
                "INSERT INTO amazon_alert (level, source, check_name, subject, title, details, action_taken, "  # noqa: S608
                "fingerprint, window_start, window_end, dag_run_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                # delivery columns first: they compare the stored level with the new one
                f"ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), "
                f"delivery_status = IF({escalates}, 'stored', delivery_status), "
                f"delivery_attempts = IF({escalates}, 0, delivery_attempts), "
                f"next_attempt_at = IF({escalates}, NULL, next_attempt_at), "
                "level = VALUES(level), title = VALUES(title), resolved_at = NULL, "
                "details = VALUES(details), action_taken = VALUES(action_taken), dag_run_id = VALUES(dag_run_id)",
                (
                    finding.level.value,
                    finding.source[:128],
                    finding.check[:128],
                    finding.subject[:255],
                    finding.title[:255],
                    json.dumps(finding.details, default=str, ensure_ascii=False),
                    finding.action or None,
                    finding.fingerprint,
                    start,
                    end,
                    dag_run_id,
                ),
            )
            ids.append(cur.lastrowid)
        names = sorted(set(resolves))
        if names:
            current = [f.fingerprint for f in findings] or [""]
            cur.execute(
                "UPDATE amazon_alert SET resolved_at = UTC_TIMESTAMP() WHERE window_start = %s AND window_end = %s "  # noqa: S608
                "AND check_name IN (" + ", ".join(["%s"] * len(names)) + ") AND resolved_at IS NULL "
                "AND fingerprint NOT IN (" + ", ".join(["%s"] * len(current)) + ")",
                [start, end, *names, *current],
            )
            if cur.rowcount:
                log.info("%d earlier findings of %s for %s no longer hold: resolved", cur.rowcount, names, window)
    conn.commit()
    return ids


def record_check(
    conn: Connection,
    check: str,
    window: Window,
    *,
    status: str,
    findings: int = 0,
    details: dict[str, Any] | None = None,
    dag_run_id: str | None = None,
) -> None:
    """Store one check's outcome for the window (``pass``, ``fail``, ``repaired``, ``skipped``...)."""
    start, end = window.naive()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_check_run (check_name, window_start, window_end, status, findings, details, "
            "dag_run_id) VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE status = VALUES(status), "
            "findings = VALUES(findings), details = VALUES(details), dag_run_id = VALUES(dag_run_id)",
            (
                check,
                start,
                end,
                status,
                findings,
                json.dumps(details or {}, default=str, ensure_ascii=False),
                dag_run_id,
            ),
        )
    conn.commit()


def set_check_status(conn: Connection, check: str, window_start: dt.datetime, status: str, *, only_if: str) -> None:
    """Turn a check's row for the window starting at ``window_start`` from ``only_if`` to ``status``."""
    start = window_start.astimezone(dt.UTC).replace(tzinfo=None) if window_start.tzinfo else window_start
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_check_run SET status = %s WHERE check_name = %s AND status = %s AND window_start = %s",
            (status, check, only_if, start),
        )
    conn.commit()


def mark_delivered(conn: Connection, alert_ids: Iterable[int]) -> None:
    """Alerts that went out by another way (an outage told to DingTalk without MySQL)."""
    ids = list(alert_ids)
    if not ids:
        return
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_alert SET delivery_status = 'sent', delivered_at = UTC_TIMESTAMP() "  # noqa: S608
            "WHERE id IN (" + ", ".join(["%s"] * len(ids)) + ")",
            ids,
        )
    conn.commit()


def findings_by_level(conn: Connection, dag_run_id: str) -> dict[str, int]:
    """How many findings a run recorded, by level."""
    with conn.cursor() as cur:
        cur.execute("SELECT level, COUNT(*) FROM amazon_alert WHERE dag_run_id = %s GROUP BY level", (dag_run_id,))
        return {str(level): int(count) for level, count in cur.fetchall()}


def dead_task_findings(dead: Iterable[dict[str, Any]], *, source: str) -> list[Finding]:
    """CRITICAL findings naming each task whose retry budget is spent."""
    return [
        Finding(
            Level.CRITICAL,
            source,
            "task_dead",
            f"{d['task_id']} is Dead: {d['failed_elements']} elements still failing after {d['retry_count']} retries",
            subject=d["task_id"],
            details=dict(d),
            action=f"no more retries; failed elements kept in {d['task_id']}_fail for inspection",
        )
        for d in dead
    ]


def skipped_rows_finding(skipped: dict[str, int], *, source: str, examples: list[dict[str, Any]]) -> Finding | None:
    """One WARNING counting the config rows a dispatch run skipped, per reason."""
    if not skipped:
        return None
    total = sum(skipped.values())
    return Finding(
        Level.WARNING,
        source,
        "config_rows_skipped",
        f"{total} config rows skipped: " + ", ".join(f"{reason} {n}" for reason, n in skipped.items()),
        subject="amazon_crawl_config",
        details={"by_reason": skipped, "examples": examples[:10]},
        action="fix or disable these rows in amazon_crawl_config; the other rows were dispatched",
    )
