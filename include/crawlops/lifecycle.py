"""Task lifecycle after dispatch: status sync, settling finished tasks, lost-set recovery.

Every dispatched element ends in one of three ways: answered (result rows, or reported
empty through ``<task_id>_empty``), handed to a retry task, or in a ``Dead`` task. The
steps here make that true:

1. ``sync_open_tasks`` moves open tasks along from what their Redis sets show, ingests
   empty answers into the manifest and keeps the open-task index current.
2. ``settle_finished`` judges each finished task once: its unanswered elements (failed,
   or taken by a worker that never answered) become its retry task, or the task is Dead
   when its retry budget is spent. A task with elements still unaccounted for (in flight
   with a worker) waits until ``completeness_grace_seconds`` after it finished.
3. ``reconcile_lost`` re-publishes open tasks whose set was lost with a Redis restart.

These steps observe the live state of Redis, so unlike planning they are not bound to a
window: any run, scheduled or backfill, brings every task up to date, and running them
twice in a row changes nothing the second time. ``track`` runs all three under one lock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from crawlops import queue, store
from crawlops.alerts import Finding, Level, dead_task_findings
from crawlops.db import Connection, named_lock
from crawlops.dispatch import DISPATCH_LOCK, publish
from crawlops.model import Element, TaskStatus, element_digest, empty_key, fail_key
from crawlops.queue import RedisClient
from crawlops.settings import Settings

log = logging.getLogger(__name__)

# How many examples of a rejected member a finding carries.
_EXAMPLES = 3


@dataclasses.dataclass(frozen=True)
class DeadTask:
    task_id: str
    root_task_id: str
    retry_count: int
    failed_elements: int


@dataclasses.dataclass(frozen=True)
class Rejected:
    """Members a worker put in a ``_fail`` or ``_empty`` set that the task's manifest does not hold."""

    key: str
    count: int
    examples: list[str]


@dataclasses.dataclass(frozen=True)
class Settled:
    """How a finished (or timed-out) task's elements ended."""

    task_id: str
    task_type: str
    status: str
    elements: int
    answered: int
    empty: int
    failed: int
    lost: int
    withdrawn: int
    retry_task: str | None
    reason: str


@dataclasses.dataclass(frozen=True)
class Handed:
    """Where one task's elements that need another crawl went: ``joined`` the open task of
    its retry chain, ``created`` a retry task of the chain's last task, or ``budget_spent``
    (the chain has had ``retry_limit`` retries)."""

    task_id: str
    retry_task: str | None
    count: int
    how: str


@dataclasses.dataclass
class OpenTasks:
    """Open tasks as the sync left them, with their queue and fail-set sizes."""

    tasks: list[store.TaskRow]
    queued: dict[str, int]
    failed: dict[str, int]
    moved: dict[str, int]
    lost: list[str]
    emptied: dict[str, int] = dataclasses.field(default_factory=dict)
    rejected: list[Rejected] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Tracking:
    """What one pass of sync, settle and reconcile saw and did (``dry_run``: would do)."""

    dry_run: bool = False
    open: OpenTasks | None = None
    settled: list[Settled] = dataclasses.field(default_factory=list)
    waiting: dict[str, int] = dataclasses.field(default_factory=dict)
    retries: dict[str, int] = dataclasses.field(default_factory=dict)
    dead: list[DeadTask] = dataclasses.field(default_factory=list)
    repushed: dict[str, int] = dataclasses.field(default_factory=dict)
    lost_queues: list[str] = dataclasses.field(default_factory=list)
    rejected: list[Rejected] = dataclasses.field(default_factory=list)
    redis: dict[str, Any] = dataclasses.field(default_factory=dict)

    def merge(self, other: Tracking) -> Tracking:
        self.open = other.open or self.open
        self.settled += other.settled
        self.waiting.update(other.waiting)
        self.retries.update(other.retries)
        self.dead += other.dead
        self.repushed.update(other.repushed)
        self.lost_queues += [t for t in other.lost_queues if t not in self.lost_queues]
        self.rejected += other.rejected
        self.redis = other.redis or self.redis
        return self

    def findings(self, source: str) -> list[Finding]:
        """WARNING for lost elements, lost queues and rejected members; CRITICAL for Dead tasks."""
        verb = "would " if self.dry_run else ""
        found = []
        for s in self.settled:
            if s.lost:
                then = (
                    f"{verb}create retry task {s.retry_task}"
                    if s.retry_task
                    else "retry budget spent: task is Dead"
                    if s.status == TaskStatus.DEAD.value
                    else "no action"
                )
                found.append(
                    Finding(
                        Level.WARNING,
                        source,
                        "missing_data",
                        f"{s.task_id}: {s.lost} elements taken and never answered",
                        subject=s.task_id,
                        details=dataclasses.asdict(s),
                        action=f"{then} with its {s.lost + s.failed + s.withdrawn} unanswered elements",
                    )
                )
        for task_id in self.lost_queues:
            count = self.repushed.get(task_id, 0)
            found.append(
                Finding(
                    Level.WARNING,
                    source,
                    "queue_lost",
                    f"{task_id}: its Redis queue was lost (Redis restarted or flushed)",
                    subject=task_id,
                    details={"repushed": count, "redis": self.redis},
                    action=f"{verb}re-push {count} unanswered elements from the MySQL manifest",
                )
            )
        for rejected in self.rejected:
            found.append(
                Finding(
                    Level.WARNING,
                    source,
                    "bad_member",
                    f"{rejected.key}: {rejected.count} members that are not elements of the task",
                    subject=rejected.key,
                    details={"count": rejected.count, "examples": rejected.examples},
                    action="removed from the set; never dispatched. Check the worker that wrote them",
                )
            )
        return found + dead_task_findings([dataclasses.asdict(d) for d in self.dead], source=source)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "moved": self.open.moved if self.open else {},
            "emptied": self.open.emptied if self.open else {},
            "settled": [dataclasses.asdict(s) for s in self.settled],
            "waiting": self.waiting,
            "retries": self.retries,
            "dead": [dataclasses.asdict(d) for d in self.dead],
            "repushed": self.repushed,
            "lost_queues": self.lost_queues,
            "rejected": [dataclasses.asdict(r) for r in self.rejected],
            "redis": self.redis,
        }


def _open_tasks(conn: Connection) -> list[store.TaskRow]:
    return store.select_tasks(
        conn,
        "task_status IN (%s, %s) AND pushed_at IS NOT NULL",
        (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value),
    )


def _lock(conn: Connection, settings: Settings, write: bool) -> Any:
    return named_lock(conn, DISPATCH_LOCK, settings.dispatch.lock_timeout_seconds) if write else nullcontext()


def track(
    conn: Connection, r: RedisClient, settings: Settings, *, now: dt.datetime | None = None, dry_run: bool = False
) -> Tracking:
    """Sync, settle and reconcile in one pass under the dispatch lock (what a supervision run does)."""
    with _lock(conn, settings, not dry_run):
        synced = sync_open_tasks(conn, r, settings, write=not dry_run)
        tracking = Tracking(dry_run=dry_run, open=synced, rejected=list(synced.rejected))
        tracking.merge(settle_finished(conn, r, settings, now=now, dry_run=dry_run))
        tracking.merge(reconcile_lost(conn, r, settings, dry_run=dry_run))
    return tracking


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
            "findings": [f.to_json() for f in tracking.findings("amazon_task_dispatch")]}  # fmt: skip


def sync_open_tasks(conn: Connection, r: RedisClient, settings: Settings, *, write: bool = True) -> OpenTasks:
    """The sync itself; returns the tasks still open afterwards (``write=False``: judge, change nothing)."""
    with _lock(conn, settings, write):
        epoch = queue.current_epoch(r, create=False)
        tasks = _open_tasks(conn)
        keys = [k for t in tasks for k in (t.task_id, fail_key(t.task_id), empty_key(t.task_id))]
        sizes = queue.set_sizes(r, keys)
        moved: dict[str, int] = {}
        lost: list[str] = []
        emptied: dict[str, int] = {}
        rejected: list[Rejected] = []
        still_open: list[store.TaskRow] = []
        now = None
        for task, remaining, failed, empty in zip(tasks, sizes[::3], sizes[1::3], sizes[2::3], strict=True):
            if remaining == 0 and task.redis_epoch != epoch:
                lost.append(task.task_id)
                still_open.append(task)
                continue
            if empty and write:
                emptied[task.task_id] = _ingest_empty(conn, r, settings, task.task_id, rejected)
            if remaining > 0:
                taken = remaining < task.element_count or failed > 0 or empty > 0
                status = (
                    TaskStatus.IN_PROGRESS
                    if taken or task.task_status == TaskStatus.IN_PROGRESS
                    else (TaskStatus.PENDING)
                )
            else:
                status = TaskStatus.FAILED if failed else TaskStatus.COMPLETED
            unchanged = (status.value, remaining, failed) == (task.task_status, task.remaining_count, task.failed_count)
            progressed = task.remaining_count is None or remaining < task.remaining_count
            if not unchanged and write:
                with conn.cursor() as cur:
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
                conn, r, settings, [t for t in still_open if t.task_source and t.task_id not in lost], rejected
            )
            if late:
                log.info("recorded late failures in retry manifests: %s", late)
            changed = queue.rebuild_open_index(r, [t.task_id for t in still_open])
            if any(changed.values()):
                log.info("open-task index %s: %s", queue.OPEN_INDEX, changed)
    if lost:
        log.warning("%d open tasks lost their Redis set (epoch changed): %s", len(lost), lost[:20])
    log.info("synced %d open tasks; status changes %s; empty answers %s", len(tasks), moved, emptied)
    size_of = dict(zip(keys, sizes, strict=True))
    return OpenTasks(
        tasks=still_open,
        queued={t.task_id: size_of[t.task_id] for t in still_open},
        failed={t.task_id: size_of[fail_key(t.task_id)] for t in still_open},
        moved=moved,
        lost=lost,
        emptied=emptied,
        rejected=rejected,
    )


def _db_now(conn: Connection) -> Any:
    with conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP()")
        return cur.fetchone()[0]


def _reject(r: RedisClient, key: str, texts: list[str], rejected: list[Rejected]) -> None:
    """Take members that are not the task's elements out of ``key`` and note them (once: they are gone)."""
    if not texts:
        return
    queue.remove_members(r, key, texts)
    examples = [_printable(t)[:200] for t in texts[:_EXAMPLES]]
    rejected.append(Rejected(key, len(texts), examples))
    log.warning("%s held %d members that are not elements of its task; removed, e.g. %s", key, len(texts), examples[0])


def _printable(text: str) -> str:
    """The member as text, or the repr of its bytes when it is not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return repr(text.encode("utf-8", "surrogateescape"))
    return text


def _ingest_empty(conn: Connection, r: RedisClient, settings: Settings, task_id: str, rejected: list[Rejected]) -> int:
    """Record the members of ``<task_id>_empty`` as answered empty, then take them out of the set."""
    key = empty_key(task_id)
    batch = settings.dispatch.redis_batch_size
    members = list(queue.members(r, key, batch))
    known, unknown = store.split_known(conn, task_id, members, batch_size=settings.dispatch.mysql_batch_size)
    marked = store.mark_empty(conn, task_id, known, batch_size=settings.dispatch.mysql_batch_size)
    queue.remove_members(r, key, known, batch)  # SREM, not DEL: a worker may be adding more right now
    _reject(r, key, unknown, rejected)
    return marked


def _record_late_members(
    conn: Connection, r: RedisClient, settings: Settings, retry_tasks: list[store.TaskRow], rejected: list[Rejected]
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
        _reject(r, task.task_id, store.split_known(conn, task.task_id, unknown, batch_size=batch)[1], rejected)
        count = store.add_to_manifest(conn, task.task_id, known, batch_size=settings.dispatch.mysql_batch_size)
        if count:
            added[task.task_id] = count
    return added


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
    tracking = Tracking(dry_run=dry_run)
    with _lock(conn, settings, not dry_run):
        epoch = queue.current_epoch(r, create=not dry_run)
        now = _naive_utc(now) if now is not None else _db_now(conn)
        tasks = store.select_tasks(
            conn,
            "settled_at IS NULL AND task_status IN (%s, %s)",
            (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value),
        )
        for task in sorted(tasks, key=lambda t: (len(t.task_id), t.task_id)):
            _settle(conn, r, settings, task, tracking, epoch=epoch, now=now, force_reason=None)
        if not dry_run:
            _ingest_late_empties(conn, r, settings, now, tracking)
    if tracking.dead and on_dead is not None and not dry_run:
        on_dead(tracking.dead)
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
            marked = _ingest_empty(conn, r, settings, task.task_id, tracking.rejected)
            log.info("%s: %d empty answers reported after it settled recorded", task.task_id, marked)


def retry_failures(conn: Connection, r: RedisClient, settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """The dispatch DAG's step: settle finished tasks (their failures and lost elements become
    retry tasks, or the task is Dead); a JSON summary with the run's findings."""
    tracking = settle_finished(conn, r, settings, **kwargs)
    return {"retries": tracking.retries, "dead": [dataclasses.asdict(d) for d in tracking.dead],
            "waiting": tracking.waiting, "settled": len(tracking.settled),
            "findings": [f.to_json() for f in tracking.findings("amazon_task_dispatch")]}  # fmt: skip


def decision_time(conn: Connection, reference: dt.datetime) -> dt.datetime:
    """The time lifecycle decisions (grace periods, settled_at) count from: the later of a
    run's reference and the database clock, so a backfilled run never judges live Redis
    state as of the past."""
    return max(_naive_utc(reference), _db_now(conn))


def _naive_utc(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(dt.UTC).replace(tzinfo=None) if instant.tzinfo else instant


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
    timeout) settles at once. Where they go is ``_hand_over``'s rule: the retry task
    ``<task_id>_fail`` as a rule; when that exists already (a re-crawl created it), they
    join the chain's open task or a retry of its last task, the same budget either way.
    """
    limits = settings.dispatch
    batch = limits.redis_batch_size
    write = not tracking.dry_run
    if write and queue.set_sizes(r, [empty_key(task.task_id)])[0]:
        _ingest_empty(conn, r, settings, task.task_id, tracking.rejected)
    fkey = fail_key(task.task_id)
    # When the retry task exists, the fail set is its queue: members from elsewhere in the
    # chain belong there, so nothing is rejected or withdrawn from it.
    has_retry = bool(store.select_tasks(conn, "task_id = %s", (fkey,)))
    fail_members = list(queue.members(r, fkey, batch))
    reported, unknown = store.split_known(conn, task.task_id, fail_members, batch_size=limits.mysql_batch_size)
    if write and not has_retry:
        _reject(r, fkey, unknown, tracking.rejected)
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
    reason = force_reason or (
        f"{failed} elements failed, {taken_lost} taken and never answered" if lost else f"{failed} elements failed"
    )
    if write and not has_retry:
        # The fail set becomes exactly the unanswered elements: what was answered since it
        # was reported leaves it (what was lost joins it in _hand_over).
        queue.remove_members(r, fkey, [m for m in reported if m not in unanswered_texts], batch)
    handed = (
        _hand_over(conn, r, settings, task, unanswered, epoch=epoch, write=write, closing=True) if unanswered else None
    )
    if handed is None:
        status = TaskStatus.COMPLETED
    elif handed.how == "budget_spent":
        status = TaskStatus.DEAD
        reason = f"retry budget spent: {len(unanswered)} elements unanswered after {task.retry_count} retries"
    else:
        status = TaskStatus.FAILED
    outcome = Settled(
        task.task_id, task.task_type, status.value, task.element_count, task.element_count - len(unanswered),
        store.empty_count(conn, task.task_id), failed, taken_lost, withdrawn, handed.retry_task if handed else None,
        reason if unanswered else "",
    )  # fmt: skip
    tracking.settled.append(outcome)
    if status == TaskStatus.DEAD:
        tracking.dead.append(DeadTask(task.task_id, task.root_task_id, task.retry_count, len(unanswered)))
    if handed and handed.retry_task:
        tracking.retries[handed.retry_task] = tracking.retries.get(handed.retry_task, 0) + handed.count
    if not write:
        return
    r.delete(task.task_id)  # anything still queued is withdrawn
    queue.index_closed(r, [task.task_id])
    if status == TaskStatus.DEAD and not has_retry:
        r.expire(fkey, limits.dead_fail_set_ttl_seconds)
        log.error("task %s is Dead: %s", task.task_id, reason)
    elif status == TaskStatus.DEAD:
        log.error("task %s is Dead: %s", task.task_id, reason)
    elif status == TaskStatus.COMPLETED and fail_members and not has_retry:
        r.delete(fkey)  # every reported failure was answered after all
    store.record_settlement(
        conn, task.task_id, status=status.value, failed=failed, answered=outcome.answered, empty=outcome.empty,
        lost=taken_lost, settled_at=now, last_error=reason if unanswered else None,
    )  # fmt: skip


def _chain_tail(conn: Connection, task: store.TaskRow) -> store.TaskRow:
    """The last task of the retry chain from ``task`` on (``task`` itself when it has no retry)."""
    tail = task
    while found := store.select_tasks(conn, "task_id = %s", (fail_key(tail.task_id),)):
        tail = found[0]
    return tail


_OPEN = (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value)


def _hand_over(
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
    if tail.settled_at is None and tail.task_status in _OPEN and not (closing and tail is task):
        if write:
            store.add_to_manifest(conn, tail.task_id, elements, batch_size=limits.mysql_batch_size)
            queue.add_members(r, tail.task_id, texts, limits.redis_batch_size)
            queue.index_open(r, [tail.task_id])
            log.info("%d elements of %s joined the open task %s of its chain", len(texts), task.task_id, tail.task_id)
        return Handed(task.task_id, tail.task_id, len(texts), "joined")
    if tail.task_status == TaskStatus.DEAD.value or tail.retry_count >= limits.retry_limit:
        return Handed(task.task_id, None, len(texts), "budget_spent")
    retry_id = fail_key(tail.task_id)
    count = len(texts)
    if write:
        queue.add_members(r, retry_id, texts, limits.redis_batch_size)  # the retry's queue is <last>_fail
        count = (
            store.record_retry_task(conn, tail, elements, epoch=epoch or "", batch_size=limits.mysql_batch_size) or 0
        )
        queue.index_open(r, [retry_id])
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
    with _lock(conn, settings, not dry_run):
        epoch = queue.current_epoch(r, create=not dry_run)
        now = _naive_utc(now) if now is not None else _db_now(conn)
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
        "findings": [f.to_json() for f in tracking.findings("amazon_data_supervision") if f.check != "missing_data"],
    }


@dataclasses.dataclass
class Recrawl:
    """What one re-crawl request did (``dry_run``: would do), per task of the elements."""

    dry_run: bool = False
    handed: list[Handed] = dataclasses.field(default_factory=list)
    # elements whose chain re-crawled them already (digest -> when it was asked): not sent again
    earlier: dict[bytes, dt.datetime] = dataclasses.field(default_factory=dict)
    unknown_tasks: list[str] = dataclasses.field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(h.count for h in self.handed if h.retry_task)

    @property
    def budget_spent(self) -> int:
        return sum(h.count for h in self.handed if not h.retry_task)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "sent": self.sent,
            "retry_tasks": sorted({h.retry_task for h in self.handed if h.retry_task}),
            "handed": [dataclasses.asdict(h) for h in self.handed],
            "budget_spent": self.budget_spent,
            "sent_earlier": len(self.earlier),
            "unknown_tasks": self.unknown_tasks,
        }


def recrawl(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    elements: dict[str, list[Element]],
    *,
    dry_run: bool = False,
) -> Recrawl:
    """Crawl answered elements once more (their rows lack a field the data needs), by task id.

    Each goes down its task's retry chain like an unanswered one (``_hand_over``: the
    chain's open task, or a retry of its last task within the retry budget), and is marked
    there (``recrawl_at``), so an element is re-crawled once: one its chain re-crawled
    already is not sent again, whatever its new rows hold.
    """
    outcome = Recrawl(dry_run=dry_run)
    limits = settings.dispatch
    with _lock(conn, settings, not dry_run):
        epoch = queue.current_epoch(r, create=not dry_run)
        ids = sorted(elements)
        found = {t.task_id: t for chunk in range(0, len(ids), 1000)
                 for t in store.select_tasks(conn, "task_id IN (" + ", ".join(["%s"] * len(ids[chunk:chunk + 1000]))
                                             + ")", ids[chunk:chunk + 1000])}  # fmt: skip
        outcome.unknown_tasks = [t for t in ids if t not in found]
        for task_id in ids:
            task = found.get(task_id)
            if task is None:
                continue
            wanted = list({e.text: e for e in elements[task_id]}.values())
            done = store.recrawled(
                conn, task.root_task_id, [e.text for e in wanted], batch_size=limits.mysql_batch_size
            )
            outcome.earlier.update(done)
            fresh = [e for e in wanted if e.digest not in done]
            if not fresh:
                continue
            handed = _hand_over(conn, r, settings, task, fresh, epoch=epoch, write=not dry_run, closing=False)
            outcome.handed.append(handed)
            if handed.retry_task and not dry_run:
                store.mark_recrawled(
                    conn, handed.retry_task, [e.text for e in fresh], batch_size=limits.mysql_batch_size
                )
    if outcome.handed or outcome.earlier:
        log.info("re-crawl: %s", outcome.to_json())
    return outcome


def reconcile_lost(conn: Connection, r: RedisClient, settings: Settings, *, dry_run: bool = False) -> Tracking:
    """Re-publish open tasks whose Redis set was lost, minus elements that are done or retried.

    A task is a candidate when its recorded epoch is not the current one (Redis was
    flushed or restarted since the push) or it was recorded but never pushed. Elements
    with result rows or empty answers anywhere in the task's retry chain, waiting in its
    fail set, or handed to a retry task are not pushed again. Parents go before their
    retries, so a retry is published with them.
    """
    tracking = Tracking(dry_run=dry_run)
    with _lock(conn, settings, not dry_run):
        epoch = queue.current_epoch(r, create=not dry_run)
        candidates = store.select_tasks(
            conn,
            "(redis_epoch IS NULL OR redis_epoch <> %s) AND task_status IN (%s, %s)",
            (epoch or "", TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value),
        )
        candidates.sort(key=lambda t: (len(t.task_id), t.task_id))
        failed_sizes = queue.set_sizes(r, [fail_key(t.task_id) for t in candidates])
        for task, failed in zip(candidates, failed_sizes, strict=True):
            waiting = _fail_set_digests(r, fail_key(task.task_id), settings) if failed else set()
            if task.pushed_at is not None:
                tracking.lost_queues.append(task.task_id)
            if dry_run or epoch is None:
                tracking.repushed[task.task_id] = sum(
                    1
                    for part in store.stream_elements(conn, task, batch_size=5000, exclude_done=True)
                    for m in part
                    if element_digest(m) not in waiting
                )
                continue
            tracking.repushed[task.task_id] = publish(
                conn, r, settings, task, epoch=epoch, exclude_done=True, skip=waiting
            )
        tracking.redis = queue.server_facts(r)
    if tracking.repushed:
        log.warning("re-published tasks whose Redis set was lost or never pushed: %s", tracking.repushed)
    return tracking


def reconcile_summary(tracking: Tracking) -> dict[str, Any]:
    """The dispatch DAG's view of a reconcile pass, with its findings."""
    return {"repushed": tracking.repushed, "lost_queues": tracking.lost_queues, "redis": tracking.redis,
            "findings": [f.to_json() for f in tracking.findings("amazon_task_dispatch")]}  # fmt: skip


def _fail_set_digests(r: RedisClient, key: str, settings: Settings) -> set[bytes]:
    return {element_digest(m) for m in queue.members(r, key, settings.dispatch.redis_batch_size)}
