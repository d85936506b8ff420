"""Schema drift: a results table's columns and types against what its suite expects."""

from __future__ import annotations

import logging
from typing import Any

from crawlops.db import Connection
from crawlops.findings import Finding, Level
from crawlops.names import SUPERVISION_DAG as SOURCE

log = logging.getLogger(__name__)


TYPE_FAMILIES = {
    "string": {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"},
    "numeric": {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double"},
    "datetime": {"datetime", "timestamp", "date"},
}


def suite_schema_check(conn: Connection, table: str, suite: str) -> tuple[dict[str, Any], list[Finding]]:
    """``check_schema_drift`` against the columns the suite file (in ``include/expectations/``) expects."""
    from crawlops import validation

    expected = validation.expected_columns(validation.load_suite(validation.suite_path(suite)))
    return {"expected_columns": expected}, check_schema_drift(conn, table, expected)


def check_schema_drift(conn: Connection, table: str, expected: dict[str, str]) -> list[Finding]:
    """An ERROR naming each expected column that is missing or no longer of its type family."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (table,),
        )
        actual = {name.lower(): data_type.lower() for name, data_type in cur.fetchall()}
    findings = []
    for column, family in expected.items():
        data_type = actual.get(column.lower())
        if data_type is None:
            title = f"{table}.{column} is missing (the suite expects a {family} column)"
        elif data_type not in TYPE_FAMILIES[family]:
            title = f"{table}.{column} is {data_type}, the suite expects a {family} column"
        else:
            continue
        findings.append(
            Finding(
                Level.ERROR,
                SOURCE,
                "schema_drift",
                title,
                subject=f"{table}.{column}",
                details={"expected": family, "actual": data_type},
            )
        )
    return findings
