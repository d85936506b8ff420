"""MySQL helpers shared by the stores: session setup, named locks, batching.

The package takes DB-API connections from its caller (the Airflow adapters build them
with MySqlHook from the ``crawl_mysql`` connection; tests and benchmarks use ``connect``).
All SQL is parameterized with ``%s`` placeholders.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

T = TypeVar("T")


class Cursor(Protocol):
    """The DB-API cursor the package uses (MySQLdb's satisfies it)."""

    rowcount: int

    def execute(self, query: str, args: Any = None, /) -> Any: ...
    def executemany(self, query: str, args: Any, /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...
    def fetchmany(self, size: int = ..., /) -> Any: ...
    def close(self) -> None: ...
    def __enter__(self) -> Cursor: ...
    def __exit__(self, *exc: object) -> Any: ...


class Connection(Protocol):
    """A MySQL connection as the package uses it (a ``MySQLdb`` connection made by ``prepare``)."""

    def cursor(self, cursorclass: Any = None, /) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


def prepare(conn: Any) -> Connection:
    """Make a connection speak utf8mb4 and UTC and read committed data, whatever the server's defaults.

    READ COMMITTED: each statement sees what other runs committed before it, so a step
    never decides from a snapshot older than the lock it just took.
    """
    conn.set_character_set("utf8mb4")
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    return conn


def connect(url: str | None = None) -> Connection:
    """Open a MySQLdb connection from a ``mysql://user:pass@host:port/db`` URL.

    Defaults to ``CRAWLOPS_MYSQL_URL``, then to the local server's ``crawl`` database.
    """
    import MySQLdb

    parts = urlsplit(url or os.environ.get("CRAWLOPS_MYSQL_URL", "mysql://root@127.0.0.1:3306/crawl"))
    conn = MySQLdb.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        passwd=unquote(parts.password or ""),
        db=parts.path.lstrip("/"),
        charset="utf8mb4",
    )
    return prepare(conn)


def delete_batch(conn: Connection, sql: str, params: Sequence[Any]) -> int:
    """One bounded DELETE (``sql`` carries its LIMIT) as its own short transaction; the rows it deleted."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        deleted = int(cur.rowcount)
    conn.commit()
    return deleted


@dataclasses.dataclass(frozen=True)
class Expiry:
    """How one table's rows expire: by ``column``, one value of ``per`` at a time when the
    table's index on ``column`` is headed by ``per`` (see ``purge_expired``). Declared by the
    store module that owns the table."""

    table: str
    column: str
    per: str | None = None

    def purge(self, conn: Connection, before: Any, *, limit: int) -> int:
        """Delete up to ``limit`` rows older than ``before``, oldest first, in one short
        transaction; the rows deleted."""
        return purge_expired(conn, self.table, self.column, before, limit, per=self.per)

    def count(self, conn: Connection, before: Any) -> int:
        """Rows older than ``before``."""
        return count_expired(conn, self.table, self.column, before, per=self.per)


def purge_expired(conn: Connection, table: str, column: str, before: Any, limit: int, *, per: str | None = None) -> int:
    """Delete up to ``limit`` rows of ``table`` whose ``column`` is before ``before``, oldest
    first, in one short transaction; the rows deleted.

    ``per``: the column that heads the table's index before ``column``; the rows then go one of
    its values at a time, each DELETE a range of that index. ``table`` and the columns are
    constants of the calling store module, never input.
    """
    deleted = 0
    with conn.cursor() as cur:
        for where, params in _expired_ranges(cur, table, column, before, per):
            if deleted >= limit:
                break
            cur.execute(f"DELETE FROM {table} WHERE {where} ORDER BY {column} LIMIT %s", (*params, limit - deleted))  # noqa: S608
            deleted += int(cur.rowcount)
    conn.commit()
    return deleted


def count_expired(conn: Connection, table: str, column: str, before: Any, *, per: str | None = None) -> int:
    """The rows ``purge_expired`` with the same arguments would delete, with no limit."""
    total = 0
    with conn.cursor() as cur:
        for where, params in _expired_ranges(cur, table, column, before, per):
            cur.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)  # noqa: S608 - constants
            total += int(cur.fetchone()[0])
    return total


def _expired_ranges(
    cur: Cursor, table: str, column: str, before: Any, per: str | None
) -> list[tuple[str, tuple[Any, ...]]]:
    """The conditions of the expired rows: one, or one per value of ``per`` (read by a loose index scan)."""
    if per is None:
        return [(f"{column} < %s", (before,))]
    cur.execute(f"SELECT DISTINCT {per} FROM {table} ORDER BY {per}")  # noqa: S608 - constants
    return [(f"{per} = %s AND {column} < %s", (key, before)) for (key,) in cur.fetchall()]


def marks(values: Sequence[Any]) -> str:
    """``%s, %s, ...``: one placeholder per value, for an ``IN (...)`` list."""
    return ", ".join(["%s"] * len(values))


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class LockTimeout(RuntimeError):
    """Another run holds the lock for longer than the configured wait."""


# A named lock is server-wide: scope it to the database, so two installations (or test
# sessions) on one server never wait on each other. MySQL caps lock names at 64 characters.
_SCOPED = "LEFT(CONCAT(IFNULL(DATABASE(), ''), '/', %s), 64)"


@contextlib.contextmanager
def named_lock(conn: Connection, name: str, timeout_seconds: int) -> Iterator[None]:
    """Hold a named lock of this database, so concurrent DAG runs take turns on shared state."""
    conn.commit()  # end any open transaction: what follows must see the previous holder's writes
    with conn.cursor() as cur:
        cur.execute(f"SELECT GET_LOCK({_SCOPED}, %s)", (name, timeout_seconds))
        (got,) = cur.fetchone()
    if got != 1:
        raise LockTimeout(f"could not take lock {name!r} within {timeout_seconds}s")
    try:
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute(f"SELECT RELEASE_LOCK({_SCOPED})", (name,))
            cur.fetchall()


def sql_statements(path: Path) -> list[str]:
    """The statements of a SQL file: ``--`` comment lines dropped, split on a semicolon at the end of a line."""
    lines = [line for line in path.read_text("utf-8").splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE) if stmt.strip()]
