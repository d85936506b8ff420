"""The ledger's check of the package's promise: no dispatched element is lost.

``element_fates`` runs ``include/sql/invariant.sql`` and counts every element of every root
task by how it ended: ``answered`` (result rows), ``empty`` (answered, nothing found),
``open retry`` (held by an open task of its chain), ``dead`` (in a Dead task) or ``LOST``.
``python -m crawlops.invariant`` prints the counts for the database in CRAWLOPS_MYSQL_URL
and exits 1 when any element is LOST.
"""

from __future__ import annotations

import sys

from crawlops.db import Connection, sql_statements
from crawlops.settings import include_dir

FATES = ("answered", "empty", "open retry", "dead", "LOST")


def element_fates(conn: Connection) -> dict[str, int]:
    """Elements of root tasks per fate (every fate present, zero when none)."""
    fates = dict.fromkeys(FATES, 0)
    with conn.cursor() as cur:
        for statement in sql_statements(include_dir() / "sql" / "invariant.sql"):
            cur.execute(statement)
            if statement.lstrip().upper().startswith("SELECT"):
                fates.update({str(fate): int(count) for fate, count in cur.fetchall()})
    conn.rollback()
    return fates


def main() -> int:
    from crawlops.db import connect

    fates = element_fates(connect())
    print("  ".join(f"{fate}: {count}" for fate, count in fates.items()))
    return 1 if fates["LOST"] else 0


if __name__ == "__main__":
    sys.exit(main())
