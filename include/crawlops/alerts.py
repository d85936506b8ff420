"""Alerts: every check's findings (``crawlops.findings``) are stored through ``record_findings``.

A finding is an incident, one row of ``amazon_alert``: the same finding (source, check,
subject) made again in later windows counts another occurrence of the open alert instead of
adding a row, until the check no longer finds it or it stays quiet for
``[alerts] quiet_close_seconds``; re-running a window updates what it stored instead of
adding copies. Each alert carries the crawl object and marketplace it is about (what
routing matches on). Every finding is logged at its level. Delivery (``crawlops.delivery``)
hooks onto the stored rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterable
from typing import Any

from crawlops import objects
from crawlops.db import Connection
from crawlops.findings import Finding, Level
from crawlops.model import Window
from crawlops.settings import Settings
from crawlops.store import alerts as store_alerts
from crawlops.store import incidents

log = logging.getLogger(__name__)
ER_LOCK_DEADLOCK = 1213
DEADLOCK_TRIES = 3

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
    quiet_close_seconds: int | None = None,
) -> list[int]:
    """Log and store findings as incidents (see the module docstring); returns their alert ids.

    Re-running a window keeps its history honest: a finding made again is current again; one
    that escalates (INFO to ERROR, say) is queued for delivery afresh, since the quieter one
    may never have been sent; and with ``resolves`` (the check names a check owns), a finding
    of those checks that this run no longer makes is withdrawn if it was made for this
    window only, and its incident closed if it was last seen in this window or before;
    ``scope`` (a table) limits that to findings about it (subject the table or one of its
    columns), so one crawl object's check never resolves another's. ``quiet_close_seconds``:
    the ``[alerts]`` setting's value when not given.
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
    if quiet_close_seconds is None:
        quiet_close_seconds = Settings.load().alerts.quiet_close_seconds
    scopes = about(conn, findings)
    rows = [_row(f, start, end, dag_run_id, where) for f, where in zip(findings, scopes, strict=True)]
    names = sorted(set(resolves))
    for attempt in range(1, DEADLOCK_TRIES + 1):
        try:
            ids = incidents.upsert_findings(conn, rows, quiet_close_seconds=quiet_close_seconds)
            withdrawn = closed = 0
            if names:
                current = [f.fingerprint for f in findings]
                withdrawn, closed = incidents.resolve_absent(conn, start, end, names, current, scope=scope)
            conn.commit()
            break
        except Exception as exc:  # two runs opening the same new alert at once: InnoDB picks one to retry
            conn.rollback()
            if not (exc.args and exc.args[0] == ER_LOCK_DEADLOCK) or attempt == DEADLOCK_TRIES:
                raise
            log.info("storing findings met a deadlock with another run; try %d of %d", attempt + 1, DEADLOCK_TRIES)
    if withdrawn or closed:
        log.info(
            "findings of %s no longer made for %s: %d withdrawn, %d alerts closed", names, window, withdrawn, closed
        )
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


def about(conn: Connection, findings: list[Finding]) -> list[tuple[str | None, str | None]]:
    """The (crawl object, marketplace) each finding is about, where it says: its details'
    ``crawl_object`` / ``marketplace`` (or ``market``); else its subject, read as an object
    (``product_detail``, ``product_detail/DE/...``), an object's table or column
    (``amazon_search_result.price``), or a task id (its task's object)."""
    found: list[tuple[str | None, str | None]] = []
    for f in findings:
        obj = f.details.get("crawl_object") if isinstance(f.details, dict) else None
        market = (f.details.get("marketplace") or f.details.get("market")) if isinstance(f.details, dict) else None
        head, _, rest = f.subject.partition("/")
        if obj is None and head in objects.REGISTRY:
            obj = head
            market = market or (rest.partition("/")[0] or None)
        if obj is None:
            with contextlib.suppress(KeyError):
                obj = objects.for_table(f.subject.partition(".")[0]).name
        found.append((str(obj)[:64] if obj else None, str(market)[:16] if market else None))
    unknown = sorted({f.subject for f, (obj, _) in zip(findings, found, strict=True) if obj is None and f.subject})
    tasks = incidents.task_objects(conn, unknown) if unknown else {}
    return [
        (tasks.get(f.subject), market) if obj is None else (obj, market)
        for f, (obj, market) in zip(findings, found, strict=True)
    ]


def _row(
    finding: Finding,
    start: dt.datetime,
    end: dt.datetime,
    dag_run_id: str | None,
    about: tuple[str | None, str | None],
) -> tuple[Any, ...]:
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
        *about,
    )
