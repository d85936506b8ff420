"""Task lifecycle after dispatch: status sync, failures into retries (or Dead), lost-set recovery.

These steps observe the live state of Redis, so unlike planning they are not bound to a
window: any run, scheduled or backfill, brings every open task up to date, and running
them twice in a row changes nothing the second time.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

from crawlops import queue, store
from crawlops.db import batched, named_lock
from crawlops.dispatch import DISPATCH_LOCK, publish
from crawlops.model import Element, TaskStatus, element_digest, fail_key
from crawlops.settings import Settings

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DeadTask:
    task_id: str
    root_task_id: str
    retry_count: int
    failed_elements: int


def _open_tasks(conn: Any) -> list[store.TaskRow]:
    return store.select_tasks(
        conn,
        "task_status IN (%s, %s) AND pushed_at IS NOT NULL",
        (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value),
    )


@dataclasses.dataclass
class OpenTasks:
    """Open tasks as the sync left them, with their queue and fail-set sizes."""

    tasks: list[store.TaskRow]
    queued: dict[str, int]
    failed: dict[str, int]
    moved: dict[str, int]
    lost: list[str]


def sync_statuses(conn: Any, r: Any, settings: Settings) -> dict[str, Any]:
    """Move open tasks along from what their Redis sets show.

    Set still holds members: ``In Progress`` once any were taken (else ``Pending``).
    Set gone in the same Redis epoch: drained by workers, so ``Completed``, or ``Failed``
    when the fail set has members. Set gone in another epoch: lost, left for reconcile.
    """
    outcome = sync_open_tasks(conn, r, settings)
    return {"open": len(outcome.tasks) + sum(outcome.moved.get(s, 0) for s in ("Completed", "Failed")),
            "moved": outcome.moved, "lost": outcome.lost}  # fmt: skip


def sync_open_tasks(conn: Any, r: Any, settings: Settings, *, write: bool = True) -> OpenTasks:
    """The sync itself; returns the tasks still open afterwards (``write=False``: judge, change nothing)."""
    lock = named_lock(conn, DISPATCH_LOCK, settings.dispatch.lock_timeout_seconds) if write else nullcontext()
    with lock:
        epoch = queue.current_epoch(r, create=False)
        tasks = _open_tasks(conn)
        sizes = queue.set_sizes(r, [k for t in tasks for k in (t.task_id, fail_key(t.task_id))])
        moved: dict[str, int] = {}
        lost: list[str] = []
        still_open: list[store.TaskRow] = []
        now = None
        with conn.cursor() as cur:
            for task, remaining, failed in zip(tasks, sizes[::2], sizes[1::2], strict=True):
                if remaining == 0 and task.redis_epoch != epoch:
                    lost.append(task.task_id)
                    still_open.append(task)
                    continue
                if remaining > 0:
                    taken = remaining < task.element_count or failed > 0
                    status = (
                        TaskStatus.IN_PROGRESS
                        if taken or task.task_status == TaskStatus.IN_PROGRESS
                        else (TaskStatus.PENDING)
                    )
                else:
                    status = TaskStatus.FAILED if failed else TaskStatus.COMPLETED
                unchanged = (status.value, remaining, failed) == (
                    task.task_status,
                    task.remaining_count,
                    task.failed_count,
                )
                progressed = task.remaining_count is None or remaining < task.remaining_count
                if not unchanged and write:
                    cur.execute(
                        "UPDATE amazon_task_information SET task_status = %s, remaining_count = %s, "
                        "failed_count = %s, progress_at = IF(%s, UTC_TIMESTAMP(), progress_at), "
                        "started_at = COALESCE(started_at, IF(%s, UTC_TIMESTAMP(), NULL)), "
                        "finished_at = IF(%s, UTC_TIMESTAMP(), NULL) WHERE task_id = %s",
                        (
                            status.value,
                            remaining,
                            failed,
                            progressed,
                            status != TaskStatus.PENDING,
                            status in (TaskStatus.COMPLETED, TaskStatus.FAILED),
                            task.task_id,
                        ),
                    )
                if status.value != task.task_status:
                    moved[status.value] = moved.get(status.value, 0) + 1
                if status in (TaskStatus.COMPLETED, TaskStatus.FAILED):
                    continue
                times = {}
                if progressed and not unchanged and write:
                    now = now or _db_now(conn)
                    times = {"progress_at": now, "started_at": task.started_at or now}
                still_open.append(
                    dataclasses.replace(
                        task, task_status=status.value, remaining_count=remaining, failed_count=failed, **times
                    )
                )
        if write:
            conn.commit()
            late = _record_late_members(
                conn, r, settings, [t for t in still_open if t.task_source and t.task_id not in lost]
            )
            if late:
                log.info("recorded late failures in retry manifests: %s", late)
    if lost:
        log.warning("%d open tasks lost their Redis set (epoch changed): %s", len(lost), lost[:20])
    log.info("synced %d open tasks; status changes %s", len(tasks), moved)
    size_of = dict(zip([k for t in tasks for k in (t.task_id, fail_key(t.task_id))], sizes, strict=True))
    return OpenTasks(
        tasks=still_open,
        queued={t.task_id: size_of[t.task_id] for t in still_open},
        failed={t.task_id: size_of[fail_key(t.task_id)] for t in still_open},
        moved=moved,
        lost=lost,
    )


def _db_now(conn: Any) -> Any:
    with conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP()")
        return cur.fetchone()[0]


def _record_late_members(conn: Any, r: Any, settings: Settings, retry_tasks: list[store.TaskRow]) -> dict[str, int]:
    """Workers may report a failure into a retry task's set after it was recorded: add such
    members to its manifest, so the ledger still holds every element Redis holds."""
    added = {}
    for task in retry_tasks:
        members = list(queue.members(r, task.task_id, settings.dispatch.redis_batch_size))
        count = store.add_to_manifest(conn, task.task_id, members, batch_size=settings.dispatch.mysql_batch_size)
        if count:
            added[task.task_id] = count
    return added


def _failed_elements(r: Any, key: str, batch_size: int) -> Iterator[Element]:
    return (store.element_from_text(text, origin=key) for text in queue.members(r, key, batch_size))


def retry_failures(
    conn: Any, r: Any, settings: Settings, *, on_dead: Callable[[list[DeadTask]], None] | None = None
) -> dict[str, Any]:
    """Turn each task's ``<task_id>_fail`` set into a retry task, or mark the task Dead.

    A retry task takes the fail set's name, so its elements are already where workers
    look; it carries ``retry_count + 1``. A task already retried ``retry_limit`` times
    becomes ``Dead``: its fail set is kept for inspection with a TTL, and ``on_dead``
    receives the dead tasks (the alerting hook).
    """
    limits = settings.dispatch
    created: dict[str, int] = {}
    dead: list[DeadTask] = []
    with named_lock(conn, DISPATCH_LOCK, limits.lock_timeout_seconds):
        epoch = queue.current_epoch(r, create=True)
        # Failed tasks not yet retried, plus recently completed ones: a worker may report a
        # failure just after the set drained.
        candidates = store.select_tasks(
            conn,
            "(task_status = %s OR (task_status = %s AND finished_at >= UTC_TIMESTAMP() - INTERVAL %s SECOND)) "
            "AND NOT EXISTS (SELECT 1 FROM amazon_task_information r "
            "WHERE r.task_id = CONCAT(amazon_task_information.task_id, %s))",
            (TaskStatus.FAILED.value, TaskStatus.COMPLETED.value, limits.late_failure_window_seconds, "_fail"),
        )
        sizes = queue.set_sizes(r, [fail_key(t.task_id) for t in candidates])
        for task, failed in zip(candidates, sizes, strict=True):
            if failed:
                _convert_fail_set(conn, r, settings, task, failed, epoch=epoch, created=created, dead=dead)
    if dead and on_dead is not None:
        on_dead(dead)
    return {"retries": created, "dead": [dataclasses.asdict(d) for d in dead]}


def _convert_fail_set(
    conn: Any,
    r: Any,
    settings: Settings,
    task: store.TaskRow,
    failed: int,
    *,
    epoch: str,
    created: dict[str, int],
    dead: list[DeadTask],
) -> None:
    """The fail set of ``task`` becomes its retry task, or the task is Dead when its budget is spent."""
    limits = settings.dispatch
    if task.retry_count >= limits.retry_limit:
        dead.append(_retire(conn, r, settings, task, failed))
        return
    count = store.record_retry_task(
        conn,
        task,
        _failed_elements(r, fail_key(task.task_id), limits.redis_batch_size),
        epoch=epoch,
        batch_size=limits.mysql_batch_size,
    )
    _mark_failed(conn, task, failed)
    if count is not None:
        created[fail_key(task.task_id)] = count
        log.info(
            "retry task %s created with %d elements (retry %d)", fail_key(task.task_id), count, task.retry_count + 1
        )


def hand_to_retry(
    conn: Any, r: Any, settings: Settings, task_ids: list[str], *, reason: str, dry_run: bool = False
) -> dict[str, Any]:
    """Close tasks and send every element of theirs without results to the retry path.

    Used by supervision for timed-out tasks (their queue is withdrawn from the workers) and
    for finished tasks with missing elements. The elements go to ``<task_id>_fail`` and the
    usual conversion follows: a retry task of exactly those elements, or Dead when the
    retry budget is spent. Returns what was (or, with ``dry_run``, would be) handed over.
    """
    handed: dict[str, int] = {}
    created: dict[str, int] = {}
    dead: list[DeadTask] = []
    with named_lock(conn, DISPATCH_LOCK, settings.dispatch.lock_timeout_seconds):
        epoch = queue.current_epoch(r, create=True)
        for task in store.select_tasks(conn, "task_id IN (" + ", ".join(["%s"] * len(task_ids)) + ")", task_ids):
            if task.task_status == TaskStatus.DEAD.value or store.select_tasks(
                conn, "task_id = %s", (fail_key(task.task_id),)
            ):
                continue  # already retired or already retried
            elements = [
                m
                for batch in store.stream_elements(
                    conn, task, batch_size=settings.dispatch.redis_batch_size, exclude_done=True
                )
                for m in batch
            ]
            handed[task.task_id] = len(elements)
            if dry_run or not elements:
                continue
            r.delete(task.task_id)  # withdraw what is still queued: it goes to the retry instead
            for batch in batched(elements, settings.dispatch.redis_batch_size):
                r.sadd(fail_key(task.task_id), *batch)
            with conn.cursor() as cur:
                cur.execute(
                    "UPDATE amazon_task_information SET last_error = %s, remaining_count = 0 WHERE task_id = %s",
                    (reason[:1000], task.task_id),
                )
            conn.commit()
            failed = queue.set_sizes(r, [fail_key(task.task_id)])[0]
            _convert_fail_set(conn, r, settings, task, failed, epoch=epoch, created=created, dead=dead)
    return {"handed": handed, "retries": created, "dead": [dataclasses.asdict(d) for d in dead]}


def _mark_failed(conn: Any, task: store.TaskRow, failed: int) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_task_information SET task_status = %s, failed_count = %s, "
            "finished_at = COALESCE(finished_at, UTC_TIMESTAMP()) WHERE task_id = %s",
            (TaskStatus.FAILED.value, failed, task.task_id),
        )
    conn.commit()


def _retire(conn: Any, r: Any, settings: Settings, task: store.TaskRow, failed: int) -> DeadTask:
    reason = f"retry budget spent: {failed} elements still failing after {task.retry_count} retries"
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_task_information SET task_status = %s, failed_count = %s, last_error = %s, "
            "finished_at = COALESCE(finished_at, UTC_TIMESTAMP()) WHERE task_id = %s",
            (TaskStatus.DEAD.value, failed, reason, task.task_id),
        )
    conn.commit()
    r.expire(fail_key(task.task_id), settings.dispatch.dead_fail_set_ttl_seconds)
    log.error("task %s is Dead: %s", task.task_id, reason)
    return DeadTask(task.task_id, task.root_task_id, task.retry_count, failed)


def reconcile_lost(conn: Any, r: Any, settings: Settings) -> dict[str, Any]:
    """Re-publish tasks whose Redis set was lost, minus elements that are done or retried.

    A task is a candidate when its recorded epoch is not the current one (Redis was
    flushed or restarted since the push) or it was recorded but never pushed. Elements
    with result rows anywhere in the task's retry chain, waiting in its fail set, or
    handed to a retry task are not pushed again. A Failed task that already has a retry
    task gives the retry its failures that no manifest recorded (reported late, then lost
    with Redis). Parents go before their retries, so a retry is published with them.
    """
    repushed: dict[str, int] = {}
    adopted: dict[str, int] = {}
    with named_lock(conn, DISPATCH_LOCK, settings.dispatch.lock_timeout_seconds):
        epoch = queue.current_epoch(r, create=True)
        candidates = store.select_tasks(
            conn,
            "(redis_epoch IS NULL OR redis_epoch <> %s) AND task_status IN (%s, %s, %s)",
            (epoch, TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value, TaskStatus.FAILED.value),
        )
        candidates.sort(key=lambda t: (len(t.task_id), t.task_id))
        retried = {t.task_id for t in store.select_tasks(conn, "task_source IS NOT NULL")}
        failed_sizes = queue.set_sizes(r, [fail_key(t.task_id) for t in candidates])
        for task, failed in zip(candidates, failed_sizes, strict=True):
            if task.task_status == TaskStatus.FAILED.value:
                if fail_key(task.task_id) in retried:
                    adopted[fail_key(task.task_id)] = _give_orphans_to_retry(conn, settings, task, epoch)
                # Otherwise its failures still wait in Redis and the retry step takes them;
                # with no fail set either, it is re-published below like an open task.
                if fail_key(task.task_id) in retried or failed:
                    continue
            waiting = _fail_set_digests(r, fail_key(task.task_id), settings) if failed else set()
            repushed[task.task_id] = publish(conn, r, settings, task, epoch=epoch, exclude_done=True, skip=waiting)
    if repushed:
        log.warning("re-published tasks whose Redis set was lost or never pushed: %s", repushed)
    return {"epoch": epoch, "repushed": repushed, "orphans": adopted, "redis": queue.server_facts(r)}


def _give_orphans_to_retry(conn: Any, settings: Settings, task: store.TaskRow, epoch: str) -> int:
    """Elements of a retried task with no results and in no retry's manifest join its retry task."""
    orphans = [
        m
        for batch in store.stream_elements(conn, task, batch_size=settings.dispatch.redis_batch_size, exclude_done=True)
        for m in batch
    ]
    added = store.add_to_manifest(conn, fail_key(task.task_id), orphans, batch_size=settings.dispatch.mysql_batch_size)
    with conn.cursor() as cur:
        cur.execute("UPDATE amazon_task_information SET redis_epoch = %s WHERE task_id = %s", (epoch, task.task_id))
    conn.commit()
    if added:
        log.warning(
            "%s: %d failures no manifest recorded were given to %s", task.task_id, added, fail_key(task.task_id)
        )
    return added


def _fail_set_digests(r: Any, key: str, settings: Settings) -> set[bytes]:
    return {element_digest(m) for m in queue.members(r, key, settings.dispatch.redis_batch_size)}
