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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crawlops import store
from crawlops.db import Connection
from crawlops.settings import include_dir

STARTER_CONFIG = include_dir() / "config" / "starter_config.toml"
# The columns a file names, in this order (those of crawlops.store.add_config_rows).
COLUMNS = ("crawl_object", "target", "marketplace", "frequency", "priority", "max_pages")


def read_rows(path: Path = STARTER_CONFIG) -> list[tuple[Any, ...]]:
    """The file's rows, in COLUMNS order; ValueError names what is wrong with the file."""
    raw = tomllib.loads(Path(path).read_text("utf-8"))
    columns = tuple(raw.get("columns", ()))
    if columns != COLUMNS:
        raise ValueError(f"{path}: columns must be {list(COLUMNS)}, got {list(columns)}")
    rows = raw.get("rows", [])
    for number, row in enumerate(rows, 1):
        if not isinstance(row, list) or len(row) != len(COLUMNS):
            raise ValueError(f"{path}: row {number} has not {len(COLUMNS)} values: {row!r}")
    return [tuple(row) for row in rows]


def load_if_empty(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert ``rows`` when ``amazon_crawl_config`` has none; the number inserted (0: left alone)."""
    if not rows or store.count_config_rows(conn):
        return 0
    store.add_config_rows(conn, rows, only=False)
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
        rows = read_rows(args.file)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(exc, file=sys.stderr)
        return 2
    conn = connect()
    try:
        loaded = load_if_empty(conn, rows)
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
