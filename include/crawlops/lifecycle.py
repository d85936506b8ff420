"""Task lifecycle after dispatch: status sync, failures into retries (or Dead), lost-set recovery.

These steps observe the live state of Redis, so unlike planning they are not bound to a
window: any run, scheduled or backfill, brings every open task up to date, and running
them twice in a row changes nothing the second time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from crawlops import queue, store
from crawlops.db import named_lock
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


def sync_statuses(conn: Any, r: Any, settings: Settings) -> dict[str, Any]:
    """Move open tasks along from what their Redis sets show.

    Set still holds members: ``In Progress`` once any were taken (else ``Pending``).
    Set gone in the same Redis epoch: drained by workers, so ``Completed``, or ``Failed``
    when the fail set has members. Set gone in another epoch: lost, left for reconcile.
    """
    with named_lock(conn, DISPATCH_LOCK, settings.dispatch.lock_timeout_seconds):
        epoch = queue.current_epoch(r, create=False)
        tasks = _open_tasks(conn)
        sizes = queue.set_sizes(r, [k for t in tasks for k in (t.task_id, fail_key(t.task_id))])
        moved: dict[str, int] = {}
        lost: list[str] = []
        with conn.cursor() as cur:
            for task, remaining, failed in zip(tasks, sizes[::2], sizes[1::2], strict=True):
                if remaining == 0 and task.redis_epoch != epoch:
                    lost.append(task.task_id)
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
                if (status.value, remaining, failed) == (task.task_status, task.remaining_count, task.failed_count):
                    continue
                progressed = task.remaining_count is None or remaining < task.remaining_count
                cur.execute(
                    "UPDATE amazon_task_information SET task_status = %s, remaining_count = %s, failed_count = %s, "
                    "progress_at = IF(%s, UTC_TIMESTAMP(), progress_at), "
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
        conn.commit()
    if lost:
        log.warning("%d open tasks lost their Redis set (epoch changed): %s", len(lost), lost[:20])
    log.info("synced %d open tasks; status changes %s", len(tasks), moved)
    return {"open": len(tasks), "moved": moved, "lost": lost}


def _failed_elements(r: Any, key: str, batch_size: int) -> Iterator[Element]:
    for text in queue.members(r, key, batch_size):
        try:
            fields = json.loads(text)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            log.warning("%s holds a member that is not a JSON object; kept as is: %.80r", key, text)
            fields = {}
        page = fields.get("page")
        yield Element(
            text,
            str(fields.get("keyword", fields.get("target", ""))) or None,  # type: ignore[arg-type]
            str(fields.get("marketplace", "")) or None,  # type: ignore[arg-type]
            page if isinstance(page, int) and not isinstance(page, bool) and 0 < page < 65536 else None,
            None,
        )


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
            if failed == 0:
                continue
            if task.retry_count >= limits.retry_limit:
                dead.append(_retire(conn, r, settings, task, failed))
                continue
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
                    "retry task %s created with %d elements (retry %d)",
                    fail_key(task.task_id),
                    count,
                    task.retry_count + 1,
                )
    if dead and on_dead is not None:
        on_dead(dead)
    return {"retries": created, "dead": [dataclasses.asdict(d) for d in dead]}


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
    handed to a retry task are not pushed again.
    """
    repushed: dict[str, int] = {}
    with named_lock(conn, DISPATCH_LOCK, settings.dispatch.lock_timeout_seconds):
        epoch = queue.current_epoch(r, create=True)
        candidates = store.select_tasks(
            conn,
            "(redis_epoch IS NULL OR redis_epoch <> %s) AND (task_status IN (%s, %s) OR (task_status = %s "
            "AND NOT EXISTS (SELECT 1 FROM amazon_task_information r "
            "WHERE r.task_id = CONCAT(amazon_task_information.task_id, %s))))",
            (epoch, TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value, TaskStatus.FAILED.value, "_fail"),
        )
        sizes = queue.set_sizes(r, [k for t in candidates for k in (t.task_id, fail_key(t.task_id))])
        for task, remaining, failed in zip(candidates, sizes[::2], sizes[1::2], strict=True):
            if remaining > 0:
                # The set survived (a Redis that persists, or a removed sentinel): adopt it.
                with conn.cursor() as cur:
                    cur.execute(
                        "UPDATE amazon_task_information SET redis_epoch = %s WHERE task_id = %s", (epoch, task.task_id)
                    )
                conn.commit()
                continue
            if failed and task.task_status == TaskStatus.FAILED.value:
                continue  # its failures are still in Redis: the retry step takes them
            waiting = _fail_set_digests(r, fail_key(task.task_id), settings) if failed else set()
            repushed[task.task_id] = publish(conn, r, settings, task, epoch=epoch, exclude_done=True, skip=waiting)
    if repushed:
        log.warning("re-published lost tasks (elements pushed again): %s", repushed)
    return {"epoch": epoch, "repushed": repushed, "redis": queue.server_facts(r)}


def _fail_set_digests(r: Any, key: str, settings: Settings) -> set[bytes]:
    return {element_digest(m) for m in queue.members(r, key, settings.dispatch.redis_batch_size)}
