"""Completeness: the hour's account of elements taken and never answered."""

from __future__ import annotations

import logging
from typing import Any

from crawlops import lifecycle, store
from crawlops.db import Connection
from crawlops.findings import Finding, Level
from crawlops.model import TaskStatus, Window
from crawlops.names import SUPERVISION_DAG as SOURCE
from crawlops.queue import RedisClient
from crawlops.settings import Settings

log = logging.getLogger(__name__)


def check_completeness(
    conn: Connection, r: RedisClient, settings: Settings, window: Window, *, dry_run: bool = False
) -> tuple[dict[str, Any], list[Finding]]:
    """The hour's account of unanswered elements, after settling whatever is due.

    Settling runs in every supervision run (``lifecycle.track``); here it runs once more, so
    the hour's verdict never waits on a failed health task. Then every task settled in the
    window with elements taken and never answered is a ``missing_data`` WARNING (they went
    to a retry task, or the task is Dead).
    """
    now = lifecycle.decision_time(conn, window.end)
    tracking = lifecycle.settle_finished(conn, r, settings, now=now, dry_run=dry_run)
    start, end = window.naive()
    rows = store.settled_between(conn, start, end)
    findings = {(f.check, f.subject): f for f in tracking.findings(SOURCE)}
    missing: dict[str, int] = {}
    for task_id, task_type, status, elements, answered, empty, failed, lost in rows:
        if not lost:
            continue
        missing[task_id] = int(lost)
        then = f"retry task {task_id}_fail" if status == TaskStatus.FAILED.value else f"task is {status}"
        findings.setdefault(
            ("missing_data", task_id),
            Finding(
                Level.WARNING,
                SOURCE,
                "missing_data",
                f"{task_id}: {lost} elements taken and never answered",
                subject=task_id,
                details={
                    "task_type": task_type,
                    "elements": elements,
                    "answered": answered,
                    "empty": empty,
                    "failed": failed,
                    "lost": lost,
                },
                action=f"sent to the retry path: {then}",
            ),
        )
    for s in tracking.settled:
        if s.lost:
            missing.setdefault(s.task_id, s.lost)
    summary = {
        "settled_tasks": len(rows),
        "missing": missing,
        "waiting": tracking.waiting,
        "repair": {"retries": tracking.retries, "dead": [d.task_id for d in tracking.dead]},
    }
    return summary, list(findings.values())
