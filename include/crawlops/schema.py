"""Apply the package's DDL (include/sql/schema.sql) idempotently."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from crawlops.settings import include_dir

log = logging.getLogger(__name__)

_TABLE_NAME = re.compile(r"CREATE TABLE IF NOT EXISTS\s+(\w+)", re.IGNORECASE)


def schema_statements(path: Path | None = None) -> list[str]:
    """The DDL statements, comments dropped, split on a semicolon at the end of a line."""
    text = (path or include_dir() / "sql" / "schema.sql").read_text("utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE) if stmt.strip()]


# Columns and indexes added after a table's first release: (table, name, ALTER clause).
# CREATE TABLE IF NOT EXISTS leaves an existing table alone, so these bring older tables up
# to date; MySQL 8 has no ADD COLUMN IF NOT EXISTS, hence the information_schema check.
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
    ("amazon_task_element", "recrawl_at", "ADD COLUMN recrawl_at DATETIME NULL AFTER empty_at"),
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


def _settle_existing(cur: Any) -> None:
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


def _rekey_manifest(cur: Any) -> None:
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


def apply_schema(conn: Any, path: Path | None = None) -> list[str]:
    """Create every missing table, then add missing columns and indexes. Returns the table names."""
    tables = []
    with conn.cursor() as cur:
        for statement in schema_statements(path):
            cur.execute(statement)
            match = _TABLE_NAME.search(statement)
            if match:
                tables.append(match.group(1))
        _rekey_manifest(cur)
        # A config target may be anything a person pastes (a 1 MB string is stored and skipped
        # as oversized, not refused by the database).
        cur.execute(
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = 'amazon_crawl_config' AND COLUMN_NAME = 'target'"
        )
        if (cur.fetchone() or [""])[0].lower() == "text":
            cur.execute("ALTER TABLE amazon_crawl_config MODIFY target MEDIUMTEXT NULL")
        for view, column, migrations in (
            ("COLUMNS", "COLUMN_NAME", COLUMN_MIGRATIONS),
            ("STATISTICS", "INDEX_NAME", INDEX_MIGRATIONS),
        ):
            for table, name, clause in migrations:
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
    conn.commit()
    log.info("schema applied: %s", ", ".join(tables))
    return tables
