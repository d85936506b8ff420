"""Task health and system health, judged at a reference time (the end of the run's window).

Supervision never moves task statuses itself: it asks ``crawlops.lifecycle`` (the dispatch
core) to sync statuses and to send timed-out tasks' unanswered elements to the retry path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from crawlops import lifecycle, queue, store
from crawlops.db import Connection
from crawlops.findings import Finding, Level
from crawlops.model import TaskStatus, fail_key
from crawlops.names import SUPERVISION_DAG
from crawlops.queue import RedisClient
from crawlops.settings import HealthSettings, Settings

log = logging.getLogger(__name__)
SOURCE = SUPERVISION_DAG
# Findings of task health that a run no longer making them closes (the condition went away);
# a Dead task or a timeout stays open until someone acts on it.
CLEARS = ("success_rate", "task_stalled")


class SystemFault(RuntimeError):
    """MySQL or Redis cannot be used; the task fails so Airflow retries it with backoff."""

    def __init__(self, finding: Finding):
        super().__init__(finding.title)
        self.finding = finding


def probe_redis(r: RedisClient, settings: Settings) -> tuple[dict[str, Any], list[Finding]]:
    """Reachability and memory of the crawl Redis. Unreachable raises ``SystemFault``."""
    try:
        r.ping()
        memory = r.info("memory")
    except Exception as exc:  # any client error means the queues cannot be used
        raise SystemFault(
            Finding(Level.CRITICAL, SOURCE, "redis_reachable", f"Redis unreachable: {type(exc).__name__}: {exc}")
        ) from exc
    used, limit = int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0))
    facts = {"used_memory": used, "maxmemory": limit, "ratio": round(used / limit, 4) if limit else None}
    findings = []
    if limit and used / limit >= settings.health.redis_memory_max_ratio:
        findings.append(
            Finding(
                Level.CRITICAL,
                SOURCE,
                "redis_memory",
                f"Redis memory at {used / limit:.0%} of maxmemory",
                details=facts,
                action="none automatic: free memory or raise maxmemory before Redis starts evicting or refusing writes",
            )
        )
    return facts, findings


@dataclasses.dataclass
class HealthReport:
    reference: dt.datetime
    open_tasks: int
    timed_out: dict[str, int]
    stalled: list[str]
    success_rate: float | None
    success_by_type: dict[str, dict[str, Any]]
    finished_elements: int
    queue_depth: dict[str, dict[str, int]]
    findings: list[Finding]
    repair: dict[str, Any]
    tracking: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference.isoformat(),
            "open_tasks": self.open_tasks,
            "timed_out": self.timed_out,
            "stalled": self.stalled,
            "success_rate": self.success_rate,
            "success_by_type": self.success_by_type,
            "finished_elements": self.finished_elements,
            "queue_depth": self.queue_depth,
            "findings": [f.to_json() for f in self.findings],
            "repair": self.repair,
            "tracking": self.tracking,
        }


def check_tasks(
    conn: Connection, r: RedisClient, settings: Settings, reference: dt.datetime, *, dry_run: bool = False
) -> HealthReport:
    """Track every task (sync, settle, reconcile), then timeouts (handled), stalls, success
    rate per crawl object and queue depth, as of ``reference``."""
    health = settings.health
    now = lifecycle.decision_time(conn, reference)
    tracking = lifecycle.track(conn, r, settings, now=now, dry_run=dry_run)
    synced = tracking.open or lifecycle.OpenTasks([], {}, {}, {}, [])
    ref = reference.astimezone(dt.UTC).replace(tzinfo=None)
    open_tasks = [t for t in synced.tasks if t.task_id not in tracking.repushed]
    timed_out, stalled = overdue(open_tasks, ref, health)
    findings: list[Finding] = tracking.findings(SOURCE)
    repair: dict[str, Any] = {}
    if timed_out:
        reason = f"timed out: open longer than {health.task_timeout_seconds} s"
        repair = lifecycle.hand_to_retry(
            conn, r, settings, [t.task_id for t in timed_out], reason=reason, dry_run=dry_run, now=now
        )
        findings += timeout_findings(timed_out, repair, health, dry_run=dry_run)
    findings += [stall_finding(task, health) for task in stalled]
    by_type = success_rates(conn, now, health.success_rate_lookback_seconds)
    findings += success_rate_findings(by_type, health)
    dispatched = sum(e["elements"] for e in by_type.values())
    answered = sum(e["answered"] for e in by_type.values())
    return HealthReport(
        reference=reference,
        open_tasks=len(open_tasks) - len(timed_out),
        timed_out={t.task_id: repair.get("handed", {}).get(t.task_id, 0) for t in timed_out},
        stalled=[t.task_id for t in stalled],
        success_rate=round(answered / dispatched, 6) if dispatched else None,
        success_by_type=by_type,
        finished_elements=dispatched,
        queue_depth=_depth(open_tasks, synced.queued, synced.failed),
        findings=findings,
        repair=repair,
        tracking=tracking.to_json(),
    )


def overdue(
    tasks: Sequence[store.OpenTask], ref: dt.datetime, health: HealthSettings
) -> tuple[list[store.OpenTask], list[store.OpenTask]]:
    """(timed out: began ``task_timeout_seconds`` before ``ref`` or earlier; stalled: in
    progress, and no element taken for ``stall_seconds``) among the open tasks."""
    began_by = ref - dt.timedelta(seconds=health.task_timeout_seconds)
    last_by = ref - dt.timedelta(seconds=health.stall_seconds)
    timed_out, stalled = [], []
    for task in tasks:
        began = task.started_at or task.pushed_at
        last = task.progress_at or began
        if began is not None and began <= began_by:
            timed_out.append(task)
        elif task.task_status == TaskStatus.IN_PROGRESS.value and last is not None and last <= last_by:
            stalled.append(task)
    return timed_out, stalled


def timeout_findings(
    timed_out: Sequence[store.OpenTask], repair: dict[str, Any], health: HealthSettings, *, dry_run: bool
) -> list[Finding]:
    """An ERROR per timed-out task saying what went to the retry path; then what that did (Dead tasks...)."""
    verb = "would send" if dry_run else "sent"
    findings = [
        Finding(
            Level.ERROR,
            SOURCE,
            "task_timeout",
            f"{task.task_id} {task.task_status} longer than {health.task_timeout_seconds} s",
            subject=task.task_id,
            details={"status": task.task_status, "remaining": task.remaining_count},
            action=f"{verb} {repair['handed'].get(task.task_id, 0)} unanswered elements to the retry path",
        )
        for task in timed_out
    ]
    return findings + [Finding.from_json(f) for f in repair["findings"]]


def stall_finding(task: store.OpenTask, health: HealthSettings) -> Finding:
    return Finding(
        Level.WARNING,
        SOURCE,
        "task_stalled",
        f"{task.task_id}: no element taken for {health.stall_seconds} s",
        subject=task.task_id,
        details={"remaining": task.remaining_count, "last_progress": str(task.progress_at)},
    )


def success_rate_findings(by_type: dict[str, dict[str, Any]], health: HealthSettings) -> list[Finding]:
    """A WARNING per crawl object whose success rate is below ``success_rate_min``."""
    return [
        Finding(
            Level.WARNING,
            SOURCE,
            "success_rate",
            f"{crawl_object}: success rate {entry['rate']:.1%} below {health.success_rate_min:.0%}",
            subject=crawl_object,
            details={**entry, "lookback_seconds": health.success_rate_lookback_seconds},
        )
        for crawl_object, entry in by_type.items()
        if entry["rate"] is not None and entry["rate"] < health.success_rate_min
    ]


def success_rates(conn: Connection, now: dt.datetime, lookback_seconds: int) -> dict[str, dict[str, Any]]:
    """Per crawl object: answered (result rows or an empty answer) / dispatched elements, over
    tasks settled in the lookback. Elements still unanswered when their task settled (failed
    or lost) are not successes, even when a retry answers them later (the retry counts too)."""
    rows = store.settled_totals_by_type(conn, now - dt.timedelta(seconds=lookback_seconds), now)
    return {
        str(task_type): {
            "tasks": int(tasks),
            "elements": int(elements or 0),
            "answered": int(answered or 0),
            "empty": int(empty or 0),
            "lost": int(lost or 0),
            "rate": round(int(answered or 0) / int(elements), 6) if elements else None,
        }
        for task_type, tasks, elements, answered, empty, lost in rows
    }


def queue_depth(conn: Connection, r: RedisClient) -> dict[str, dict[str, int]]:
    """Per crawl object: open tasks, elements queued in Redis, failed elements waiting for a retry."""
    open_tasks = store.select_tasks(
        conn, "task_status IN (%s, %s)", (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value)
    )
    sizes = queue.set_sizes(r, [k for t in open_tasks for k in (t.task_id, fail_key(t.task_id))])
    queued = {t.task_id: n for t, n in zip(open_tasks, sizes[::2], strict=True)}
    failed = {t.task_id: n for t, n in zip(open_tasks, sizes[1::2], strict=True)}
    return _depth(open_tasks, queued, failed)


def _depth(
    tasks: Sequence[store.TaskRow | store.OpenTask], queued: dict[str, int], failed: dict[str, int]
) -> dict[str, dict[str, int]]:
    depth: dict[str, dict[str, int]] = {}
    for task in tasks:
        entry = depth.get(task.task_type) or depth.setdefault(
            task.task_type, {"open_tasks": 0, "queued": 0, "failed_waiting": 0}
        )
        entry["open_tasks"] += 1
        entry["queued"] += queued[task.task_id]
        entry["failed_waiting"] += failed[task.task_id]
    return depth
