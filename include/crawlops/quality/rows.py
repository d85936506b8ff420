"""The hour's rows judged one by one: the quality score, and invalid rows moved to quarantine."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from crawlops.alerts import Finding, Level
from crawlops.db import Connection, batched
from crawlops.model import Window
from crawlops.names import SUPERVISION_DAG as SOURCE
from crawlops.settings import Settings

log = logging.getLogger(__name__)


RESULT_COLUMNS = (
    "id, task_id, keyword, marketplace, asin, title, price, currency, rating, review_count, page, position, create_time"
)


ASIN_PATTERN = "^B0[0-9A-Z]{8}$"


def _rules(settings: Settings) -> list[tuple[str, str, list[Any]]]:
    """(rule name, SQL predicate on a results row, its parameters); the names match the suite's."""
    markets = list(settings.dispatch.marketplaces)
    return [
        ("price_non_negative", "price < 0", []),
        ("rating_range", "(rating < 0 OR rating > 5)", []),
        # utf8mb4_bin: REGEXP under a _ci collation would accept lower-case ASINs.
        ("asin_format", "asin COLLATE utf8mb4_bin NOT REGEXP %s", [ASIN_PATTERN]),
        ("marketplace_known", "marketplace NOT IN (" + ", ".join(["%s"] * len(markets)) + ")", markets),
    ]


def quality_score(
    conn: Connection, table: str, window: Window, settings: Settings, required: Sequence[str]
) -> tuple[float | None, int]:
    """The share of the window's rows that pass every validity rule and have every required
    field (``required``), and the row count; no rows: (None, 0). A NULL fails only its
    required-field rule, like the suite counts it."""
    start, end = window.naive()
    broken = [f"COALESCE({predicate}, 0)" for _, predicate, _ in _rules(settings)]
    broken += [f"`{column}` IS NULL" for column in required]
    params = [p for _, _, rule_params in _rules(settings) for p in rule_params]
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT COUNT(*), SUM(NOT ({' OR '.join(broken)})) FROM {table} "  # noqa: S608 - constants
            "WHERE create_time >= %s AND create_time < %s",
            [*params, start, end],
        )
        rows, good = cur.fetchone()
    rows = int(rows or 0)
    return (round(int(good or 0) / rows, 6) if rows else None), rows


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
    """Row id -> first rule it fails, for rows of the window (duplicates: every copy but the first)."""
    start, end = window.naive()
    invalid: dict[int, str] = {}
    with conn.cursor() as cur:
        for rule, predicate, params in _rules(settings):
            cur.execute(
                f"SELECT id FROM {table} WHERE create_time >= %s AND create_time < %s AND {predicate} "  # noqa: S608
                "FOR UPDATE",
                [start, end, *params],
            )
            for (row_id,) in cur.fetchall():
                invalid.setdefault(int(row_id), rule)
        cur.execute(
            f"SELECT DISTINCT s.id FROM {table} s JOIN {table} d ON d.task_id = s.task_id "  # noqa: S608
            "AND d.page = s.page AND d.keyword = s.keyword AND d.position = s.position AND d.id < s.id "
            "AND d.create_time >= %s AND d.create_time < %s "
            "WHERE s.create_time >= %s AND s.create_time < %s FOR UPDATE",
            (start, end, start, end),
        )
        for (row_id,) in cur.fetchall():
            invalid.setdefault(int(row_id), "unique_result")
    return invalid


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
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT COUNT(*) FROM {table} WHERE create_time >= %s AND create_time < %s",  # noqa: S608
            (start, end),
        )
        (rows,) = cur.fetchone()
    invalid = find_invalid_rows(conn, table, window, settings)
    by_rule: dict[str, list[int]] = {}
    for row_id, rule in sorted(invalid.items()):
        by_rule.setdefault(rule, []).append(row_id)
    if not dry_run and invalid:
        moved = 0
        with conn.cursor() as cur:
            for rule, ids in by_rule.items():
                for chunk in batched(ids, 1000):
                    marks = ", ".join(["%s"] * len(chunk))
                    cur.execute(
                        f"INSERT INTO {table}_quarantine ({RESULT_COLUMNS}, failed_rule, dag_run_id) "  # noqa: S608
                        f"SELECT {RESULT_COLUMNS}, %s, %s FROM {table} WHERE id IN ({marks})",
                        [rule, dag_run_id, *chunk],
                    )
                    copied = cur.rowcount
                    cur.execute(f"DELETE FROM {table} WHERE id IN ({marks})", chunk)  # noqa: S608
                    if copied != len(chunk) or cur.rowcount != len(chunk):
                        conn.rollback()
                        raise RuntimeError(f"quarantine of {rule} moved {copied}/{cur.rowcount} of {len(chunk)} rows")
                    moved += copied
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
