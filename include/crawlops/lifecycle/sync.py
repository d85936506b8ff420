"""Status sync: open tasks moved along from what their Redis sets show."""

from __future__ import annotations

import logging
from typing import Any

from crawlops import queue, store
from crawlops.db import Connection
from crawlops.lifecycle.common import db_now, ingest_empty, reject_members, tracking_lock
from crawlops.lifecycle.outcomes import OpenTasks, Rejected, Tracking
from crawlops.model import TaskStatus
from crawlops.names import DISPATCH_DAG
from crawlops.queue import RedisClient
from crawlops.settings import Settings

log = logging.getLogger(__name__)


def sync_statuses(conn: Connection, r: RedisClient, settings: Settings) -> dict[str, Any]:
    """Move open tasks along from what their Redis sets show.

    Set still holds members: ``In Progress`` once any were taken (else ``Pending``).
    Set gone in the same Redis epoch: drained by workers, so ``Completed``, or ``Failed``
    when the fail set has members. Set gone in another epoch: lost, left for reconcile.
    """
    outcome = sync_open_tasks(conn, r, settings)
    tracking = Tracking(open=outcome, rejected=outcome.rejected)
    return {"open": len(outcome.tasks) + sum(outcome.moved.get(s, 0) for s in ("Completed", "Failed")),
            "moved": outcome.moved, "lost": outcome.lost, "emptied": outcome.emptied,
            "findings": [f.to_json() for f in tracking.findings(DISPATCH_DAG)]}  # fmt: skip


def sync_open_tasks(conn: Connection, r: RedisClient, settings: Settings, *, write: bool = True) -> OpenTasks:
    """The sync itself; returns the tasks still open afterwards (``write=False``: judge, change nothing)."""
    with tracking_lock(conn, settings, write):
        return sync_locked(conn, r, settings, epoch=queue.current_epoch(r, create=False), write=write)


_PENDING, _IN_PROGRESS = TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value
_COMPLETED, _FAILED = TaskStatus.COMPLETED.value, TaskStatus.FAILED.value
_FINISHED = (_COMPLETED, _FAILED)


def sync_locked(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    *,
    epoch: str | None,
    write: bool,
    open_rows: list[store.OpenTask] | None = None,
) -> OpenTasks:
    """``sync_open_tasks`` under a lock the caller holds, against the Redis epoch it read
    (``open_rows``: the open tasks the caller read under that lock, else read here)."""
    rows = store.select_open_tasks(conn) if open_rows is None else open_rows
    tasks = [t for t in rows if t.pushed_at is not None]  # never pushed: reconcile's, it has no set to judge
    sizes = queue.task_set_sizes(r, [t.task_id for t in tasks])
    moved: dict[str, int] = {}
    lost: list[str] = []
    emptied: dict[str, int] = {}
    rejected: list[Rejected] = []
    still_open: list[store.OpenTask] = []
    queued: dict[str, int] = {}
    failed_waiting: dict[str, int] = {}
    changes: list[store.StatusChange] = []
    now = None
    for task, remaining, failed, empty in zip(tasks, sizes[::3], sizes[1::3], sizes[2::3], strict=True):
        kept = task  # as it stays open: the row as read, or as this sync changed it
        if remaining == 0 and task.redis_epoch != epoch:
            lost.append(task.task_id)
        else:
            if empty and write:
                emptied[task.task_id] = ingest_empty(conn, r, settings, task.task_id, rejected)
            status = _status(task, remaining, failed, empty)
            unchanged = status == task.task_status and remaining == task.remaining_count and failed == task.failed_count
            progressed = task.remaining_count is None or remaining < task.remaining_count
            if not unchanged and write:
                changes.append(store.StatusChange(task.task_id, status, remaining, failed, progressed))
            if status != task.task_status:
                moved[status] = moved.get(status, 0) + 1
            if status in _FINISHED:
                continue
            if not unchanged:  # an unchanged row is left as read
                times = {}
                if progressed and write:
                    now = now or db_now(conn)
                    times = {"progress_at": now, "started_at": task.started_at or now}
                kept = task._replace(task_status=status, remaining_count=remaining, failed_count=failed, **times)
        still_open.append(kept)
        queued[task.task_id], failed_waiting[task.task_id] = remaining, failed
    if write:
        _write_sync(conn, r, settings, changes, still_open, lost=lost, rejected=rejected)
    if lost:
        log.warning("%d open tasks lost their Redis set (epoch changed): %s", len(lost), lost[:20])
    log.info("synced %d open tasks; status changes %s; empty answers %s", len(tasks), moved, emptied)
    return OpenTasks(
        tasks=still_open,
        queued=queued,
        failed=failed_waiting,
        moved=moved,
        lost=lost,
        emptied=emptied,
        rejected=rejected,
    )


def _status(task: store.OpenTask, remaining: int, failed: int, empty: int) -> str:
    """What a pushed task's sets say of it: members left and some taken (or answered):
    ``In Progress``, none taken: ``Pending``; drained: ``Failed`` with failures, else ``Completed``."""
    if remaining > 0:
        taken = remaining < task.element_count or failed > 0 or empty > 0
        return _IN_PROGRESS if taken or task.task_status == _IN_PROGRESS else _PENDING
    return _FAILED if failed else _COMPLETED


def _write_sync(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    changes: list[store.StatusChange],
    still_open: list[store.OpenTask],
    *,
    lost: list[str],
    rejected: list[Rejected],
) -> None:
    """Write what a sync decided: the status changes, late failures into the manifests of
    retry tasks whose set is not lost, and the open-task index made to hold exactly the tasks
    still open (lost ones too: reconcile re-pushes them)."""
    store.record_statuses(conn, changes)
    conn.commit()
    retries = [t for t in still_open if t.task_source and t.task_id not in lost]
    late = _record_late_members(conn, r, settings, retries, rejected)
    if late:
        log.info("recorded late failures in retry manifests: %s", late)
    changed = queue.rebuild_open_index(r, {t.task_id: t.priority for t in still_open})
    if any(changed.values()):
        log.info("open-task index %s: %s", queue.OPEN_INDEX, changed)


def _record_late_members(
    conn: Connection, r: RedisClient, settings: Settings, retry_tasks: list[store.OpenTask], rejected: list[Rejected]
) -> dict[str, int]:
    """Workers may report a failure into a retry task's set after it was recorded: add such
    members to its manifest, so the ledger still holds every element Redis holds. Members
    that are not elements of the source task are removed instead."""
    added = {}
    batch = settings.dispatch.mysql_batch_size
    for task in retry_tasks:
        members = list(queue.members(r, task.task_id, settings.dispatch.redis_batch_size))
        known, unknown = store.split_known(conn, task.task_source or task.task_id, members, batch_size=batch)
        # elements of earlier tasks of the chain that joined this open task are in its own manifest
        reject_members(r, task.task_id, store.split_known(conn, task.task_id, unknown, batch_size=batch)[1], rejected)
        count = store.add_to_manifest(conn, task.task_id, known, batch_size=settings.dispatch.mysql_batch_size)
        if count:
            added[task.task_id] = count
    return added
