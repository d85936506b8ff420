"""Task health and system health, judged at a reference time (the end of the run's window).

Supervision never moves task statuses itself: it asks ``crawlops.lifecycle`` (the dispatch
core) to sync statuses and to send timed-out tasks' unanswered elements to the retry path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from crawlops import lifecycle, queue, store
from crawlops.alerts import Finding, Level, dead_task_findings
from crawlops.model import TaskStatus
from crawlops.settings import Settings

log = logging.getLogger(__name__)
SOURCE = "amazon_data_supervision"


class SystemFault(RuntimeError):
    """MySQL or Redis cannot be used; the task fails so Airflow retries it with backoff."""

    def __init__(self, finding: Finding):
        super().__init__(finding.title)
        self.finding = finding


def probe_redis(r: Any, settings: Settings) -> tuple[dict[str, Any], list[Finding]]:
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
    finished_elements: int
    queue_depth: dict[str, dict[str, int]]
    findings: list[Finding]
    repair: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference.isoformat(),
            "open_tasks": self.open_tasks,
            "timed_out": self.timed_out,
            "stalled": self.stalled,
            "success_rate": self.success_rate,
            "finished_elements": self.finished_elements,
            "queue_depth": self.queue_depth,
            "findings": [f.to_json() for f in self.findings],
            "repair": self.repair,
        }


def check_tasks(
    conn: Any, r: Any, settings: Settings, reference: dt.datetime, *, dry_run: bool = False
) -> HealthReport:
    """Timeouts (handled), stalls, success rate and queue depth, as of ``reference``."""
    health = settings.health
    synced = lifecycle.sync_open_tasks(conn, r, settings, write=not dry_run)
    ref = reference.astimezone(dt.UTC).replace(tzinfo=None)
    open_tasks = synced.tasks
    timeout = dt.timedelta(seconds=health.task_timeout_seconds)
    stall = dt.timedelta(seconds=health.stall_seconds)
    timed_out, stalled = [], []
    for task in open_tasks:
        began = task.started_at or task.pushed_at
        if began is not None and began <= ref - timeout:
            timed_out.append(task)
        elif task.task_status == TaskStatus.IN_PROGRESS.value and (task.progress_at or began) <= ref - stall:
            stalled.append(task)

    findings: list[Finding] = []
    repair: dict[str, Any] = {}
    if timed_out:
        reason = f"timed out: open longer than {health.task_timeout_seconds} s"
        repair = lifecycle.hand_to_retry(
            conn, r, settings, [t.task_id for t in timed_out], reason=reason, dry_run=dry_run
        )
        verb = "would send" if dry_run else "sent"
        for task in timed_out:
            handed = repair["handed"].get(task.task_id, 0)
            findings.append(
                Finding(
                    Level.ERROR,
                    SOURCE,
                    "task_timeout",
                    f"{task.task_id} {task.task_status} longer than {health.task_timeout_seconds} s",
                    subject=task.task_id,
                    details={"status": task.task_status, "remaining": task.remaining_count},
                    action=f"{verb} {handed} unanswered elements to the retry path",
                )
            )
    findings += dead_task_findings(repair.get("dead", []), source=SOURCE)
    for task in stalled:
        findings.append(
            Finding(
                Level.WARNING,
                SOURCE,
                "task_stalled",
                f"{task.task_id}: no element taken for {health.stall_seconds} s",
                subject=task.task_id,
                details={"remaining": task.remaining_count, "last_progress": str(task.progress_at)},
            )
        )

    rate, finished = _success_rate(conn, ref, health.success_rate_lookback_seconds)
    if rate is not None and rate < health.success_rate_min:
        findings.append(
            Finding(
                Level.WARNING,
                SOURCE,
                "success_rate",
                f"success rate {rate:.1%} below {health.success_rate_min:.0%}",
                details={"elements": finished, "lookback_seconds": health.success_rate_lookback_seconds},
            )
        )
    return HealthReport(
        reference=reference,
        open_tasks=len(open_tasks),
        timed_out={t.task_id: repair.get("handed", {}).get(t.task_id, 0) for t in timed_out},
        stalled=[t.task_id for t in stalled],
        success_rate=rate,
        finished_elements=finished,
        queue_depth=_depth(open_tasks, synced.queued, synced.failed),
        findings=findings,
        repair=repair,
    )


def _success_rate(conn: Any, ref: dt.datetime, lookback_seconds: int) -> tuple[float | None, int]:
    """Answered / dispatched elements over tasks that finished in the lookback."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COALESCE(SUM(element_count), 0), COALESCE(SUM(element_count - failed_count), 0) "
            "FROM amazon_task_information WHERE task_status IN (%s, %s, %s) "
            "AND finished_at > %s AND finished_at <= %s",
            (
                TaskStatus.COMPLETED.value,
                TaskStatus.FAILED.value,
                TaskStatus.DEAD.value,
                ref - dt.timedelta(seconds=lookback_seconds),
                ref,
            ),
        )
        total, answered = (int(v) for v in cur.fetchone())
    return (answered / total if total else None), total


def queue_depth(conn: Any, r: Any) -> dict[str, dict[str, int]]:
    """Per crawl object: open tasks, elements queued in Redis, failed elements waiting for a retry."""
    open_tasks = store.select_tasks(
        conn, "task_status IN (%s, %s)", (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value)
    )
    sizes = queue.set_sizes(r, [k for t in open_tasks for k in (t.task_id, t.task_id + "_fail")])
    queued = {t.task_id: n for t, n in zip(open_tasks, sizes[::2], strict=True)}
    failed = {t.task_id: n for t, n in zip(open_tasks, sizes[1::2], strict=True)}
    return _depth(open_tasks, queued, failed)


def _depth(tasks: list[store.TaskRow], queued: dict[str, int], failed: dict[str, int]) -> dict[str, dict[str, int]]:
    depth: dict[str, dict[str, int]] = {}
    for task in tasks:
        entry = depth.setdefault(task.task_type, {"open_tasks": 0, "queued": 0, "failed_waiting": 0})
        entry["open_tasks"] += 1
        entry["queued"] += queued[task.task_id]
        entry["failed_waiting"] += failed[task.task_id]
    return depth
