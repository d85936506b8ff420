"""Versioned schema migrations, applied at deploy, never inside a DAG run.

Migrations are the numbered files ``include/sql/migrations/NNNN_name.sql``, applied in
order by ``migrate``; the table ``crawlops_schema_version`` holds one row per migration
applied. Migration 1 is the baseline (every table, ``CREATE TABLE IF NOT EXISTS``), and on
a database older than versioning it also adds the columns and indexes its tables lack.

    python -m crawlops.migrations            # apply what is pending (make schema does this)
    python -m crawlops.migrations --check    # exit 1 when the database is behind

MySQL commits each DDL statement on its own, so a migration stopped halfway is simply run
again: a statement that already took effect (a column, key or table that exists) is
skipped. ``migrate`` holds a named lock, so two deploys never migrate at once. The DAGs
only call ``check``: a database behind the package fails the run at once, saying what to run.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from pathlib import Path

from crawlops.db import Connection, Cursor, named_lock, sql_statements
from crawlops.settings import include_dir

log = logging.getLogger(__name__)

VERSION_TABLE = "crawlops_schema_version"
_LOCK = "crawlops:migrate"
_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
# Errors a statement that already took effect gives on a second run: table exists,
# duplicate column, duplicate key name.
_ALREADY_DONE = {1050, 1060, 1061}


class SchemaBehind(RuntimeError):
    """The database's schema is older than this package needs."""


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def migrations(directory: Path | None = None) -> list[Migration]:
    """The migration files, in version order (numbers must run 1, 2, 3... without gaps)."""
    found = []
    for path in sorted((directory or include_dir() / "sql" / "migrations").glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise ValueError(f"{path}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise ValueError(f"migration numbers must run 1..{len(found)} without gaps: {[m.version for m in found]}")
    return found


def expected_version() -> int:
    return migrations()[-1].version


def current_version(conn: Connection) -> int:
    """The newest migration applied to the database (0: none, or a database older than versioning)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (VERSION_TABLE,),
        )
        if not cur.fetchone()[0]:
            return 0
        cur.execute(f"SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}")  # noqa: S608 - a constant
        return int(cur.fetchone()[0])


def check(conn: Connection) -> int:
    """The database's schema version; raises ``SchemaBehind`` when migrations are pending."""
    current, expected = current_version(conn), expected_version()
    if current < expected:
        pending = ", ".join(f"{m.version:04d}_{m.name}" for m in migrations() if m.version > current)
        raise SchemaBehind(
            f"database schema is at version {current}, this package needs {expected} (pending: {pending}); "
            "apply them at deploy: python -m crawlops.migrations (make schema)"
        )
    if current > expected:
        log.warning("database schema version %d is newer than this package's %d", current, expected)
    return current


def migrate(conn: Connection, *, lock_timeout_seconds: int = 600) -> list[str]:
    """Apply every pending migration in order; returns the ones applied (``NNNN_name``)."""
    applied = []
    with named_lock(conn, _LOCK, lock_timeout_seconds):
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INT UNSIGNED NOT NULL, "
                "name VARCHAR(128) NOT NULL, applied_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, "
                "PRIMARY KEY (version)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
            )
        current = current_version(conn)
        for migration in migrations():
            if migration.version <= current:
                continue
            log.info("applying migration %04d_%s", migration.version, migration.name)
            with conn.cursor() as cur:
                for statement in sql_statements(migration.path):
                    _execute(cur, statement)
                if migration.version == 1:
                    _upgrade_unversioned(cur)
                cur.execute(
                    f"INSERT INTO {VERSION_TABLE} (version, name) VALUES (%s, %s)",  # noqa: S608 - a constant
                    (migration.version, migration.name),
                )
            conn.commit()
            applied.append(f"{migration.version:04d}_{migration.name}")
    log.info("schema at version %d; applied now: %s", current_version(conn), applied or "nothing")
    return applied


def _execute(cur: Cursor, statement: str) -> None:
    try:
        cur.execute(statement)
    except Exception as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code not in _ALREADY_DONE:
            raise
        log.info("already in place, skipped: %s (%s)", statement.splitlines()[0][:100], exc.args[-1])


# What a database older than versioning may lack (columns and indexes added before the
# baseline): (table, name, ALTER clause). CREATE TABLE IF NOT EXISTS leaves an existing
# table alone, so migration 1 adds these where missing; MySQL 8 has no ADD COLUMN IF NOT
# EXISTS, hence the information_schema check. Later changes are numbered migration files.
COLUMN_MIGRATIONS: tuple[tuple[str, str, str], ...] = (
    (
        "amazon_search_result",
        "create_hour",
        "ADD COLUMN create_hour DATETIME GENERATED ALWAYS AS "
        "(CAST(DATE(create_time) AS DATETIME) + INTERVAL HOUR(create_time) HOUR) STORED",
    ),
    ("amazon_alert", "window_start", "ADD COLUMN window_start DATETIME NOT NULL DEFAULT '1970-01-01 00:00:00'"),
    ("amazon_alert", "window_end", "ADD COLUMN window_end DATETIME NOT NULL DEFAULT '1970-01-01 00:00:00'"),
    # empty answers and settled outcomes (every element answered, retried or Dead)
    ("amazon_task_element", "empty_at", "ADD COLUMN empty_at DATETIME NULL"),
    ("amazon_task_information", "answered_count", "ADD COLUMN answered_count INT UNSIGNED NULL AFTER finished_at"),
    ("amazon_task_information", "empty_count", "ADD COLUMN empty_count INT UNSIGNED NULL AFTER answered_count"),
    ("amazon_task_information", "lost_count", "ADD COLUMN lost_count INT UNSIGNED NULL AFTER empty_count"),
    ("amazon_validation_run", "first_success", "ADD COLUMN first_success TINYINT(1) NULL"),
    ("amazon_validation_run", "verdict", "ADD COLUMN verdict VARCHAR(16) NULL"),
    ("amazon_validation_run", "quality_score", "ADD COLUMN quality_score DOUBLE NULL"),
    ("amazon_alert", "resolved_at", "ADD COLUMN resolved_at DATETIME NULL"),
    ("amazon_daily_report", "sent_at", "ADD COLUMN sent_at DATETIME NULL"),
    ("amazon_daily_report", "send_error", "ADD COLUMN send_error TEXT NULL"),
    # last: its arrival settles the tasks that finished before it (see _settle_existing)
    ("amazon_task_information", "settled_at", "ADD COLUMN settled_at DATETIME NULL AFTER finished_at"),
)
INDEX_MIGRATIONS: tuple[tuple[str, str, str], ...] = (
    ("amazon_search_result", "idx_result_create_hour", "ADD KEY idx_result_create_hour (create_hour)"),
    ("amazon_alert", "uq_alert_window", "ADD UNIQUE KEY uq_alert_window (fingerprint, window_start)"),
    # the Crawl Ops page: a check's findings per hour, and suite verdicts by time
    ("amazon_alert", "idx_alert_check_window", "ADD KEY idx_alert_check_window (check_name, window_start, window_end)"),
    ("amazon_validation_run", "idx_validation_time", "ADD KEY idx_validation_time (window_start)"),
    ("amazon_task_information", "idx_task_settled", "ADD KEY idx_task_settled (settled_at, task_status)"),
    ("amazon_search_result", "idx_result_market_time", "ADD KEY idx_result_market_time (marketplace, create_time)"),
    # an element whose rows were quarantined was answered (settling and the invariant look it up)
    (
        "amazon_search_result_quarantine",
        "idx_quarantine_element",
        "ADD KEY idx_quarantine_element (task_id, page, keyword(100))",
    ),
)


def _settle_existing(cur: Cursor) -> None:
    """Tasks that finished before settling existed: Dead ones, retried ones and those finished
    over a day ago are final; recent unretried ones stay open to the settle step."""
    cur.execute(
        "UPDATE amazon_task_information t LEFT JOIN amazon_task_information r "
        "ON r.task_id = CONCAT(t.task_id, '_fail') "
        "SET t.settled_at = COALESCE(t.finished_at, t.updated_at) WHERE t.task_status = 'Dead' "
        "OR (t.task_status IN ('Completed', 'Failed') AND "
        "(r.task_id IS NOT NULL OR t.finished_at < UTC_TIMESTAMP() - INTERVAL 1 DAY))"
    )
    log.info("settled %d tasks that finished before settling existed", cur.rowcount)


def _rekey_manifest(cur: Cursor) -> None:
    """Manifests made before ``seq`` existed were keyed on (task_id, element_hash): number their
    rows per task and move the clustered key to (task_id, seq), keeping the hash unique."""
    cur.execute(
        "SELECT COUNT(*) FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'amazon_task_element' AND COLUMN_NAME = 'seq'"
    )
    if cur.fetchone()[0]:
        return
    log.info("re-keying amazon_task_element on (task_id, seq)")
    cur.execute("ALTER TABLE amazon_task_element ADD COLUMN seq INT UNSIGNED NOT NULL DEFAULT 0 AFTER task_id")
    cur.execute("SET @seq := 0, @task := ''")
    cur.execute(
        "UPDATE amazon_task_element "
        "SET seq = (@seq := IF(@task = task_id, @seq + 1, 1)) + 0 * LENGTH(@task := task_id) "
        "ORDER BY task_id, element_hash"
    )
    cur.execute(
        "ALTER TABLE amazon_task_element DROP PRIMARY KEY, ADD PRIMARY KEY (task_id, seq), "
        "ADD UNIQUE KEY uq_task_element (task_id, element_hash), ALTER COLUMN seq DROP DEFAULT"
    )


def _upgrade_unversioned(cur: Cursor) -> None:
    """Bring the tables of a database older than versioning to the baseline."""
    _rekey_manifest(cur)
    # A config target may be anything a person pastes (a 1 MB string is stored and skipped
    # as oversized, not refused by the database).
    cur.execute(
        "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_NAME = 'amazon_crawl_config' AND COLUMN_NAME = 'target'"
    )
    if (cur.fetchone() or [""])[0].lower() == "text":
        cur.execute("ALTER TABLE amazon_crawl_config MODIFY target MEDIUMTEXT NULL")
    for view, column, changes in (
        ("COLUMNS", "COLUMN_NAME", COLUMN_MIGRATIONS),
        ("STATISTICS", "INDEX_NAME", INDEX_MIGRATIONS),
    ):
        for table, name, clause in changes:
            cur.execute(
                f"SELECT COUNT(*) FROM information_schema.{view} "  # noqa: S608 - constants above
                f"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND {column} = %s",
                (table, name),
            )
            if cur.fetchone()[0] == 0:
                log.info("adding %s.%s", table, name)
                cur.execute(f"ALTER TABLE {table} {clause}")
                if (table, name) == ("amazon_task_information", "settled_at"):
                    _settle_existing(cur)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from crawlops.db import connect

    parser = argparse.ArgumentParser(prog="python -m crawlops.migrations", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when migrations are pending")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    conn = connect()
    try:
        if args.check:
            print(f"schema at version {check(conn)}")
            return 0
        applied = migrate(conn)
        print(f"schema at version {current_version(conn)}; applied: {', '.join(applied) or 'nothing'}")
        return 0
    except SchemaBehind as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
