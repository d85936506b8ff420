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


def apply_schema(conn: Any, path: Path | None = None) -> list[str]:
    """Create every missing table; existing tables are left as they are. Returns the table names."""
    tables = []
    with conn.cursor() as cur:
        for statement in schema_statements(path):
            cur.execute(statement)
            match = _TABLE_NAME.search(statement)
            if match:
                tables.append(match.group(1))
    conn.commit()
    log.info("schema applied: %s", ", ".join(tables))
    return tables
