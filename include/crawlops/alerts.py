"""Alerts: every check's findings (``crawlops.findings``) are stored through ``record_findings``.

A finding is stored as one row of ``amazon_alert`` per (source, check, subject, window):
re-running a window updates its rows instead of adding copies. Every finding is logged at
its level. Delivery (DingTalk for WARNING and above) hooks onto the stored rows.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from typing import Any

from crawlops.db import Connection
from crawlops.findings import Finding, Level
from crawlops.model import Window
from crawlops.store import alerts as store_alerts

log = logging.getLogger(__name__)

_LOG_LEVELS = {
    Level.INFO: logging.INFO,
    Level.WARNING: logging.WARNING,
    Level.ERROR: logging.ERROR,
    Level.CRITICAL: logging.CRITICAL,
}


def record_findings(
    conn: Connection,
    findings: Iterable[Finding],
    *,
    window: Window,
    dag_run_id: str | None = None,
    resolves: Iterable[str] = (),
    scope: str | None = None,
) -> list[int]:
    """Log and store findings (upserted per fingerprint and window); returns their alert ids.

    Re-running a window keeps its history honest: a finding made again is current again; one
    that escalates (INFO to ERROR, say) is queued for delivery afresh, since the quieter one
    may never have been sent; and with ``resolves`` (the check names a check owns), a finding
    of those checks for this window that this run no longer makes is marked resolved;
    ``scope`` (a table) limits that to findings about it (subject the table or one of its
    columns), so one crawl object's check never resolves another's.
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
        current = [f.fingerprint for f in findings]
        resolved = store_alerts.resolve_absent(conn, start, end, names, current, scope=scope)
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
