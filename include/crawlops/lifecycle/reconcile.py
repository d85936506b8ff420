"""Lost sets re-published, and ``track``: sync, settle and reconcile in one pass."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from crawlops import queue, store
from crawlops.db import Connection, marks
from crawlops.dispatch import publish
from crawlops.lifecycle.common import fail_set_digests, tracking_lock
from crawlops.lifecycle.outcomes import Tracking
from crawlops.lifecycle.settle import settle_finished_locked
from crawlops.lifecycle.sync import sync_locked
from crawlops.model import TaskStatus, element_digest, fail_key
from crawlops.names import DISPATCH_DAG
from crawlops.queue import RedisClient
from crawlops.settings import Settings

log = logging.getLogger(__name__)


def track(
    conn: Connection, r: RedisClient, settings: Settings, *, now: dt.datetime | None = None, dry_run: bool = False
) -> Tracking:
    """Sync, settle and reconcile in one pass under the dispatch lock (what a supervision run does).

    The lock is taken once and the Redis epoch read once for the three steps: each step on
    its own takes the lock and reads the epoch itself, which inside this pass would only
    repeat the same answers. The epoch is read as settling and reconciling need it (created
    when missing or outdated, unless ``dry_run``); the sync tells drained from lost sets the
    same way against a fresh epoch as against a missing one: neither is a task's recorded epoch.
    """
    write = not dry_run
    with tracking_lock(conn, settings, write):
        epoch, facts = queue.epoch_and_facts(r, create=write)
        open_rows = store.select_open_tasks(conn)
        synced = sync_locked(conn, r, settings, epoch=epoch, write=write, open_rows=open_rows)
        tracking = Tracking(dry_run=dry_run, open=synced, rejected=list(synced.rejected))
        tracking.merge(settle_finished_locked(conn, r, settings, epoch=epoch, now=now, dry_run=dry_run))
        tracking.merge(_reconcile(conn, r, settings, epoch=epoch, facts=facts, dry_run=dry_run, open_rows=open_rows))
    return tracking


def reconcile_lost(conn: Connection, r: RedisClient, settings: Settings, *, dry_run: bool = False) -> Tracking:
    """Re-publish open tasks whose Redis set was lost, minus elements that are done or retried.

    A task is a candidate when its recorded epoch is not the current one (Redis was
    flushed or restarted since the push) or it was recorded but never pushed. Elements
    with result rows or empty answers anywhere in the task's retry chain, waiting in its
    fail set, or handed to a retry task are not pushed again. Parents go before their
    retries, so a retry is published with them.
    """
    with tracking_lock(conn, settings, not dry_run):
        epoch, facts = queue.epoch_and_facts(r, create=not dry_run)
        return _reconcile(conn, r, settings, epoch=epoch, facts=facts, dry_run=dry_run)


_CANDIDATES = "(redis_epoch IS NULL OR redis_epoch <> %s) AND task_status IN (%s, %s)"


def _reconcile(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    *,
    epoch: str | None,
    facts: dict[str, Any],
    dry_run: bool,
    open_rows: list[store.OpenTask] | None = None,
) -> Tracking:
    """``reconcile_lost`` under a lock the caller holds, against the Redis epoch it read
    (``facts``: the server facts of the same INFO reply, recorded as the evidence).

    ``open_rows``: the open tasks ``track`` read under the same lock. The candidates are then
    those of them in another epoch, re-read whole (and re-tested) only when there are any:
    in the usual pass, none, and no statement. The steps between (sync, settle) make no
    candidate: a task they move stays in its epoch, a retry they create is in the current one.
    """
    tracking = Tracking(dry_run=dry_run)
    params: list[Any] = [epoch or "", TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value]
    if open_rows is None:
        candidates = store.select_tasks(conn, _CANDIDATES, params)
    else:
        current = params[0]  # NULL in the column: never pushed, a candidate too (None != any text)
        ids = [t.task_id for t in open_rows if t.redis_epoch != current]
        candidates = (
            store.select_tasks(conn, f"task_id IN ({marks(ids)}) AND {_CANDIDATES}", ids + params) if ids else []
        )
    candidates.sort(key=lambda t: (len(t.task_id), t.task_id))
    failed_sizes = queue.set_sizes(r, [fail_key(t.task_id) for t in candidates])
    for task, failed in zip(candidates, failed_sizes, strict=True):
        waiting = fail_set_digests(r, fail_key(task.task_id), settings) if failed else set()
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
        tracking.repushed[task.task_id] = publish(conn, r, settings, task, epoch=epoch, exclude_done=True, skip=waiting)
    tracking.redis = facts
    if tracking.repushed:
        log.warning("re-published tasks whose Redis set was lost or never pushed: %s", tracking.repushed)
    return tracking


def reconcile_summary(tracking: Tracking) -> dict[str, Any]:
    """The dispatch DAG's view of a reconcile pass, with its findings."""
    return {"repushed": tracking.repushed, "lost_queues": tracking.lost_queues, "redis": tracking.redis,
            "findings": [f.to_json() for f in tracking.findings(DISPATCH_DAG)]}  # fmt: skip
