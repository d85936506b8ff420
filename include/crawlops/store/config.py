"""The config rows tasks are planned from: ``amazon_crawl_config``."""

from __future__ import annotations

from collections.abc import Sequence

from crawlops.db import Connection
from crawlops.planning import ConfigRow


def load_config_rows(conn: Connection) -> list[ConfigRow]:
    """Every enabled row, as stored; validation decides what is usable."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, crawl_object, target, marketplace, frequency, priority, max_pages "
            "FROM amazon_crawl_config WHERE enabled = 1 ORDER BY id"
        )
        return [ConfigRow(*row) for row in cur.fetchall()]


def count_config_rows(conn: Connection) -> int:
    """Every row, enabled or not."""
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM amazon_crawl_config")
        return int(cur.fetchone()[0])


def add_config_rows(conn: Connection, rows: Sequence[tuple[str, str, str, str, int, int]], *, only: bool) -> None:
    """Insert config rows (crawl_object, target, marketplace, frequency, priority, max_pages);
    ``only``: disable every other row first."""
    with conn.cursor() as cur:
        if only:
            cur.execute("UPDATE amazon_crawl_config SET enabled = 0")
        cur.executemany(
            "INSERT INTO amazon_crawl_config (crawl_object, target, marketplace, frequency, priority, max_pages) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )
    conn.commit()


def enabled_crawl_objects(conn: Connection) -> set[str]:
    """The crawl objects of enabled config rows (``idx_config_enabled``: an index range)."""
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT crawl_object FROM amazon_crawl_config WHERE enabled = 1")
        return {str(name).strip().lower() for (name,) in cur.fetchall() if name}
