"""Rows lacking a required field, traced back to their elements and crawled once more."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from crawlops import lifecycle, store
from crawlops.db import Connection, batched
from crawlops.findings import Finding, Level
from crawlops.model import Element, Window
from crawlops.names import SUPERVISION_DAG as SOURCE
from crawlops.planning import CRAWL_OBJECTS
from crawlops.queue import RedisClient
from crawlops.settings import Settings
from crawlops.store import results

log = logging.getLogger(__name__)


@dataclasses.dataclass
class IncompleteRows:
    """The window's rows lacking a required field, traced back to the elements they answer."""

    rows: int = 0
    by_column: dict[str, int] = dataclasses.field(default_factory=dict)
    elements: dict[str, list[Element]] = dataclasses.field(default_factory=dict)  # by task id
    newest: dict[bytes, dt.datetime] = dataclasses.field(default_factory=dict)  # element digest -> newest row
    untraceable: int = 0  # rows naming no element: a key field missing, or no such element in their task


def trace_incomplete_rows(conn: Connection, table: str, window: Window, required: Sequence[str]) -> IncompleteRows:
    """Rows of ``table`` created in the window with a NULL in any ``required`` column, and
    the manifest elements they answer: the row's task and the crawl object's result keys
    (for search results: keyword, marketplace, page), matched byte for byte."""
    objects = {name: o for name, o in CRAWL_OBJECTS.items() if o.results_table == table}
    if not objects:
        raise ValueError(f"no crawl object writes its results to {table!r}")
    if not required:
        return IncompleteRows()
    keys = list(dict.fromkeys(c for o in objects.values() for c in o.result_keys.values()))
    start, end = window.naive()
    traced = IncompleteRows()
    traced.by_column, traced.rows = results.incomplete_counts(conn, table, start, end, required)
    if not traced.rows:
        return traced
    groups: dict[str, dict[tuple, tuple[int, dt.datetime]]] = {}
    for task_id, *row in results.incomplete_by_element(conn, table, start, end, required=required, keys=keys):
        *row_key, count, newest = row
        if task_id is None or any(v is None for v in row_key):
            traced.untraceable += int(count)
        else:
            groups.setdefault(task_id, {})[tuple(row_key)] = (int(count), newest)
    tasks = {t.task_id: t for chunk in batched(sorted(groups), 1000) for t in _tasks(conn, chunk)}
    for task_id, wanted in groups.items():
        task = tasks.get(task_id)
        crawl_object = objects.get(task.task_type) if task else None
        if task is None or crawl_object is None:
            traced.untraceable += sum(count for count, _ in wanted.values())
            continue
        fields = {column: field for field, column in crawl_object.result_keys.items()}
        matched: set[tuple] = set()
        for part in store.stream_elements(conn, task, batch_size=5000, fields=True):
            for element in part:
                key = tuple(getattr(element, fields[c]) if c in fields else None for c in keys)
                if key in wanted:
                    matched.add(key)
                    traced.elements.setdefault(task_id, []).append(element)
                    traced.newest[element.digest] = wanted[key][1]
        traced.untraceable += sum(count for key, (count, _) in wanted.items() if key not in matched)
    return traced


def _tasks(conn: Connection, task_ids: Sequence[str]) -> list[store.TaskRow]:
    return store.select_tasks(conn, "task_id IN (" + ", ".join(["%s"] * len(task_ids)) + ")", list(task_ids))


def recrawl_incomplete(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    table: str,
    window: Window,
    *,
    required: Sequence[str],
    dry_run: bool = False,
) -> tuple[dict[str, Any], list[Finding]]:
    """The window's rows lacking a required field: their elements are crawled once more
    through the dispatch core (``lifecycle.recrawl``: the chain's retry, usual budget).

    One ``incomplete_data`` finding for the window: INFO while every such row is on its way
    to its one re-crawl (sent now or by an earlier run); WARNING when some cannot be:
    rows naming no element, rows still incomplete after their element's re-crawl, or a
    chain whose retry budget is spent. The rows themselves stay where they are.
    """
    traced = trace_incomplete_rows(conn, table, window, required)
    done = lifecycle.recrawl(conn, r, settings, traced.elements, dry_run=dry_run) if traced.elements else None
    done = done or lifecycle.Recrawl(dry_run=dry_run)
    # An element sent before whose rows arrived since: the re-crawl answered, still incomplete.
    after = sum(1 for digest, asked in done.earlier.items() if traced.newest.get(digest, asked) >= asked)
    summary = {
        "rows": traced.rows,
        "by_column": traced.by_column,
        "elements": sum(len(v) for v in traced.elements.values()),
        "untraceable_rows": traced.untraceable,
        "incomplete_after_recrawl": after,
        **done.to_json(),
    }
    if not traced.rows:
        return summary, []
    stuck = traced.untraceable + after + done.budget_spent
    columns = ", ".join(f"{c} {n}" for c, n in sorted(traced.by_column.items()))
    verb = "would send" if dry_run else "sent"
    left = [
        f"{n} {what}"
        for n, what in (
            (traced.untraceable, "rows name no element"),
            (after, "elements still incomplete after their one re-crawl"),
            (done.budget_spent, "elements not re-crawled: retry budget spent"),
        )
        if n
    ]
    finding = Finding(
        Level.WARNING if stuck else Level.INFO,
        SOURCE,
        "incomplete_data",
        f"{table} {window}: {traced.rows} rows lack a required field ({columns})",
        subject=table,
        details=summary,
        action=f"{verb} {done.sent} elements for one more crawl"
        + (f" ({', '.join(summary['retry_tasks'][:3])})" if summary["retry_tasks"] else "")
        + (f"; {len(done.earlier) - after} sent by an earlier run" if len(done.earlier) > after else "")
        + (f"; {'; '.join(left)}" if left else ""),
    )
    return summary, [finding]
