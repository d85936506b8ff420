"""Re-crawl: answered elements crawled once more, down their task's retry chain."""

from __future__ import annotations

import logging

from crawlops import queue, store
from crawlops.db import Connection
from crawlops.lifecycle.common import tracking_lock
from crawlops.lifecycle.outcomes import Recrawl
from crawlops.lifecycle.settle import hand_over
from crawlops.model import Element
from crawlops.queue import RedisClient
from crawlops.settings import Settings

log = logging.getLogger(__name__)


def recrawl(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    elements: dict[str, list[Element]],
    *,
    dry_run: bool = False,
) -> Recrawl:
    """Crawl answered elements once more (their rows lack a field the data needs), by task id.

    Each goes down its task's retry chain like an unanswered one (``hand_over``: the
    chain's open task, or a retry of its last task within the retry budget), and is marked
    there (``recrawl_at``), so an element is re-crawled once: one its chain re-crawled
    already is not sent again, whatever its new rows hold.
    """
    outcome = Recrawl(dry_run=dry_run)
    limits = settings.dispatch
    with tracking_lock(conn, settings, not dry_run):
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
            handed = hand_over(conn, r, settings, task, fresh, epoch=epoch, write=not dry_run, closing=False)
            outcome.handed.append(handed)
            if handed.retry_task and not dry_run:
                store.mark_recrawled(
                    conn, handed.retry_task, [e.text for e in fresh], batch_size=limits.mysql_batch_size
                )
    if outcome.handed or outcome.earlier:
        log.info("re-crawl: %s", outcome.to_json())
    return outcome
