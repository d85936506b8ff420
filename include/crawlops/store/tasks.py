"""Task rows: ``amazon_task_information``.

MySQL is the ledger: a task and its elements are committed here before any element
reaches Redis, and every later decision (status, retry, reconcile) is written here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from crawlops.db import Connection, batched
from crawlops.model import FAIL_SUFFIX, Element, TaskStatus, fail_key
from crawlops.planning import PlannedTask
from crawlops.store.manifest import insert_elements, insert_planned

log = logging.getLogger(__name__)

TASK_COLUMNS = (
    "task_id, task_type, task_source, root_task_id, frequency, task_status, element_count, "
    "remaining_count, failed_count, retry_count, interval_start, interval_end, redis_epoch, "
    "push_count, pushed_at, progress_at, started_at, finished_at, settled_at, priority, retry_limit"
)


@dataclasses.dataclass(frozen=True)
class TaskRow:
    task_id: str
    task_type: str
    task_source: str | None
    root_task_id: str
    frequency: str
    task_status: str
    element_count: int
    remaining_count: int | None
    failed_count: int
    retry_count: int
    interval_start: dt.datetime
    interval_end: dt.datetime
    redis_epoch: str | None
    push_count: int
    pushed_at: dt.datetime | None
    progress_at: dt.datetime | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    settled_at: dt.datetime | None = None
    priority: int = 0
    # the retry count the chain may reach, when a re-drive set one (else [dispatch] retry_limit)
    retry_limit: int | None = None


def select_tasks(conn: Connection, where: str, params: Sequence[Any] = ()) -> list[TaskRow]:
    with conn.cursor() as cur:
        # ``where`` is a constant fragment of this package's modules; values travel as params.
        cur.execute(f"SELECT {TASK_COLUMNS} FROM amazon_task_information WHERE {where}", params)  # noqa: S608
        return [TaskRow(*row) for row in cur.fetchall()]


class OpenTask(NamedTuple):
    """An open task as the 5-minute pass reads it: the columns the status sync, the reconcile
    candidate test and the health check use, not the whole row (``select_tasks`` has that).

    A tuple, not a frozen dataclass: it is built for every open task on every check, and a
    frozen dataclass of this size takes about 1 us to build against 0.2 us."""

    task_id: str
    task_type: str
    task_source: str | None
    task_status: str
    element_count: int
    remaining_count: int | None
    failed_count: int
    redis_epoch: str | None
    priority: int
    pushed_at: dt.datetime | None
    started_at: dt.datetime | None
    progress_at: dt.datetime | None


# The DATETIMEs travel as text and are parsed by datetime.fromisoformat (C): MySQLdb's own
# converter parses them in Python, about 0.85 us each against 0.1 (2,000 open tasks: 5.1 ms
# of the 13.7 ms the whole row took, which also carried four DATETIMEs this pass never uses).
_OPEN_SELECT = (
    "SELECT task_id, task_type, task_source, task_status, element_count, remaining_count, failed_count, "
    "redis_epoch, priority, CAST(pushed_at AS CHAR), CAST(started_at AS CHAR), CAST(progress_at AS CHAR) "
    "FROM amazon_task_information WHERE task_status IN (%s, %s)"
)


def select_open_tasks(conn: Connection) -> list[OpenTask]:
    """Every open task (``Pending`` or ``In Progress``), pushed or not, through ``idx_task_status``."""
    parse = dt.datetime.fromisoformat
    with conn.cursor() as cur:
        cur.execute(_OPEN_SELECT, (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value))
        return [
            OpenTask._make((*head, pushed and parse(pushed), started and parse(started), progress and parse(progress)))
            for *head, pushed, started, progress in cur.fetchall()
        ]


def record_task(conn: Connection, task: PlannedTask, *, batch_size: int, dag_run_id: str | None) -> bool:
    """Insert the task row and its manifest in one transaction; False if the task already exists.

    A recorded task is never changed by a later run of the same window, so re-runs and
    backfills leave exactly one task with exactly its first set of elements.
    """
    start, end = task.window.naive()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_task_information (task_id, task_type, task_source, root_task_id, frequency, "
            "task_status, element_count, interval_start, interval_end, dag_run_id, priority) "
            "VALUES (%s, %s, NULL, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON DUPLICATE KEY UPDATE task_id = task_id",
            (
                task.task_id,
                task.crawl_object,
                task.task_id,
                task.frequency,
                TaskStatus.PENDING.value,
                task.element_count,
                start,
                end,
                dag_run_id,
                task.priority,
            ),
        )
        if cur.rowcount != 1:
            conn.rollback()
            return False
        insert_planned(cur, task.task_id, task.element_fields(), batch_size=batch_size)
    conn.commit()
    return True


def record_retry_task(
    conn: Connection, source: TaskRow, elements: Iterable[Element], *, epoch: str, batch_size: int
) -> int | None:
    """Register ``<source>_fail`` as a Pending retry task whose elements already wait in Redis.

    Returns the element count, or None if the retry task already existed.
    """
    retry_id = fail_key(source.task_id)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_task_information (task_id, task_type, task_source, root_task_id, frequency, "
            "task_status, element_count, remaining_count, retry_count, interval_start, interval_end, "
            "redis_epoch, push_count, pushed_at, dag_run_id, priority, retry_limit) "
            "VALUES (%s, %s, %s, %s, %s, %s, 0, 0, %s, %s, %s, %s, 1, UTC_TIMESTAMP(), NULL, %s, %s) "
            "ON DUPLICATE KEY UPDATE task_id = task_id",
            (
                retry_id,
                source.task_type,
                source.task_id,
                source.root_task_id,
                source.frequency,
                TaskStatus.PENDING.value,
                source.retry_count + 1,
                source.interval_start,
                source.interval_end,
                epoch,
                source.priority,
                source.retry_limit,  # a re-driven chain keeps its own budget
            ),
        )
        if cur.rowcount != 1:
            conn.rollback()
            return None
        count = insert_elements(cur, retry_id, elements, batch_size=batch_size)
        cur.execute(
            "UPDATE amazon_task_information SET element_count = %s, remaining_count = %s WHERE task_id = %s",
            (count, count, retry_id),
        )
    conn.commit()
    return count


def record_settlement(
    conn: Connection,
    task_id: str,
    *,
    status: str,
    failed: int,
    answered: int,
    empty: int,
    lost: int,
    settled_at: dt.datetime,
    last_error: str | None,
) -> None:
    """Write a task's final outcome: its status and how its elements ended."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_task_information SET task_status = %s, failed_count = %s, answered_count = %s, "
            "empty_count = %s, lost_count = %s, remaining_count = 0, settled_at = %s, "
            "finished_at = COALESCE(finished_at, %s), last_error = COALESCE(%s, last_error) WHERE task_id = %s",
            (status, failed, answered, empty, lost, settled_at, settled_at, last_error, task_id),
        )
    conn.commit()


def record_push(conn: Connection, task_id: str, *, epoch: str, remaining: int, status: str) -> None:
    """A push of the task's set: its epoch, count and status (Completed at once when nothing was left to push)."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_task_information SET pushed_at = UTC_TIMESTAMP(), redis_epoch = %s, "
            "push_count = push_count + 1, remaining_count = %s, task_status = %s, "
            "finished_at = IF(%s, UTC_TIMESTAMP(), NULL) WHERE task_id = %s",
            (epoch, remaining, status, status == TaskStatus.COMPLETED.value, task_id),
        )
    conn.commit()


@dataclasses.dataclass(frozen=True)
class StatusChange:
    """What a status sync saw of one task: its new status and counts; ``progressed``: fewer elements queued."""

    task_id: str
    status: str
    remaining: int
    failed: int
    progressed: bool


# Tasks an UPDATE. Each CASE below scans its WHEN list for every row, so a statement costs
# rows x batch: 2,000 tasks take 41 ms in batches of 100, 46 ms of 200, 143 ms in one, and
# 265 ms as one UPDATE a task (MariaDB 10.11, 100k task rows).
_STATUS_BATCH = 100


def record_statuses(conn: Connection, changes: Sequence[StatusChange]) -> None:
    """What a status sync saw, one UPDATE per 100 tasks; the caller commits (one commit per
    sync). ``started_at`` is set on leaving Pending, ``finished_at`` on Completed/Failed
    (cleared otherwise), ``progress_at`` when it progressed: the rules of one UPDATE a task,
    without a round trip a task (every active task changes between two syncs)."""
    finished_statuses = (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value)
    with conn.cursor() as cur:
        for batch in batched(changes, _STATUS_BATCH):
            ids = [c.task_id for c in batch]
            progressed = [c.task_id for c in batch if c.progressed]
            started = [c.task_id for c in batch if c.status != TaskStatus.PENDING.value]
            finished = [c.task_id for c in batch if c.status in finished_statuses]
            params: list[Any] = []
            sets = []
            for column, field in (
                ("task_status", "status"),
                ("remaining_count", "remaining"),
                ("failed_count", "failed"),
            ):
                sets.append(f"{column} = CASE task_id{' WHEN %s THEN %s' * len(batch)} END")
                params += [v for c in batch for v in (c.task_id, getattr(c, field))]
            sets.append(f"progress_at = IF({_among(progressed, params)}, UTC_TIMESTAMP(), progress_at)")
            sets.append(f"started_at = COALESCE(started_at, IF({_among(started, params)}, UTC_TIMESTAMP(), NULL))")
            sets.append(f"finished_at = IF({_among(finished, params)}, UTC_TIMESTAMP(), NULL)")
            where = _among(ids, params)
            # Only placeholders and constant column names are built here; every value is a parameter.
            cur.execute(f"UPDATE amazon_task_information SET {', '.join(sets)} WHERE {where}", params)  # noqa: S608


def _among(task_ids: list[str], params: list[Any]) -> str:
    """``task_id IN (...)`` for these ids (their values appended to ``params``); FALSE for none."""
    params += task_ids
    return f"task_id IN ({', '.join(['%s'] * len(task_ids))})" if task_ids else "FALSE"


def settled_between(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[tuple[Any, ...]]:
    """Tasks settled in ``[start, end)``: (task_id, task_type, status, elements, answered, empty, failed, lost)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, task_type, task_status, element_count, answered_count, empty_count, failed_count, "
            "lost_count FROM amazon_task_information WHERE settled_at >= %s AND settled_at < %s "
            "ORDER BY task_id",
            (start, end),
        )
        return list(cur.fetchall())


def settled_totals_by_type(conn: Connection, after: dt.datetime, until: dt.datetime) -> list[tuple[Any, ...]]:
    """Per crawl object, tasks settled in ``(after, until]``: (type, tasks, elements, answered, empty, lost)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_type, COUNT(*), SUM(element_count), SUM(answered_count), SUM(empty_count), "
            "SUM(lost_count) FROM amazon_task_information WHERE settled_at > %s AND settled_at <= %s "
            "GROUP BY task_type ORDER BY task_type",
            (after, until),
        )
        return list(cur.fetchall())


def pushed_and_live(conn: Connection, *, until: dt.datetime, finished_since: dt.datetime) -> list[tuple[Any, ...]]:
    """Tasks pushed by ``until`` and open, or finished since ``finished_since`` (not Dead): (id, type, pushed_at)."""
    with conn.cursor() as cur:
        # The live statuses named, not "<> Dead": only a list can use idx_task_status, and
        # freshness runs this every 5 minutes (1.17 s against 0.47 ms on 1M task rows).
        live = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED, TaskStatus.FAILED)
        cur.execute(
            "SELECT task_id, task_type, pushed_at FROM amazon_task_information WHERE pushed_at IS NOT NULL "
            "AND pushed_at <= %s AND (finished_at IS NULL OR finished_at >= %s) "
            "AND task_status IN (%s, %s, %s, %s)",
            (until, finished_since, *(s.value for s in live)),
        )
        return list(cur.fetchall())


def open_counts_by_type(conn: Connection) -> list[tuple[str, int]]:
    """Open (Pending or In Progress) tasks per crawl object."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_type, COUNT(*) FROM amazon_task_information WHERE task_status IN (%s, %s) GROUP BY task_type",
            (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value),
        )
        return [(str(t), int(n)) for t, n in cur.fetchall()]


def status_counts(conn: Connection, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Tasks whose interval starts in ``[start, end)``, per status."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_status, COUNT(*) FROM amazon_task_information "
            "WHERE interval_start >= %s AND interval_start < %s GROUP BY task_status",
            (start, end),
        )
        return {str(status): int(count) for status, count in cur.fetchall()}


def outcome_counts_by_interval(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[tuple[Any, ...]]:
    """Tasks per (interval start, status, has a retry task) for intervals starting in ``[start, end)``."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT t.interval_start, t.task_status, r.task_id IS NOT NULL, COUNT(*) "
            "FROM amazon_task_information t "
            "LEFT JOIN amazon_task_information r ON r.task_id = CONCAT(t.task_id, %s) "
            "AND t.task_status = %s "
            "WHERE t.interval_start >= %s AND t.interval_start < %s "
            "GROUP BY t.interval_start, t.task_status, r.task_id IS NOT NULL",
            (FAIL_SUFFIX, TaskStatus.FAILED.value, start, end),
        )
        return list(cur.fetchall())


def day_task_statistics(
    conn: Connection, start: dt.datetime, end: dt.datetime, *, percent: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Tasks whose interval starts in ``[start, end)``, per crawl object WITH ROLLUP: (type, tasks,
    root, retry, completed, failed, dead, open, settled elements, answered, empty, lost, timed
    tasks, mean seconds to complete); and the ``percent``-th percentile time to complete by
    nearest rank, per type and over all: (type, seconds, is the type's, is the overall)."""
    finished_statuses = (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.DEAD.value)
    open_statuses = (TaskStatus.PENDING.value, TaskStatus.IN_PROGRESS.value)
    finished = ", ".join(["%s"] * len(finished_statuses))
    opened = ", ".join(["%s"] * len(open_statuses))
    timed = f"task_status IN ({finished}) AND pushed_at IS NOT NULL AND finished_at IS NOT NULL"
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_type, COUNT(*), SUM(task_source IS NULL), SUM(task_source IS NOT NULL), "  # noqa: S608
            "SUM(task_status = %s), SUM(task_status = %s), SUM(task_status = %s), "
            f"SUM(task_status IN ({opened})), "
            "SUM(IF(settled_at IS NOT NULL, element_count, 0)), SUM(IF(settled_at IS NOT NULL, answered_count, 0)), "
            "SUM(IF(settled_at IS NOT NULL, empty_count, 0)), SUM(IF(settled_at IS NOT NULL, lost_count, 0)), "
            f"SUM({timed}), AVG(IF({timed}, TIMESTAMPDIFF(SECOND, pushed_at, finished_at), NULL)) "
            "FROM amazon_task_information WHERE interval_start >= %s AND interval_start < %s "
            "GROUP BY task_type WITH ROLLUP",
            (
                TaskStatus.COMPLETED.value,
                TaskStatus.FAILED.value,
                TaskStatus.DEAD.value,
                *open_statuses,
                *finished_statuses,
                *finished_statuses,
                start,
                end,
            ),
        )
        rows = list(cur.fetchall())
        # p95 by nearest rank, per type and over all types, in one pass of window functions
        # (ROW_NUMBER/COUNT OVER work on MySQL 8 and MariaDB alike; PERCENTILE_DISC does not).
        cur.execute(
            "SELECT task_type, seconds, rn = CEIL(%s * n / 100), rn_all = CEIL(%s * n_all / 100) FROM ("  # noqa: S608
            "SELECT task_type, TIMESTAMPDIFF(SECOND, pushed_at, finished_at) AS seconds, "
            "ROW_NUMBER() OVER (PARTITION BY task_type ORDER BY TIMESTAMPDIFF(SECOND, pushed_at, finished_at)) AS rn, "
            "COUNT(*) OVER (PARTITION BY task_type) AS n, "
            "ROW_NUMBER() OVER (ORDER BY TIMESTAMPDIFF(SECOND, pushed_at, finished_at), task_type) AS rn_all, "
            "COUNT(*) OVER () AS n_all "
            f"FROM amazon_task_information WHERE interval_start >= %s AND interval_start < %s AND {timed}"
            ") ranked WHERE rn = CEIL(%s * n / 100) OR rn_all = CEIL(%s * n_all / 100)",
            (percent, percent, start, end, *finished_statuses, percent, percent),
        )
        return rows, list(cur.fetchall())


def task_types_between(conn: Connection, start: dt.datetime, end: dt.datetime) -> set[str]:
    """The crawl objects (``task_type``) of tasks whose interval starts in [start, end)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT task_type FROM amazon_task_information WHERE interval_start >= %s AND interval_start < %s",
            (start, end),
        )
        return {str(name) for (name,) in cur.fetchall()}
