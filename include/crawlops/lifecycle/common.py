"""What the lifecycle steps share: the open tasks, the dispatch lock, the clock, and members that are not elements."""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import nullcontext
from typing import Any

from crawlops import queue, store
from crawlops.db import Connection, named_lock
from crawlops.dispatch import DISPATCH_LOCK
from crawlops.lifecycle.outcomes import EXAMPLES, Rejected
from crawlops.model import TaskStatus, element_digest, empty_key
from crawlops.queue import RedisClient
from crawlops.settings import Settings

log = logging.getLogger(__name__)


def tracking_lock(conn: Connection, settings: Settings, write: bool) -> Any:
    return named_lock(conn, DISPATCH_LOCK, settings.dispatch.lock_timeout_seconds) if write else nullcontext()


def db_now(conn: Connection) -> Any:
    with conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP()")
        return cur.fetchone()[0]


def decision_time(conn: Connection, reference: dt.datetime) -> dt.datetime:
    """The time lifecycle decisions (grace periods, settled_at) count from: the later of a
    run's reference and the database clock, so a backfilled run never judges live Redis
    state as of the past."""
    return max(naive_utc(reference), db_now(conn))


def naive_utc(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(dt.UTC).replace(tzinfo=None) if instant.tzinfo else instant


def reject_members(r: RedisClient, key: str, texts: list[str], rejected: list[Rejected]) -> None:
    """Take members that are not the task's elements out of ``key`` and note them (once: they are gone)."""
    if not texts:
        return
    queue.remove_members(r, key, texts)
    examples = [_printable(t)[:200] for t in texts[:EXAMPLES]]
    rejected.append(Rejected(key, len(texts), examples))
    log.warning("%s held %d members that are not elements of its task; removed, e.g. %s", key, len(texts), examples[0])


def _printable(text: str) -> str:
    """The member as text, or the repr of its bytes when it is not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return repr(text.encode("utf-8", "surrogateescape"))
    return text


def ingest_empty(conn: Connection, r: RedisClient, settings: Settings, task_id: str, rejected: list[Rejected]) -> int:
    """Record the members of ``<task_id>_empty`` as answered empty, then take them out of the set."""
    key = empty_key(task_id)
    batch = settings.dispatch.redis_batch_size
    members = list(queue.members(r, key, batch))
    known, unknown = store.split_known(conn, task_id, members, batch_size=settings.dispatch.mysql_batch_size)
    marked = store.mark_empty(conn, task_id, known, batch_size=settings.dispatch.mysql_batch_size)
    queue.remove_members(r, key, known, batch)  # SREM, not DEL: a worker may be adding more right now
    reject_members(r, key, unknown, rejected)
    return marked


OPEN = (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value)


def fail_set_digests(r: RedisClient, key: str, settings: Settings) -> set[bytes]:
    return {element_digest(m) for m in queue.members(r, key, settings.dispatch.redis_batch_size)}
