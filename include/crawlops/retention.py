"""Retention: what the package wrote, deleted once it is past its time (the ``[retention]``
settings, in days; 0 keeps a table's rows forever where that is allowed).

No SQL here: each table's statements live in the store module that owns it. Every purge is
a series of bounded batches: at most ``batch_size`` rows per DELETE, each its own short
transaction, found through an index on the column the rows expire by, so no batch holds
locks for long and a purge can stop between any two. It keeps no state of its own: what is
left is found again by the next call, so a purge stopped by its time budget, a failure or a
killed worker simply continues next time.

Task rows and their manifest go by retry chain (the tasks sharing a ``root_task_id``) and
only once the whole chain is closed: every task Completed, Failed or Dead, and settled
before the cutoff. A chain with an open task, or a finished task not settled yet, keeps
every row, whatever its age. The manifest goes before the task rows (a task row is how its
manifest is found), a root's before its retries'.

The time budget: a call always gets one batch with something to delete done (so a small
budget still makes progress), then stops at the first batch boundary past ``max_seconds``.
Tables are purged in order, the small ones first, so a large backlog in the manifest or the
results table never starves them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from crawlops.db import Connection, Expiry
from crawlops.planning import CRAWL_OBJECTS
from crawlops.settings import Settings
from crawlops.store import alerts, chains, manifest, outcomes, reports, results, verdicts

log = logging.getLogger(__name__)

MANIFEST = "amazon_task_element"
TASKS = "amazon_task_information"


@dataclasses.dataclass
class TablePurge:
    """What one table's purge did (or, in a dry run, would do)."""

    days: int
    cutoff: dt.datetime | dt.date | None  # None: kept forever
    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    finished: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "cutoff": self.cutoff.isoformat() if self.cutoff is not None else None,
            "rows": self.rows,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "finished": self.finished,
        }


class _Budget:
    """``max_seconds`` of work, but always one batch that found something to delete."""

    def __init__(self, max_seconds: float, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.deadline = clock() + max_seconds
        self.progressed = False

    def allows(self) -> bool:
        return not self.progressed or self.clock() < self.deadline

    def spent(self, table: TablePurge, rows: int, batches: int = 1) -> None:
        if rows:
            table.rows += rows
            table.batches += batches
            self.progressed = True


def purge(
    conn: Connection,
    settings: Settings,
    now: dt.datetime,
    *,
    dry_run: bool = False,
    batch_size: int | None = None,
    max_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Delete (``dry_run``: count) every row past its retention at ``now``, table by table,
    ``batch_size`` rows a transaction, for about ``max_seconds`` (both default to the settings).

    Returns ``{"dry_run", "now", "finished", "rows", "seconds", "tables": {table: {"days",
    "cutoff", "rows", "batches", "seconds", "finished"}}}``: ``rows`` deleted (or that would be),
    ``finished`` False where the budget ran out first (the next call continues there); a
    table kept forever reads ``days`` 0 and ``cutoff`` None. A dry run counts the same rows
    and the batches a real run takes, except for task rows: there a closed chain goes whole,
    so the real run may take fewer batches than the dry run's pages.
    """
    keep = settings.retention
    run = _Purge(
        conn,
        (now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now).replace(microsecond=0),
        batch=batch_size or keep.batch_size,
        budget=_Budget(keep.max_seconds if max_seconds is None else max_seconds, clock),
        dry_run=dry_run,
    )
    started = clock()

    def by_time(expiry: Expiry, days: int) -> None:
        """A table whose rows expire by a time column, as its store module declares it."""
        run.by_time(expiry.table, days, partial(expiry.purge, conn), partial(expiry.count, conn))

    by_time(alerts.EXPIRY["amazon_alert_send"], keep.alert_days)  # the outbox, before the alerts it names
    by_time(alerts.EXPIRY["amazon_alert_delivery"], keep.alert_days)
    by_time(alerts.EXPIRY["amazon_alert"], keep.alert_days)
    by_time(alerts.EXPIRY["amazon_alert_mute"], keep.alert_days)
    by_time(alerts.EXPIRY["amazon_alert_occurrence"], keep.alert_days)
    by_time(alerts.EXPIRY["amazon_check_run"], keep.check_run_days)
    by_time(verdicts.EXPIRY["amazon_validation_run"], keep.validation_days)
    by_time(verdicts.EXPIRY["amazon_volume_hourly"], keep.volume_days)
    by_time(outcomes.EXPIRY, keep.outcome_days)
    by_time(reports.EXPIRY, keep.report_days)
    results_tables = sorted({c.results_table for c in CRAWL_OBJECTS.values()})
    for table in results_tables:
        by_time(results.expiry(table + "_quarantine"), keep.quarantine_days)
    run.step(MANIFEST, keep.manifest_days, run.manifest)
    run.step(TASKS, keep.task_days, run.task_rows)
    for table in results_tables:  # the crawlers' own table, last: off unless its owners opt in
        by_time(results.expiry(table), keep.results_days)
    done = run.done
    summary = {
        "dry_run": dry_run,
        "now": run.now.isoformat(),
        "finished": all(t.finished for t in done.values()),
        "rows": sum(t.rows for t in done.values()),
        "seconds": round(clock() - started, 3),
        "tables": {name: t.to_json() for name, t in done.items()},
    }
    log.info(
        "retention%s: %d rows %s; %s",
        " (dry run)" if dry_run else "",
        summary["rows"],
        "would go" if dry_run else "deleted",
        "finished" if summary["finished"] else "time budget spent, the next run continues",
    )
    return summary


def check_status(summary: dict[str, Any]) -> str:
    """The retention check's outcome: ``pass``, or ``unfinished`` when the budget ran out first."""
    return "pass" if summary["finished"] else "unfinished"


class _Purge:
    """One call's purge: the tables done so far, its batch size, budget and mode."""

    def __init__(self, conn: Connection, now: dt.datetime, *, batch: int, budget: _Budget, dry_run: bool) -> None:
        self.conn, self.now, self.batch, self.budget, self.dry_run = conn, now, batch, budget, dry_run
        self.done: dict[str, TablePurge] = {}

    def step(self, name: str, days: int, work: Callable[[TablePurge], None]) -> None:
        """One table's purge, timed; ``days`` 0: kept, nothing to do. Daily reports expire by day."""
        cutoff = self.now - dt.timedelta(days=days)
        table = TablePurge(days, (cutoff.date() if name == "amazon_daily_report" else cutoff) if days else None)
        self.done[name] = table
        if not days:
            table.finished = True
            return
        began = self.budget.clock()
        try:
            work(table)
        finally:
            table.seconds += self.budget.clock() - began

    def by_time(self, name: str, days: int, delete: Callable[..., int], count: Callable[..., int]) -> None:
        """A table whose rows expire by one indexed time column: ``delete(cutoff, limit=n)`` deletes
        a batch, oldest first (``count(cutoff)``: what would go)."""

        def work(table: TablePurge) -> None:
            if not self.budget.allows():
                return
            if self.dry_run:
                rows = count(table.cutoff)
                self.budget.spent(table, rows, math.ceil(rows / self.batch))
                table.finished = True
                return
            while self.budget.allows():
                rows = delete(table.cutoff, limit=self.batch)
                self.budget.spent(table, rows)
                if rows < self.batch:
                    table.finished = True
                    return

        self.step(name, days, work)

    def manifest(self, table: TablePurge) -> None:
        """Manifest rows of tasks whose chain closed before the cutoff. The tasks holding a
        manifest are walked in id order (a loose scan: one step per task, however many elements
        it holds), a page of ``batch`` at a time, so the walk shrinks as the manifest does."""
        conn, batch, budget, cutoff = self.conn, self.batch, self.budget, table.cutoff
        assert isinstance(cutoff, dt.datetime)  # noqa: S101 - set by step
        after = ""
        while budget.allows():
            page = manifest.task_ids_after(conn, after, limit=batch)
            if not page:
                table.finished = True
                return
            after = page[-1]
            roots = chains.roots_of(conn, page)  # a manifest without its task row is never touched
            closed = chains.closed_roots(conn, roots.values(), settled_before=cutoff)
            expired = [t for t in page if roots.get(t) in closed]
            if self.dry_run:
                rows = sum(manifest.counts_of_tasks(conn, expired).values())
                budget.spent(table, rows, math.ceil(rows / batch))
                continue
            while expired:
                if not budget.allows():
                    return
                rows = manifest.purge_tasks(conn, expired, limit=batch)
                budget.spent(table, rows)
                if not rows:
                    break
                # Maybe more to come: check again that no chain re-opened meanwhile (a re-crawl).
                still = chains.closed_roots(conn, {roots[t] for t in expired}, settled_before=cutoff)
                expired = [t for t in expired if roots[t] in still]

    def task_rows(self, table: TablePurge) -> None:
        """Task rows of chains closed before the cutoff: tasks settled before it, oldest first, a
        page of ``batch`` at a time; each closed chain among them goes whole, its manifest first
        (the manifest step found it already: task_days >= manifest_days)."""
        conn, batch, budget, cutoff = self.conn, self.batch, self.budget, table.cutoff
        assert isinstance(cutoff, dt.datetime)  # noqa: S101 - set by step
        elements = self.done[MANIFEST]
        after = None
        while budget.allows():
            page = chains.settled_page(conn, settled_before=cutoff, after=after, limit=batch)
            if not page:
                table.finished = True
                return
            after = page[-1]
            closed = chains.closed_roots(conn, {row[3] for row in page}, settled_before=cutoff)
            if not closed:
                continue
            if self.dry_run:
                # Every row of a closed chain was settled before the cutoff: each is on one page.
                budget.spent(table, sum(1 for row in page if row[3] in closed))
                continue
            roots = sorted(closed)
            chain = chains.closed_chain_tasks(conn, roots, settled_before=cutoff)
            while rows := manifest.purge_tasks(conn, chain, limit=batch):
                budget.spent(elements, rows)
                if not budget.allows():
                    return
            budget.spent(table, chains.delete_chains(conn, roots, settled_before=cutoff))
