"""The element manifest ``amazon_task_element``: every element of every task, so Redis never
holds the only copy. Only this module (and ``tasks``, which writes a task and its manifest in
one transaction) holds its SQL."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import Any, Protocol

from crawlops.db import Connection, Cursor, batched, delete_batch, marks
from crawlops.model import Element, element_digest, fail_key
from crawlops.planning import CRAWL_OBJECTS

log = logging.getLogger(__name__)


class TaskRef(Protocol):
    """What the manifest needs to know of a task (``store.tasks.TaskRow`` is one)."""

    @property
    def task_id(self) -> str: ...
    @property
    def task_type(self) -> str: ...
    @property
    def root_task_id(self) -> str: ...


_INSERT_ELEMENTS = (
    "INSERT INTO amazon_task_element (task_id, seq, element_hash, element, target, marketplace, page, config_id) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def insert_planned(cur: Cursor, task_id: str, element_fields: Iterable[tuple[Any, ...]], *, batch_size: int) -> None:
    """A new task's manifest, in the caller's transaction: (text, target, marketplace, page,
    config id) per element, numbered 1, 2, ... in planning order. ``seq`` is the clustered key:
    rows append to the end of the index instead of landing at random places, which is what
    keeps a million-row task fast."""
    rows = ((task_id, seq, element_digest(f[0]), *f) for seq, f in enumerate(element_fields, 1))
    for batch in batched(rows, batch_size):
        cur.executemany(_INSERT_ELEMENTS, batch)


def insert_elements(cur: Cursor, task_id: str, elements: Iterable[Element], *, batch_size: int) -> int:
    """Append elements to a task's manifest, in the caller's transaction, numbered after its
    last; one already there is skipped (INSERT IGNORE: a worker may report the same element
    twice). Returns how many were new."""
    cur.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM amazon_task_element WHERE task_id = %s", (task_id,))
    first = int(cur.fetchone()[0])
    rows = (
        (task_id, seq, e.digest, e.text, e.target, e.marketplace, e.page, e.config_id)
        for seq, e in enumerate(elements, first)
    )
    added = 0
    for batch in batched(rows, batch_size):
        cur.executemany(_INSERT_ELEMENTS.replace("INSERT", "INSERT IGNORE", 1), batch)
        added += cur.rowcount
    return added


def element_from_text(text: str, *, origin: str = "") -> Element:
    """An element read back from Redis; a member that is not an element object is kept as is."""
    try:
        fields = json.loads(text)
    except ValueError:
        fields = None
    if not isinstance(fields, dict):
        log.warning("%s holds a member that is not a JSON object; kept as is: %.80r", origin, text)
        fields = {}
    page = fields.get("page")
    return Element(
        text,
        str(fields.get("keyword", fields.get("target", ""))) or None,  # type: ignore[arg-type]
        str(fields.get("marketplace", "")) or None,  # type: ignore[arg-type]
        page if isinstance(page, int) and not isinstance(page, bool) and 0 < page < 65536 else None,
        None,
    )


def add_to_manifest(conn: Connection, task_id: str, items: Sequence[str | Element], *, batch_size: int) -> int:
    """Add elements (member texts, or ``Element``) a task's manifest lacks (INSERT IGNORE);
    returns how many were new."""
    with conn.cursor() as cur:
        elements = (e if isinstance(e, Element) else element_from_text(e, origin=task_id) for e in items)
        added = insert_elements(cur, task_id, elements, batch_size=batch_size)
        if added:
            cur.execute(
                "UPDATE amazon_task_information SET element_count = element_count + %s WHERE task_id = %s",
                (added, task_id),
            )
    conn.commit()
    return added


def stream_elements(
    conn: Connection, task: TaskRef, *, batch_size: int, exclude_done: bool = False, fields: bool = False
) -> Generator[list[Any], None, None]:
    """The manifest of a task in batches of member texts (``fields``: of ``Element``), read
    with a server-side cursor.

    With ``exclude_done`` only the unanswered elements come back: those without result rows
    (in the results table or its quarantine: a row judged invalid was still an answer)
    under any task of the same retry chain, not answered empty in any task of the chain,
    and not handed to one of the task's retry tasks.
    """
    import MySQLdb.cursors

    columns = "e.element, e.target, e.marketplace, e.page, e.config_id" if fields else "e.element"
    sql = f"SELECT {columns} FROM amazon_task_element e WHERE e.task_id = %s"  # noqa: S608 - constants
    params: list[Any] = [task.task_id]
    if exclude_done:
        crawl_object = CRAWL_OBJECTS[task.task_type]
        matches = " AND ".join(f"s.{column} = e.{field}" for field, column in crawl_object.result_keys.items())
        chain = "SELECT c.task_id FROM amazon_task_information c WHERE c.root_task_id = %s"
        # Table and column names come from the CRAWL_OBJECTS registry, never from input. The
        # element index is forced: with statistics from a freshly filled table, MariaDB 10.11
        # took (marketplace, create_time) instead and read every row of the marketplace per
        # element (150 s for one 10,000-element task with 28,000 rows, found by the soak).
        sql += "".join(
            f" AND NOT EXISTS (SELECT 1 FROM {table} s FORCE INDEX ({index}) "  # noqa: S608
            f"WHERE s.task_id IN ({chain}) AND {matches})"
            for table, index in (
                (crawl_object.results_table, "idx_result_element"),
                (crawl_object.results_table + "_quarantine", "idx_quarantine_element"),
            )
        )
        sql += (
            f" AND NOT EXISTS (SELECT 1 FROM amazon_task_element a WHERE a.task_id IN ({chain}) "  # noqa: S608
            "AND a.element_hash = e.element_hash AND a.empty_at IS NOT NULL)"
            " AND e.element_hash NOT IN (SELECT r.element_hash FROM amazon_task_element r WHERE r.task_id LIKE %s)"
        )
        params += [task.root_task_id] * 3 + [_like_prefix(fail_key(task.task_id))]
    sql += " ORDER BY e.seq"
    cur = conn.cursor(MySQLdb.cursors.SSCursor)
    try:
        cur.execute(sql, params)
        while rows := cur.fetchmany(batch_size):
            yield [Element(*row) for row in rows] if fields else [row[0] for row in rows]
    finally:
        cur.close()


def split_known(
    conn: Connection, task_id: str, texts: Sequence[str], *, batch_size: int
) -> tuple[list[str], list[str]]:
    """``texts`` split into members of the task's manifest and members it does not hold."""
    known: set[bytes] = set()
    with conn.cursor() as cur:
        for batch in batched(list({element_digest(t) for t in texts}), batch_size):
            cur.execute(
                "SELECT element_hash FROM amazon_task_element WHERE task_id = %s AND element_hash IN ("  # noqa: S608
                + ", ".join(["%s"] * len(batch))
                + ")",
                [task_id, *batch],
            )
            known.update(bytes(h) for (h,) in cur.fetchall())
    inside = [t for t in texts if element_digest(t) in known]
    return inside, [t for t in texts if element_digest(t) not in known]


def mark_empty(conn: Connection, task_id: str, texts: Sequence[str], *, batch_size: int) -> int:
    """Record elements of the task's manifest as answered empty (the first answer's time is kept)."""
    return _stamp(conn, task_id, texts, "empty_at", batch_size)


def mark_recrawled(conn: Connection, task_id: str, texts: Sequence[str], *, batch_size: int) -> int:
    """Note on the task's manifest rows that these elements were sent for one more crawl."""
    return _stamp(conn, task_id, texts, "recrawl_at", batch_size)


def mark_fail_reasons(
    conn: Connection, task_id: str, by_reason: Mapping[str, Sequence[str]], *, batch_size: int
) -> int:
    """Record on the task's manifest rows why each of these elements failed (reason -> texts)."""
    marked = 0
    with conn.cursor() as cur:
        for reason, texts in by_reason.items():
            for batch in batched([element_digest(t) for t in texts], batch_size):
                cur.execute(
                    "UPDATE amazon_task_element SET fail_reason = %s WHERE task_id = %s "  # noqa: S608
                    "AND element_hash IN (" + ", ".join(["%s"] * len(batch)) + ")",
                    [reason[:32], task_id, *batch],
                )
                marked += cur.rowcount
    conn.commit()
    return marked


def _stamp(conn: Connection, task_id: str, texts: Sequence[str], column: str, batch_size: int) -> int:
    """Set ``column`` (``empty_at`` or ``recrawl_at``) to now on those manifest rows where it is unset."""
    if column not in ("empty_at", "recrawl_at"):
        raise ValueError(f"not a manifest time column: {column!r}")
    marked = 0
    with conn.cursor() as cur:
        for batch in batched([element_digest(t) for t in texts], batch_size):
            cur.execute(
                f"UPDATE amazon_task_element SET {column} = UTC_TIMESTAMP() WHERE task_id = %s "  # noqa: S608
                f"AND {column} IS NULL AND element_hash IN (" + ", ".join(["%s"] * len(batch)) + ")",
                [task_id, *batch],
            )
            marked += cur.rowcount
    conn.commit()
    return marked


def recrawled(
    conn: Connection, root_task_id: str, texts: Sequence[str], *, batch_size: int
) -> dict[bytes, dt.datetime]:
    """Those elements already sent for one more crawl by a task of the chain: digest -> when."""
    found: dict[bytes, dt.datetime] = {}
    with conn.cursor() as cur:
        for batch in batched(list({element_digest(t) for t in texts}), batch_size):
            cur.execute(
                "SELECT m.element_hash, MIN(m.recrawl_at) FROM amazon_task_information c "  # noqa: S608
                "JOIN amazon_task_element m ON m.task_id = c.task_id WHERE c.root_task_id = %s "
                "AND m.recrawl_at IS NOT NULL AND m.element_hash IN (" + ", ".join(["%s"] * len(batch)) + ") "
                "GROUP BY m.element_hash",
                [root_task_id, *batch],
            )
            found.update((bytes(h), at) for h, at in cur.fetchall())
    return found


def empty_count(conn: Connection, task_id: str) -> int:
    """Elements of the task's manifest answered empty."""
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM amazon_task_element WHERE task_id = %s AND empty_at IS NOT NULL", (task_id,))
        return int(cur.fetchone()[0])


def manifest_marketplaces(conn: Connection, task_ids: Sequence[str]) -> list[str]:
    """The marketplaces the manifests of these tasks name, sorted."""
    if not task_ids:
        return []
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT marketplace FROM amazon_task_element WHERE task_id IN ("  # noqa: S608
            + ", ".join(["%s"] * len(task_ids))
            + ")",
            list(task_ids),
        )
        return sorted(str(m) for (m,) in cur.fetchall() if m)


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# --- retention: which tasks may lose their manifest is decided by their chain (store.tasks) ----


def task_ids_after(conn: Connection, after: str, *, limit: int) -> list[str]:
    """Up to ``limit`` task ids holding manifest rows, in id order after ``after`` (a loose scan
    of the primary key: one index dive per task, however many elements it holds)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT task_id FROM amazon_task_element WHERE task_id > %s ORDER BY task_id LIMIT %s",
            (after, limit),
        )
        return [str(task_id) for (task_id,) in cur.fetchall()]


def counts_of_tasks(conn: Connection, task_ids: Sequence[str]) -> dict[str, int]:
    """Manifest rows per task (tasks without any are left out)."""
    if not task_ids:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT task_id, COUNT(*) FROM amazon_task_element WHERE task_id IN ({marks(task_ids)}) "  # noqa: S608
            "GROUP BY task_id",
            list(task_ids),
        )
        return {str(task_id): int(count) for task_id, count in cur.fetchall()}


def purge_tasks(conn: Connection, task_ids: Sequence[str], *, limit: int) -> int:
    """Delete up to ``limit`` manifest rows of those tasks, in key order (a root's before its
    retries'), in one short transaction; the rows deleted, 0 once none of them holds any.

    While the first task holding rows has more than ``limit`` left, a batch is the range of
    ``limit`` seqs from its first row left (a task's seqs run on without gaps, and a purge only
    ever removes the front of what is left): deleting a day of a 20M-row manifest that way was
    1.1-2.4x faster than ``ORDER BY task_id, seq LIMIT n`` (bench/scale_bench.py). The batch
    that reaches the end of a task is the ``LIMIT`` one, so it takes the next tasks' rows with
    it and many small tasks (retries) still go ``limit`` rows a statement. Every batch but the
    last is full, as before.
    """
    if not task_ids:
        return 0
    among = f"task_id IN ({marks(task_ids)})"
    with conn.cursor() as cur:
        # two index dives: where the first task's rows left start and end
        cur.execute(
            f"SELECT task_id, seq FROM amazon_task_element WHERE {among} ORDER BY task_id, seq LIMIT 1",  # noqa: S608
            list(task_ids),
        )
        first = cur.fetchone()
        if first is None:
            conn.commit()
            return 0
        task_id, low = first
        cur.execute("SELECT MAX(seq) FROM amazon_task_element WHERE task_id = %s", (task_id,))
        (top,) = cur.fetchone()
    if top - low + 1 > limit:
        return delete_batch(
            conn,
            "DELETE FROM amazon_task_element WHERE task_id = %s AND seq >= %s AND seq < %s",
            (task_id, low, low + limit),
        )
    return delete_batch(
        conn,
        f"DELETE FROM amazon_task_element WHERE {among} ORDER BY task_id, seq LIMIT %s",  # noqa: S608
        [*task_ids, limit],
    )
