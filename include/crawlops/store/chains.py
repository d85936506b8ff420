"""Retry chains (the tasks sharing a ``root_task_id``) as retention reads and deletes them: a
chain's task rows and manifest go together, and only once every task of it is closed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from crawlops.db import Connection, delete_batch, marks
from crawlops.model import TaskStatus

#: A task whose outcome is final: one of these, with ``settled_at`` set.
CLOSED_STATUSES = (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.DEAD.value)
_CLOSED = marks(CLOSED_STATUSES)


def roots_of(conn: Connection, task_ids: Sequence[str]) -> dict[str, str]:
    """task_id -> root_task_id of those tasks (tasks without a row are left out)."""
    if not task_ids:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT task_id, root_task_id FROM amazon_task_information WHERE task_id IN ({marks(task_ids)})",  # noqa: S608
            list(task_ids),
        )
        return {str(task): str(root) for task, root in cur.fetchall()}


def closed_roots(conn: Connection, roots: Iterable[str], *, settled_before: dt.datetime) -> set[str]:
    """Those retry chains that closed before ``settled_before``: every task of the chain
    Completed, Failed or Dead and settled before then. One task open, not settled yet (a
    finished task waiting out its grace period), or settled since, and the chain is not."""
    roots = sorted(set(roots))
    if not roots:
        return set()
    with conn.cursor() as cur:
        cur.execute(  # idx_task_root, then the chain's rows
            f"SELECT root_task_id FROM amazon_task_information WHERE root_task_id IN ({marks(roots)}) "  # noqa: S608
            "GROUP BY root_task_id HAVING SUM(settled_at IS NULL OR settled_at >= %s "
            f"OR task_status NOT IN ({_CLOSED})) = 0",
            [*roots, settled_before, *CLOSED_STATUSES],
        )
        return {str(root) for (root,) in cur.fetchall()}


def settled_page(
    conn: Connection, *, settled_before: dt.datetime, after: tuple[Any, ...] | None, limit: int
) -> list[tuple[Any, ...]]:
    """Up to ``limit`` tasks settled before ``settled_before``, oldest first, following ``after``
    (the last row of the previous page): (settled_at, task_status, task_id, root_task_id).
    Read in the order of idx_task_settled (settled_at, task_status, then the key)."""
    sql = "SELECT settled_at, task_status, task_id, root_task_id FROM amazon_task_information WHERE settled_at < %s"
    params: list[Any] = [settled_before]
    if after is not None:
        settled_at, status, task_id = after[:3]
        sql += " AND settled_at >= %s AND (settled_at > %s OR task_status > %s OR (task_status = %s AND task_id > %s))"
        params += [settled_at, settled_at, status, status, task_id]
    with conn.cursor() as cur:
        cur.execute(sql + " ORDER BY settled_at, task_status, task_id LIMIT %s", [*params, limit])
        return list(cur.fetchall())


def closed_chain_tasks(conn: Connection, roots: Sequence[str], *, settled_before: dt.datetime) -> list[str]:
    """The tasks of those chains settled (Completed, Failed or Dead) before ``settled_before``, in
    id order (a root before its retries); a task opened in the chain meanwhile is not among them."""
    if not roots:
        return []
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT task_id FROM amazon_task_information WHERE root_task_id IN ({marks(roots)}) "  # noqa: S608
            f"AND settled_at < %s AND task_status IN ({_CLOSED}) ORDER BY task_id",
            [*roots, settled_before, *CLOSED_STATUSES],
        )
        return [str(task) for (task,) in cur.fetchall()]


def delete_chains(conn: Connection, roots: Sequence[str], *, settled_before: dt.datetime) -> int:
    """Delete the task rows of those chains (closed: see ``closed_roots``; their manifests gone
    first) in one transaction; a task opened in the chain meanwhile stays. Rows deleted."""
    if not roots:
        return 0
    return delete_batch(
        conn,
        f"DELETE FROM amazon_task_information WHERE root_task_id IN ({marks(roots)}) "  # noqa: S608
        f"AND settled_at < %s AND task_status IN ({_CLOSED})",
        [*roots, settled_before, *CLOSED_STATUSES],
    )
