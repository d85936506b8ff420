"""The hour's rows judged one by one: the quality score, and invalid rows moved to quarantine."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from crawlops.db import Connection
from crawlops.findings import Finding, Level
from crawlops.model import Window
from crawlops.names import SUPERVISION_DAG as SOURCE
from crawlops.planning import crawl_object_for_table
from crawlops.settings import Settings
from crawlops.store import results

log = logging.getLogger(__name__)


def _rules(table: str, settings: Settings) -> list[results.Rule]:
    return results.validity_rules(table, settings.dispatch.marketplaces)


def quality_score(
    conn: Connection, table: str, window: Window, settings: Settings, required: Sequence[str]
) -> tuple[float | None, int]:
    """The share of the window's rows that pass every validity rule and have every required
    field (``required``), and the row count; no rows: (None, 0). A NULL fails only its
    required-field rule, like the suite counts it."""
    start, end = window.naive()
    rows, good = results.count_passing(conn, table, start, end, rules=_rules(table, settings), required=required)
    return (round(good / rows, 6) if rows else None), rows


def quality_score_finding(
    table: str, window: Window, score: float | None, rows: int, threshold: float
) -> list[Finding]:
    """An ERROR when the hour's quality score is below ``data_quality_threshold``."""
    if score is None or score >= threshold:
        return []
    return [
        Finding(
            Level.ERROR,
            SOURCE,
            "data_quality",
            f"{table} {window}: quality score {score:.1%} below {threshold:.0%} ({rows} rows)",
            subject=table,
            details={"score": score, "threshold": threshold, "rows": rows},
            action="invalid rows are quarantined by quarantine_invalid; rows missing required fields stay",
        )
    ]


def find_invalid_rows(conn: Connection, table: str, window: Window, settings: Settings) -> dict[int, str]:
    """Row id -> first rule it fails, for rows of the window (duplicates: every copy but the first),
    locked until the caller commits or rolls back."""
    start, end = window.naive()
    key = crawl_object_for_table(table).unique_key
    return results.lock_invalid(conn, table, start, end, _rules(table, settings), unique_key=key)


def quarantine_invalid(
    conn: Connection,
    table: str,
    window: Window,
    settings: Settings,
    *,
    dry_run: bool = False,
    dag_run_id: str | None = None,
) -> tuple[dict[str, Any], list[Finding]]:
    """Move the window's invalid rows to ``<table>_quarantine`` with their rule, in one transaction.

    The rows are locked when found, copied, then deleted by id, and the counts are checked
    before commit, so rows in main + quarantine always equal the rows before.
    """
    start, end = window.naive()
    rows = results.count_rows(conn, table, start, end)
    invalid = find_invalid_rows(conn, table, window, settings)
    by_rule: dict[str, list[int]] = {}
    for row_id, rule in sorted(invalid.items()):
        by_rule.setdefault(rule, []).append(row_id)
    if not dry_run and invalid:
        moved = results.quarantine(conn, table, by_rule, dag_run_id=dag_run_id)
        conn.commit()
        log.info("quarantined %d rows of %s: %s", moved, table, {k: len(v) for k, v in by_rule.items()})
    else:
        conn.rollback()  # release the row locks taken while looking
    error_rate = len(invalid) / rows if rows else 0.0
    counts = {rule: len(ids) for rule, ids in by_rule.items()}
    summary = {"rows": rows, "invalid": len(invalid), "by_rule": counts, "error_rate": round(error_rate, 5)}
    findings = []
    if invalid:
        over = error_rate > settings.quality.error_rate_max
        findings.append(
            Finding(
                Level.ERROR if over else Level.INFO,
                SOURCE,
                "invalid_data",
                f"{table}: {len(invalid)} invalid rows of {rows} ({error_rate:.2%}"
                + (f", above {settings.quality.error_rate_max:.0%})" if over else ")"),
                subject=table,
                details=summary,
                action=("would move" if dry_run else "moved") + f" them to {table}_quarantine with the failed rule",
            )
        )
    return summary, findings
