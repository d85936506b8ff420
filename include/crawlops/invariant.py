"""The ledger's check of the package's promise: no dispatched element is lost.

``element_fates`` counts every element of every root task by how it ended: ``answered``
(result rows in its retry chain, in its crawl object's results table or quarantine),
``empty`` (reported through ``<task_id>_empty`` anywhere in the chain), ``open retry``
(held by an open task of its chain, waiting or in a retry), ``dead`` (in a Dead task of its
chain) or else ``LOST``. ``python -m crawlops.invariant`` prints the counts for the database
in CRAWLOPS_MYSQL_URL and exits 1 when any element is LOST; ``--sql`` prints the statement.

It reads MySQL only: elements still waiting in a ``<task_id>_fail`` set before status sync
and settling have turned them into a retry, or taken by a worker inside the grace period,
count as LOST until then. The chain of a root is every task with that ``root_task_id``; each
test is an index lookup per element (``idx_task_root``, ``idx_result_element``,
``idx_quarantine_element``, ``uq_task_element``), so the cost grows with the manifest, not
with the results tables. The answered tests come from the crawl-object registry: one per
object, on its own tables and result keys.
"""

from __future__ import annotations

import sys

from crawlops import objects
from crawlops.db import Connection

FATES = ("answered", "empty", "open retry", "dead", "LOST")


def _answered(crawl_object: objects.CrawlObject) -> str:
    matches = " AND ".join(f"s.{column} = e.{field}" for field, column in crawl_object.result_keys.items())
    return " OR ".join(
        f"EXISTS (SELECT 1 FROM amazon_task_information c JOIN {table} s ON s.task_id = c.task_id AND {matches} "  # noqa: S608 - registry names
        "WHERE c.root_task_id = e.task_id)"
        for table in (crawl_object.results_table, crawl_object.quarantine_table)
    )


def fates_sql() -> str:
    """The statement: elements of root tasks per fate (names come from the registry, never input)."""
    answered = "".join(
        f"        WHEN r.task_type = '{name}' AND ({_answered(o)}) THEN 'answered'\n"
        for name, o in sorted(objects.REGISTRY.items())
    )
    chain = (
        "EXISTS (SELECT 1 FROM amazon_task_information c JOIN amazon_task_element m "
        "ON m.task_id = c.task_id AND m.element_hash = e.element_hash WHERE c.root_task_id = e.task_id AND "
    )
    return (
        "SELECT fate, COUNT(*) AS elements FROM (\n    SELECT CASE\n"  # noqa: S608 - registry names
        + answered
        + f"        WHEN {chain}m.empty_at IS NOT NULL) THEN 'empty'\n"
        + f"        WHEN {chain}c.task_status IN ('Pending', 'In Progress')) THEN 'open retry'\n"
        + f"        WHEN {chain}c.task_status = 'Dead') THEN 'dead'\n"
        + "        ELSE 'LOST' END AS fate\n"
        "    FROM amazon_task_element e\n"
        "    JOIN amazon_task_information r ON r.task_id = e.task_id AND r.task_source IS NULL\n"
        ") judged GROUP BY fate"
    )


def element_fates(conn: Connection) -> dict[str, int]:
    """Elements of root tasks per fate (every fate present, zero when none)."""
    fates = dict.fromkeys(FATES, 0)
    with conn.cursor() as cur:
        cur.execute(fates_sql())
        fates.update({str(fate): int(count) for fate, count in cur.fetchall()})
    conn.rollback()
    return fates


def main(argv: list[str] | None = None) -> int:
    from crawlops.db import connect

    if "--sql" in (sys.argv[1:] if argv is None else argv):
        print(fates_sql() + ";")
        return 0
    fates = element_fates(connect())
    print("  ".join(f"{fate}: {count}" for fate, count in fates.items()))
    return 1 if fates["LOST"] else 0


if __name__ == "__main__":
    sys.exit(main())
