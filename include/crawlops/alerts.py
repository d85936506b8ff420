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
from crawlops.store import alerts as store_alerts

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
    findings = list(findings)
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
    ids = store_alerts.upsert_findings(conn, [_row(f, start, end, dag_run_id) for f in findings])
    names = sorted(set(resolves))
    if names:
        resolved = store_alerts.resolve_absent(conn, start, end, names, [f.fingerprint for f in findings])
        if resolved:
            log.info("%d earlier findings of %s for %s no longer hold: resolved", resolved, names, window)
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
    details_json = json.dumps(details or {}, default=str, ensure_ascii=False)
    store_alerts.upsert_check(
        conn, check, start, end, status=status, findings=findings, details_json=details_json, dag_run_id=dag_run_id
    )


def set_check_status(conn: Connection, check: str, window_start: dt.datetime, status: str, *, only_if: str) -> None:
    """Turn a check's row for the window starting at ``window_start`` from ``only_if`` to ``status``."""
    start = window_start.astimezone(dt.UTC).replace(tzinfo=None) if window_start.tzinfo else window_start
    store_alerts.set_check_status(conn, check, start, status, only_if=only_if)


def mark_delivered(conn: Connection, alert_ids: Iterable[int]) -> None:
    """Alerts that went out by another way (an outage told to DingTalk without MySQL)."""
    store_alerts.mark_delivered(conn, list(alert_ids))


def findings_by_level(conn: Connection, dag_run_id: str) -> dict[str, int]:
    """How many findings a run recorded, by level."""
    return store_alerts.findings_by_level(conn, dag_run_id)


def _row(finding: Finding, start: dt.datetime, end: dt.datetime, dag_run_id: str | None) -> tuple[Any, ...]:
    return (
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
    )


def reason_summary(reasons: dict[str, int]) -> str:
    """`` (blocked 3, http_503 2)``: failures by reason class, most first; empty without any."""
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return " (" + ", ".join(f"{reason} {n}" for reason, n in ranked) + ")" if ranked else ""


def example_lines(examples: Iterable[dict[str, str]]) -> str:
    """Example elements with their reasons, for an alert's text: ``{...} blocked (robot check); ...``."""
    return "; ".join(
        f"{e['element']} {e['reason']}" + (f" ({e['detail']})" if e.get("detail") else "") for e in examples
    )


def dead_task_findings(dead: Iterable[dict[str, Any]], *, source: str) -> list[Finding]:
    """CRITICAL findings naming each task whose retry budget is spent, why its elements failed
    and a few of them."""
    return [
        Finding(
            Level.CRITICAL,
            source,
            "task_dead",
            f"{d['task_id']} is Dead: {d['failed_elements']} elements still failing after {d['retry_count']} retries"
            + reason_summary(d.get("reasons") or {}),
            subject=d["task_id"],
            details=dict(d),
            action=f"no more retries; failed elements kept in {d['task_id']}_fail for inspection"
            + (f"; e.g. {example_lines(d['examples'])}" if d.get("examples") else ""),
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
