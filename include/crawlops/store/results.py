"""The crawlers' results tables (one per crawl object, each with its ``_quarantine``) as the
control plane reads and repairs them. Only this module holds their SQL (the task side's
"has this element an answer" subqueries excepted, in ``store.tasks``); table names come
from the crawl-object registry, never from input.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from crawlops import objects
from crawlops.db import Connection, Expiry, batched

log = logging.getLogger(__name__)

Rule = objects.Rule


def result_columns(table: str) -> str:
    """Every column of a results table's row but its generated ones: what quarantine copies."""
    written = objects.for_table(table).written_columns
    return ", ".join(("id", *(f"`{c}`" for c in written), "create_time"))


def validity_rules(table: str, marketplaces: Sequence[str]) -> list[Rule]:
    """(rule name, SQL predicate a row that breaks it meets, its parameters) of the table's crawl
    object; the names are its suite's."""
    return objects.for_table(table).validity_rules(marketplaces)


def hourly_counts(conn: Connection, table: str, hours: Sequence[dt.datetime]) -> dict[dt.datetime, int]:
    """Rows per ``create_hour`` for the given UTC hours (naive), through the create_hour index."""
    if not hours:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT create_hour, COUNT(*) FROM {table} WHERE create_hour IN ("  # noqa: S608 - table is a constant
            + ", ".join(["%s"] * len(hours))
            + ") GROUP BY create_hour",
            list(hours),
        )
        return {hour: int(count) for hour, count in cur.fetchall()}


def newest_row_time(conn: Connection, table: str, until: dt.datetime, marketplace: str | None = None) -> Any:
    """The newest ``create_time`` at or before ``until`` (of one marketplace), or None."""
    with conn.cursor() as cur:
        if marketplace is None:
            cur.execute(f"SELECT MAX(create_time) FROM {table} WHERE create_time <= %s", (until,))  # noqa: S608
        else:
            cur.execute(
                f"SELECT MAX(create_time) FROM {table} WHERE marketplace = %s AND create_time <= %s",  # noqa: S608
                (marketplace, until),
            )
        return cur.fetchone()[0]


def count_rows(conn: Connection, table: str, start: dt.datetime, end: dt.datetime) -> int:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT COUNT(*) FROM {table} WHERE create_time >= %s AND create_time < %s",  # noqa: S608
            (start, end),
        )
        return int(cur.fetchone()[0])


def count_passing(
    conn: Connection,
    table: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    rules: Sequence[Rule],
    required: Sequence[str],
) -> tuple[int, int]:
    """(rows, rows breaking no rule and lacking no ``required`` column) created in [start, end);
    a NULL fails only its required-column rule."""
    broken = [f"COALESCE({predicate}, 0)" for _, predicate, _ in rules]
    broken += [f"`{column}` IS NULL" for column in required]
    params = [p for _, _, rule_params in rules for p in rule_params]
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT COUNT(*), SUM(NOT ({' OR '.join(broken)})) FROM {table} "  # noqa: S608 - constants
            "WHERE create_time >= %s AND create_time < %s",
            [*params, start, end],
        )
        rows, good = cur.fetchone()
    return int(rows or 0), int(good or 0)


def lock_invalid(
    conn: Connection,
    table: str,
    start: dt.datetime,
    end: dt.datetime,
    rules: Sequence[Rule],
    *,
    unique_key: Sequence[str],
) -> dict[int, str]:
    """Row id -> first rule it breaks, for rows created in [start, end), locked (FOR UPDATE)
    until the caller commits or rolls back; duplicates (rows equal on every ``unique_key``
    column, NULL equal to NULL): every copy but the first, as ``unique_result``."""
    invalid: dict[int, str] = {}
    with conn.cursor() as cur:
        for rule, predicate, params in rules:
            cur.execute(
                f"SELECT id FROM {table} WHERE create_time >= %s AND create_time < %s AND {predicate} "  # noqa: S608
                "FOR UPDATE",
                [start, end, *params],
            )
            for (row_id,) in cur.fetchall():
                invalid.setdefault(int(row_id), rule)
        same = " AND ".join(f"d.`{column}` <=> s.`{column}`" for column in unique_key)
        cur.execute(
            # the element index is forced: on statistics of a freshly filled table MariaDB 10.11
            # compared every row of the hour with every other (a block nested loop)
            f"SELECT DISTINCT s.id FROM {table} s JOIN {table} d FORCE INDEX (idx_result_element) "  # noqa: S608
            f"ON {same} AND d.id < s.id "
            "AND d.create_time >= %s AND d.create_time < %s "
            "WHERE s.create_time >= %s AND s.create_time < %s FOR UPDATE",
            (start, end, start, end),
        )
        for (row_id,) in cur.fetchall():
            invalid.setdefault(int(row_id), "unique_result")
    return invalid


def quarantine(conn: Connection, table: str, by_rule: dict[str, list[int]], *, dag_run_id: str | None) -> int:
    """Copy the rows to ``<table>_quarantine`` with their rule, then delete them by id, in the
    caller's transaction (the caller commits); a chunk that does not move whole rolls back
    and raises, so rows in main + quarantine always equal the rows before."""
    moved, columns = 0, result_columns(table)
    with conn.cursor() as cur:
        for rule, ids in by_rule.items():
            for chunk in batched(ids, 1000):
                marks = ", ".join(["%s"] * len(chunk))
                cur.execute(
                    f"INSERT INTO {table}_quarantine ({columns}, failed_rule, dag_run_id) "  # noqa: S608
                    f"SELECT {columns}, %s, %s FROM {table} WHERE id IN ({marks})",
                    [rule, dag_run_id, *chunk],
                )
                copied = cur.rowcount
                cur.execute(f"DELETE FROM {table} WHERE id IN ({marks})", chunk)  # noqa: S608
                if copied != len(chunk) or cur.rowcount != len(chunk):
                    conn.rollback()
                    raise RuntimeError(f"quarantine of {rule} moved {copied}/{cur.rowcount} of {len(chunk)} rows")
                moved += copied
    return moved


def quarantined_ids(conn: Connection, table: str, rule: str) -> list[int]:
    """Ids of ``<table>_quarantine`` rows held for ``rule``, locked for the caller's transaction."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT id FROM {table}_quarantine WHERE failed_rule = %s ORDER BY id FOR UPDATE",  # noqa: S608
            (rule,),
        )
        return [int(row[0]) for row in cur.fetchall()]


def release(conn: Connection, table: str, ids: Sequence[int]) -> int:
    """Move quarantined rows back into ``table`` (their own ids), in the caller's transaction
    (the caller commits): quarantine's reverse, rows conserved or nothing moves."""
    moved, columns = 0, result_columns(table)
    with conn.cursor() as cur:
        for chunk in batched(ids, 1000):
            marks = ", ".join(["%s"] * len(chunk))
            cur.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_quarantine "  # noqa: S608
                f"WHERE id IN ({marks})",
                list(chunk),
            )
            copied = cur.rowcount
            cur.execute(f"DELETE FROM {table}_quarantine WHERE id IN ({marks})", list(chunk))  # noqa: S608
            if copied != len(chunk) or cur.rowcount != len(chunk):
                conn.rollback()
                raise RuntimeError(f"release into {table} moved {copied}/{cur.rowcount} of {len(chunk)} rows")
            moved += copied
    return moved


def incomplete_counts(
    conn: Connection, table: str, start: dt.datetime, end: dt.datetime, required: Sequence[str]
) -> tuple[dict[str, int], int]:
    """Rows created in [start, end) lacking any ``required`` column: (NULLs per column, rows)."""
    missing = " OR ".join(f"`{c}` IS NULL" for c in required)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(f'SUM(`{c}` IS NULL)' for c in required)}, COUNT(*) FROM {table} "  # noqa: S608
            f"WHERE create_time >= %s AND create_time < %s AND ({missing})",
            (start, end),
        )
        *nulls, rows = cur.fetchone()
    return {c: int(n) for c, n in zip(required, nulls, strict=True) if n}, int(rows or 0)


def incomplete_by_element(
    conn: Connection, table: str, start: dt.datetime, end: dt.datetime, *, required: Sequence[str], keys: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Those rows grouped by their task and ``keys`` columns: (task_id, *keys, rows, newest create_time)."""
    missing = " OR ".join(f"`{c}` IS NULL" for c in required)
    columns = ", ".join(keys)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT task_id, {columns}, COUNT(*), MAX(create_time) FROM {table} "  # noqa: S608
            f"WHERE create_time >= %s AND create_time < %s AND ({missing}) GROUP BY task_id, {columns}",
            (start, end),
        )
        return list(cur.fetchall())


def insert_rows(
    conn: Connection, table: str, rows: Sequence[tuple[Any, ...]], clock: Callable[[], dt.datetime] | None = None
) -> None:
    """Results as a crawler writes them (the crawl object's ``written_columns``, in that order;
    ``clock``: their create_time)."""
    written = objects.for_table(table).written_columns
    columns = ", ".join(f"`{c}`" for c in written)
    marks = ", ".join(["%s"] * len(written))
    with conn.cursor() as cur:
        if clock is None:
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608
        else:
            cur.executemany(
                f"INSERT INTO {table} ({columns}, create_time) VALUES ({marks}, %s)",  # noqa: S608
                [(*row, clock().replace(tzinfo=None)) for row in rows],
            )
    conn.commit()


def rows_of_tasks(
    conn: Connection, table: str, task_ids: Sequence[str], *, extra: Sequence[str] = ()
) -> list[tuple[Any, ...]]:
    """The tasks' rows in ``table`` as ``(*unique_key, *extra, create_time)``: the crawl object's
    unique key (``task_id``, the element's columns, the position where it has one: for
    ``search_result`` task_id, keyword, marketplace, page, position), then the ``extra``
    columns asked for (its written columns only), then ``create_time`` (for checking a worker
    against a small, known set of tasks)."""
    if not task_ids:
        return []
    crawl_object = objects.for_table(table)
    unknown = [c for c in extra if c not in crawl_object.written_columns]
    if unknown:
        raise ValueError(f"{table} has no written columns {unknown}")
    columns = ", ".join(f"`{c}`" for c in (*crawl_object.unique_key, *extra, "create_time"))
    marks = ", ".join(["%s"] * len(task_ids))
    with conn.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM {table} WHERE task_id IN ({marks})", list(task_ids))  # noqa: S608
        rows = list(cur.fetchall())
    conn.commit()
    return rows


# --- retention ---------------------------------------------------------------------------------


def expiry(table: str) -> Expiry:
    """A results table's rows expire by ``create_time``, its quarantine's by ``quarantined_at``
    (both indexed: idx_result_create_time, idx_quarantine_time)."""
    return Expiry(table, "quarantined_at" if table.endswith("_quarantine") else "create_time")
