"""Dispatch core: turn a window's due config into recorded tasks, then publish them to Redis.

This is the one place that knows how a task is born. The dispatch DAG calls
``record_window`` and ``push_window``; supervision asks ``crawlops.lifecycle`` (which
uses the same pieces) to retry or re-dispatch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Sequence, Set
from typing import Any

from crawlops import queue, store
from crawlops.db import Connection, named_lock
from crawlops.findings import Finding, skipped_rows_finding
from crawlops.model import TaskStatus, Window, element_digest
from crawlops.planning import PlannedTask, Skipped, plan_tasks, skip_counts, validate_rows
from crawlops.queue import RedisClient
from crawlops.settings import Settings

log = logging.getLogger(__name__)

# One lock for every step that writes Redis or moves task statuses, so a backfill and the
# scheduled run, or two backfill runs, take turns instead of racing.
DISPATCH_LOCK = "crawlops.dispatch"
# How many skipped rows are listed one by one in the log and the result (the counts are complete).
_SKIPPED_LISTED = 50


@dataclasses.dataclass
class Plan:
    window: Window
    tasks: list[PlannedTask]
    skipped: list[Skipped]
    rows_read: int

    def summary(self) -> dict[str, Any]:
        return {
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
            "rows_read": self.rows_read,
            "tasks": {t.task_id: t.element_count for t in self.tasks},
            "elements": sum(t.element_count for t in self.tasks),
            "skipped": skip_counts(self.skipped),
            "skipped_rows": [
                {"config_id": s.config_id, "reason": s.reason.value, "detail": s.detail}
                for s in self.skipped[:_SKIPPED_LISTED]
            ],
        }


def plan_window(
    conn: Connection,
    settings: Settings,
    window: Window,
    tz: str,
    *,
    crawl_objects: Sequence[str] = (),
    frequencies: Sequence[str] = (),
) -> Plan:
    """Read enabled config rows, validate them, and plan the tasks due in ``window``.

    ``crawl_objects`` / ``frequencies`` narrow a manual run; empty means all.
    """
    rows = store.load_config_rows(conn)
    targets, skipped = validate_rows(rows, settings.dispatch)
    targets = [
        t
        for t in targets
        if (not crawl_objects or t.crawl_object in crawl_objects) and (not frequencies or t.frequency in frequencies)
    ]
    for s in skipped[:_SKIPPED_LISTED]:
        log.warning("config row %s skipped: %s (%s)", s.config_id, s.reason.value, s.detail)
    if len(skipped) > _SKIPPED_LISTED:
        log.warning("... and %d more skipped rows", len(skipped) - _SKIPPED_LISTED)
    plan = Plan(window, plan_tasks(targets, window, tz), skipped, len(rows))
    log.info(
        "window %s: %d enabled rows, %d valid, %d skipped %s; %d tasks due",
        window,
        len(rows),
        len(targets),
        len(skipped),
        skip_counts(skipped),
        len(plan.tasks),
    )
    return plan


def record_plan(
    conn: Connection, settings: Settings, plan: Plan, *, dag_run_id: str | None = None
) -> dict[str, list[str]]:
    """Commit each planned task with its manifest; tasks that already exist are left untouched."""
    outcome: dict[str, list[str]] = {"recorded": [], "existing": []}
    for task in plan.tasks:
        created = store.record_task(conn, task, batch_size=settings.dispatch.mysql_batch_size, dag_run_id=dag_run_id)
        outcome["recorded" if created else "existing"].append(task.task_id)
        if created:
            log.info("recorded %s with %d elements", task.task_id, task.element_count)
        else:
            _note_existing(conn, task)
    return outcome


def record_window(
    conn: Connection,
    settings: Settings,
    window: Window,
    tz: str,
    *,
    crawl_objects: Sequence[str] = (),
    frequencies: Sequence[str] = (),
    dry_run: bool = False,
    dag_run_id: str | None = None,
) -> dict[str, Any]:
    """Plan the window and record its tasks (``dry_run``: plan only); the plan's summary
    with what was recorded."""
    plan = plan_window(conn, settings, window, tz, crawl_objects=crawl_objects, frequencies=frequencies)
    if dry_run:
        return {**plan.summary(), "dry_run": True}
    return {**plan.summary(), **record_plan(conn, settings, plan, dag_run_id=dag_run_id)}


def run_summary(
    recorded: dict[str, Any], synced: dict | None, retried: dict | None, reconciled: dict | None, *, source: str
) -> tuple[dict[str, Any], list[Any]]:
    """A dispatch run's summary from its steps' results, and the findings left to record:
    the sync's and the reconcile's, and one WARNING counting skipped config rows (the
    retry step records its own)."""
    summary = {
        "window": [recorded["window_start"], recorded["window_end"]],
        "dry_run": recorded.get("dry_run", False),
        "tasks": recorded["tasks"],
        "recorded": recorded.get("recorded", []),
        "skipped": recorded["skipped"],
        "retries": (retried or {}).get("retries", {}),
        "dead": [d["task_id"] for d in (retried or {}).get("dead", [])],
        "repushed": (reconciled or {}).get("repushed", {}),
    }
    log.info("dispatch summary: %s", summary)
    if summary["dry_run"]:
        return summary, []
    findings = [Finding.from_json(f) for step in (synced, reconciled) for f in (step or {}).get("findings", [])]
    skipped = skipped_rows_finding(recorded["skipped"], source=source, examples=recorded["skipped_rows"])
    return summary, findings + ([skipped] if skipped else [])


def _note_existing(conn: Connection, task: PlannedTask) -> None:
    (row,) = store.select_tasks(conn, "task_id = %s", (task.task_id,))
    if row.element_count != task.element_count and row.task_source is None:
        log.warning(
            "%s already exists with %d elements; the config now gives %d. A recorded task is never "
            "changed: config changes take effect from the next window.",
            task.task_id,
            row.element_count,
            task.element_count,
        )
    else:
        log.info("%s already recorded (%s); left as it is", task.task_id, row.task_status)


def push_window(conn: Connection, r: RedisClient, settings: Settings, window: Window) -> dict[str, int]:
    """Publish every recorded, never-pushed task of the window to its Redis set.

    Elements come from the MySQL manifest, so Redis only ever holds what the ledger holds.
    Returns the pushed member count per task id.
    """
    start, end = window.naive()
    pushed: dict[str, int] = {}
    with named_lock(conn, DISPATCH_LOCK, settings.dispatch.lock_timeout_seconds):
        epoch = queue.current_epoch(r, create=True)
        for task in store.select_tasks(
            conn, "interval_start = %s AND interval_end = %s AND pushed_at IS NULL", (start, end)
        ):
            pushed[task.task_id] = publish(conn, r, settings, task, epoch=epoch, exclude_done=False)
    return pushed


def publish(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    task: store.TaskRow,
    *,
    epoch: str,
    exclude_done: bool,
    skip: Set[bytes] = frozenset(),
) -> int:
    """Push a task's manifest (optionally minus finished elements and ``skip`` digests) and record it.

    A task already published in this epoch (its marker survives in Redis) is adopted as it
    stands: that is a push whose ledger update was interrupted, and pushing again would
    hand out elements that workers may already have taken.
    """
    if queue.pushed_in(r, task.task_id) == epoch:
        count = queue.set_sizes(r, [task.task_id])[0]
        log.info("%s: already published in this epoch (%d members left); adopted", task.task_id, count)
    else:
        with contextlib.closing(
            store.stream_elements(conn, task, batch_size=settings.dispatch.redis_batch_size, exclude_done=exclude_done)
        ) as manifest:
            batches = ([m for m in batch if element_digest(m) not in skip] for batch in manifest) if skip else manifest
            count = queue.push_members(r, task.task_id, batches, epoch=epoch, priority=task.priority)
    status = TaskStatus.PENDING if task.push_count == 0 else TaskStatus.IN_PROGRESS
    if count == 0:
        status = TaskStatus.COMPLETED
    store.record_push(conn, task.task_id, epoch=epoch, remaining=count, status=status.value)
    log.info("%s holds %d elements after push #%d", task.task_id, count, task.push_count + 1)
    return count
