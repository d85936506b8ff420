"""Load crawl config rows (``amazon_crawl_config``) from a TOML file into an empty table.

    python -m crawlops.crawl_config load [FILE]   # default: include/config/starter_config.toml

The file names its ``columns`` once and lists ``rows`` of values in that order (see the starter
file). Rows are loaded only when the table is empty, so running it on every deploy (the compose
init step does) never duplicates or overwrites a configuration people have edited since.
Rows are inserted as written: malformed ones are skipped by dispatch with their reasons, as
any row of the table would be. The MySQL database is ``CRAWLOPS_MYSQL_URL`` (``crawlops.db.connect``).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

from crawlops.settings import include_dir

STARTER_CONFIG = include_dir() / "config" / "starter_config.toml"
COLUMNS = ("crawl_object", "target", "marketplace", "frequency", "priority", "max_pages", "enabled")
REQUIRED = ("crawl_object", "target", "marketplace", "frequency")


def read_rows(path: Path = STARTER_CONFIG) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The file's column names and rows; ValueError names what is wrong with the file."""
    raw = tomllib.loads(Path(path).read_text("utf-8"))
    columns = tuple(raw.get("columns", ()))
    rows = raw.get("rows", [])
    unknown = sorted(set(columns) - set(COLUMNS))
    missing = sorted(set(REQUIRED) - set(columns))
    if unknown or missing or len(set(columns)) != len(columns):
        raise ValueError(f"{path}: columns {list(columns)}: unknown {unknown}, missing {missing}, or repeated")
    for number, row in enumerate(rows, 1):
        if not isinstance(row, list) or len(row) != len(columns):
            raise ValueError(f"{path}: row {number} has not {len(columns)} values: {row!r}")
    return columns, [tuple(row) for row in rows]


def load_if_empty(conn, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> int:
    """Insert ``rows`` when ``amazon_crawl_config`` has none; the number inserted (0: left alone)."""
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM amazon_crawl_config")
        (existing,) = cur.fetchone()
        if existing or not rows:
            return 0
        cur.executemany(
            f"INSERT INTO amazon_crawl_config ({', '.join(columns)}) "  # noqa: S608 - names checked above
            f"VALUES ({', '.join(['%s'] * len(columns))})",
            rows,
        )
    conn.commit()
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from crawlops.db import connect

    parser = argparse.ArgumentParser(prog="python -m crawlops.crawl_config", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load", help="load the file's rows into an empty amazon_crawl_config")
    load.add_argument("file", nargs="?", type=Path, default=STARTER_CONFIG)
    args = parser.parse_args(argv)
    try:
        columns, rows = read_rows(args.file)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(exc, file=sys.stderr)
        return 2
    conn = connect()
    try:
        loaded = load_if_empty(conn, columns, rows)
    finally:
        conn.close()
    if loaded:
        print(f"amazon_crawl_config: {loaded} rows loaded from {args.file}")
    elif rows:
        print("amazon_crawl_config already has rows: nothing loaded")
    else:
        print(f"{args.file} has no rows: nothing loaded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
