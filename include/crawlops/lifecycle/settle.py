"""Settling: each finished task judged once; its unanswered elements go down its retry chain, or it is Dead."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from crawlops import queue, store, telemetry
from crawlops.db import Connection
from crawlops.findings import reason_summary
from crawlops.lifecycle.common import OPEN, db_now, ingest_empty, naive_utc, reject_members, tracking_lock
from crawlops.lifecycle.outcomes import EXAMPLES, DeadTask, Handed, Settled, Tracking
from crawlops.model import Element, TaskStatus, empty_key, fail_key
from crawlops.names import DISPATCH_DAG, SUPERVISION_DAG
from crawlops.queue import RedisClient
from crawlops.reasons import Reason
from crawlops.settings import Settings

log = logging.getLogger(__name__)


def settle_finished(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    on_dead: Callable[[list[DeadTask]], None] | None = None,
) -> Tracking:
    """Judge every finished task not yet settled (``now``: the time the grace counts from;
    default the database's clock)."""
    with tracking_lock(conn, settings, not dry_run):
        epoch = queue.current_epoch(r, create=not dry_run)
        tracking = settle_finished_locked(conn, r, settings, epoch=epoch, now=now, dry_run=dry_run)
    if tracking.dead and on_dead is not None and not dry_run:
        on_dead(tracking.dead)
    return tracking


def settle_finished_locked(
    conn: Connection, r: RedisClient, settings: Settings, *, epoch: str | None, now: dt.datetime | None, dry_run: bool
) -> Tracking:
    """``settle_finished`` under a lock the caller holds, against the Redis epoch it read."""
    tracking = Tracking(dry_run=dry_run)
    now = naive_utc(now) if now is not None else db_now(conn)
    tasks = store.select_tasks(
        conn,
        "settled_at IS NULL AND task_status IN (%s, %s)",
        (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value),
    )
    for task in sorted(tasks, key=lambda t: (len(t.task_id), t.task_id)):
        _settle(conn, r, settings, task, tracking, epoch=epoch, now=now, force_reason=None)
    if not dry_run:
        _ingest_late_empties(conn, r, settings, now, tracking)
    return tracking


def _ingest_late_empties(
    conn: Connection, r: RedisClient, settings: Settings, now: dt.datetime, tracking: Tracking
) -> None:
    """Empty answers reported after a task settled (within ``late_failure_window_seconds``)
    are still recorded, so the answer counts and the set does not linger in Redis."""
    recent = store.select_tasks(
        conn,
        "settled_at >= %s AND settled_at <= %s",
        (now - dt.timedelta(seconds=settings.dispatch.late_failure_window_seconds), now),
    )
    sizes = queue.set_sizes(r, [empty_key(t.task_id) for t in recent])
    for task, size in zip(recent, sizes, strict=True):
        if size:
            marked = ingest_empty(conn, r, settings, task.task_id, tracking.rejected)
            log.info("%s: %d empty answers reported after it settled recorded", task.task_id, marked)


def retry_failures(conn: Connection, r: RedisClient, settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """The dispatch DAG's step: settle finished tasks (their failures and lost elements become
    retry tasks, or the task is Dead); a JSON summary with the run's findings."""
    tracking = settle_finished(conn, r, settings, **kwargs)
    return {**tracking.settle_summary(), "findings": [f.to_json() for f in tracking.findings(DISPATCH_DAG)]}


def _settle(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    task: store.TaskRow,
    tracking: Tracking,
    *,
    epoch: str | None,
    now: dt.datetime,
    force_reason: str | None,
) -> None:
    """Settle one task: its unanswered elements go down its retry chain (or it is Dead).

    Unanswered = manifest elements with no result rows and no empty answer anywhere in the
    retry chain, and not already in one of its retry tasks. Those not in the fail set were
    lost (taken and never answered): a task with lost elements waits out the grace period
    after it finished, since a worker may still be crawling them; ``force_reason`` (a
    timeout) settles at once. Where they go is ``hand_over``'s rule: the retry task
    ``<task_id>_fail`` as a rule; when that exists already (a re-crawl created it), they
    join the chain's open task or a retry of its last task, the same budget either way.
    """
    limits = settings.dispatch
    batch = limits.redis_batch_size
    write = not tracking.dry_run
    if write and queue.set_sizes(r, [empty_key(task.task_id)])[0]:
        ingest_empty(conn, r, settings, task.task_id, tracking.rejected)
    fkey = fail_key(task.task_id)
    has_retry, fail_members, reported = _read_fail_set(conn, r, settings, task, tracking, write=write)
    unanswered = [e for part in store.stream_elements(conn, task, batch_size=batch, exclude_done=True, fields=True)
                  for e in part]  # fmt: skip
    failed_texts = set(reported)
    lost = [e for e in unanswered if e.text not in failed_texts]
    # Still queued (a timed-out task): never taken, so not lost; withdrawn with the queue.
    withdrawn = min(queue.set_sizes(r, [task.task_id])[0], len(lost)) if force_reason else 0
    finished = task.finished_at or now
    grace = dt.timedelta(seconds=settings.health.completeness_grace_seconds)
    if lost and force_reason is None and finished > now - grace:
        tracking.waiting[task.task_id] = len(lost)
        return
    unanswered_texts = {e.text for e in unanswered}
    failed = len(unanswered) - len(lost)
    taken_lost = len(lost) - withdrawn
    why = _failure_reasons(r, task.task_id, unanswered, {e.text for e in lost})
    counts = Counter(reason for reason, _ in why.values())
    reason = force_reason or (
        f"{failed} elements failed, {taken_lost} taken and never answered" if lost else f"{failed} elements failed"
    ) + reason_summary(dict(counts))
    examples = _examples(unanswered, why)
    if write and not has_retry:
        # The fail set becomes exactly the unanswered elements: what was answered since it
        # was reported leaves it (what was lost joins it in hand_over).
        queue.remove_members(r, fkey, [m for m in reported if m not in unanswered_texts], batch)
    handed = (
        hand_over(conn, r, settings, task, unanswered, epoch=epoch, write=write, closing=True) if unanswered else None
    )
    if handed is None:
        status = TaskStatus.COMPLETED
    elif handed.how == "budget_spent":
        status = TaskStatus.DEAD
        reason = f"retry budget spent: {len(unanswered)} elements unanswered after {task.retry_count} retries"
        reason += reason_summary(dict(counts))
    else:
        status = TaskStatus.FAILED
    outcome = Settled(
        task.task_id, task.task_type, status.value, task.element_count, task.element_count - len(unanswered),
        store.empty_count(conn, task.task_id), failed, taken_lost, withdrawn, handed.retry_task if handed else None,
        reason if unanswered else "", dict(counts), examples,
    )  # fmt: skip
    _note(tracking, task, outcome, handed)
    if write:
        _retire(conn, r, settings, task, outcome=outcome, why=why, has_retry=has_retry, reported=bool(fail_members),
                now=now)  # fmt: skip


def _read_fail_set(
    conn: Connection, r: RedisClient, settings: Settings, task: store.TaskRow, tracking: Tracking, *, write: bool
) -> tuple[bool, list[str], list[str]]:
    """(whether the task's retry task exists, its fail set's members, those that are elements of
    the task). Members that are not are rejected, unless the retry task exists: then the fail
    set is that task's queue, and members from elsewhere in the chain belong there."""
    limits = settings.dispatch
    fkey = fail_key(task.task_id)
    has_retry = bool(store.select_tasks(conn, "task_id = %s", (fkey,)))
    fail_members = list(queue.members(r, fkey, limits.redis_batch_size))
    reported, unknown = store.split_known(conn, task.task_id, fail_members, batch_size=limits.mysql_batch_size)
    if write and not has_retry:
        reject_members(r, fkey, unknown, tracking.rejected)
    return has_retry, fail_members, reported


def _note(tracking: Tracking, task: store.TaskRow, outcome: Settled, handed: Handed | None) -> None:
    """What a pass settled: the outcome, a Dead task, the retries made."""
    tracking.settled.append(outcome)
    if outcome.status == TaskStatus.DEAD.value:
        unanswered = outcome.elements - outcome.answered
        tracking.dead.append(
            DeadTask(task.task_id, task.root_task_id, task.retry_count, unanswered, outcome.reasons, outcome.examples)
        )
    if handed and handed.retry_task:
        tracking.retries[handed.retry_task] = tracking.retries.get(handed.retry_task, 0) + handed.count


def _retire(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    task: store.TaskRow,
    *,
    outcome: Settled,
    why: dict[str, tuple[str, str]],
    has_retry: bool,
    reported: bool,
    now: dt.datetime,
) -> None:
    """Write what settling decided: each unanswered element's reason on the manifest, the
    task's queue withdrawn and its row settled; a Dead task's fail set kept for inspection
    (unless it is a retry task's queue), one whose failures were all answered after all dropped."""
    limits = settings.dispatch
    by_reason: dict[str, list[str]] = {}
    for text, (cause, _) in why.items():
        by_reason.setdefault(cause, []).append(text)
    store.mark_fail_reasons(conn, task.task_id, by_reason, batch_size=limits.mysql_batch_size)
    telemetry.forget_reasons(r, task.task_id)
    r.delete(task.task_id)  # anything still queued is withdrawn
    queue.index_closed(r, [task.task_id])
    fkey = fail_key(task.task_id)
    if outcome.status == TaskStatus.DEAD.value:
        if not has_retry:
            r.expire(fkey, limits.dead_fail_set_ttl_seconds)
        log.error("task %s is Dead: %s", task.task_id, outcome.reason)
    elif outcome.status == TaskStatus.COMPLETED.value and reported and not has_retry:
        r.delete(fkey)  # every reported failure was answered after all
    store.record_settlement(
        conn, task.task_id, status=outcome.status, failed=outcome.failed, answered=outcome.answered,
        empty=outcome.empty, lost=outcome.lost, settled_at=now, last_error=outcome.reason or None,
    )  # fmt: skip


def _failure_reasons(
    r: RedisClient, task_id: str, unanswered: list[Element], lost: set[str]
) -> dict[str, tuple[str, str]]:
    """Element text -> (reason class, detail) of each unanswered element: as its worker reported
    it (``unknown`` when it reported none), ``lost`` when it was taken and never answered."""
    reported = telemetry.fail_reasons(r, task_id)
    return {
        e.text: (Reason.LOST.value, "taken by a worker and never answered")
        if e.text in lost
        else reported.get(e.text, (Reason.UNKNOWN.value, ""))
        for e in unanswered
    }


def _examples(unanswered: list[Element], why: dict[str, tuple[str, str]]) -> list[dict[str, str]]:
    """A few unanswered elements with their reasons, one of each reason first."""
    first: dict[str, Element] = {}
    for e in unanswered:
        first.setdefault(why[e.text][0], e)
    picked = list(first.values())[:EXAMPLES]
    picked += [e for e in unanswered if e not in picked][: EXAMPLES - len(picked)]
    return [{"element": e.text, "reason": why[e.text][0], "detail": why[e.text][1]} for e in picked]


def _chain_tail(conn: Connection, task: store.TaskRow) -> store.TaskRow:
    """The last task of the retry chain from ``task`` on (``task`` itself when it has no retry)."""
    tail = task
    while found := store.select_tasks(conn, "task_id = %s", (fail_key(tail.task_id),)):
        tail = found[0]
    return tail


def hand_over(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    task: store.TaskRow,
    elements: list[Element],
    *,
    epoch: str | None,
    write: bool,
    closing: bool,
) -> Handed:
    """Send elements of ``task`` for another crawl down its retry chain: one retry chain,
    one budget, whatever asked for the crawl (a fail set, lost elements, rows lacking a
    required field).

    The chain's last task still open: they join it (its manifest and its Redis set). Else,
    within budget (the last task has had fewer than ``retry_limit`` retries): they become
    its retry task ``<last>_fail``. Else the budget is spent (the caller decides: an
    unanswered element makes its task Dead). ``closing``: ``task`` is being settled, so it
    is no task to join, even while its row still reads open (a timeout).
    """
    limits = settings.dispatch
    texts = [e.text for e in elements]
    tail = _chain_tail(conn, task)
    if tail.settled_at is None and tail.task_status in OPEN and not (closing and tail is task):
        if write:
            store.add_to_manifest(conn, tail.task_id, elements, batch_size=limits.mysql_batch_size)
            queue.add_members(r, tail.task_id, texts, limits.redis_batch_size)
            queue.index_open(r, [tail.task_id], {tail.task_id: tail.priority})
            log.info("%d elements of %s joined the open task %s of its chain", len(texts), task.task_id, tail.task_id)
        return Handed(task.task_id, tail.task_id, len(texts), "joined")
    limit = limits.retry_limit if tail.retry_limit is None else tail.retry_limit  # a re-drive's own budget
    if tail.task_status == TaskStatus.DEAD.value or tail.retry_count >= limit:
        return Handed(task.task_id, None, len(texts), "budget_spent")
    retry_id = fail_key(tail.task_id)
    count = len(texts)
    if write:
        queue.add_members(r, retry_id, texts, limits.redis_batch_size)  # the retry's queue is <last>_fail
        count = (
            store.record_retry_task(conn, tail, elements, epoch=epoch or "", batch_size=limits.mysql_batch_size) or 0
        )
        queue.index_open(r, [retry_id], {retry_id: tail.priority})
        log.info("retry task %s created with %d elements of %s (retry %d)", retry_id, count, task.task_id,
                 tail.retry_count + 1)  # fmt: skip
    return Handed(task.task_id, retry_id, count, "created")


def hand_to_retry(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    task_ids: list[str],
    *,
    reason: str,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Close open tasks at once (timed out): their queue is withdrawn from the workers and
    every unanswered element goes to the retry path (a retry task, or Dead when the budget
    is spent). Returns what was (or, with ``dry_run``, would be) handed over."""
    tracking = Tracking(dry_run=dry_run)
    with tracking_lock(conn, settings, not dry_run):
        epoch = queue.current_epoch(r, create=not dry_run)
        now = naive_utc(now) if now is not None else db_now(conn)
        marks = ", ".join(["%s"] * len(task_ids))
        for task in store.select_tasks(conn, f"task_id IN ({marks}) AND settled_at IS NULL", task_ids):
            if task.task_status == TaskStatus.DEAD.value:
                continue
            _settle(conn, r, settings, task, tracking, epoch=epoch, now=now, force_reason=reason)
    return {
        "handed": {s.task_id: s.failed + s.lost + s.withdrawn for s in tracking.settled},
        "retries": tracking.retries,
        "dead": [dataclasses.asdict(d) for d in tracking.dead],
        # Dead tasks (CRITICAL) and rejected members; the caller reports the timeout itself.
        "findings": [f.to_json() for f in tracking.findings(SUPERVISION_DAG) if f.check != "missing_data"],
    }
