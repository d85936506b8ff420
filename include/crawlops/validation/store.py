"""Storing a validation report in ``amazon_validation_run``."""

from __future__ import annotations

import json

from crawlops.db import Connection
from crawlops.validation.results import ValidationReport


def store_report(
    conn: Connection, report: ValidationReport, *, dag_run_id: str | None, quality_score: float | None = None
) -> None:
    """Upsert the report into ``amazon_validation_run``: one row per (suite, table, window).

    Re-validating a window overwrites its counts, results, run id and time, but never its
    history: ``first_success`` keeps the first verdict, and ``verdict`` reads ``passed``,
    ``failed``, or ``repaired`` (the first run failed, the latest passed: quarantine or a
    re-crawl fixed the hour). ``quality_score``: the share of the window's rows passing every
    validity and required-field rule (``crawlops.quality.quality_score``), the latest run's.
    """
    start, end = report.window.naive()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_validation_run (suite_name, table_name, window_start, window_end, success, "
            "evaluated, failed, row_count, results, dag_run_id, validated_at, first_success, verdict, quality_score) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(), %s, IF(%s, 'passed', 'failed'), %s) "
            "ON DUPLICATE KEY UPDATE "
            "verdict = IF(NOT VALUES(success), 'failed', IF(COALESCE(first_success, success), 'passed', 'repaired')), "
            "first_success = COALESCE(first_success, success), "
            "success = VALUES(success), evaluated = VALUES(evaluated), "
            "failed = VALUES(failed), row_count = VALUES(row_count), results = VALUES(results), "
            "dag_run_id = VALUES(dag_run_id), validated_at = VALUES(validated_at), "
            "quality_score = VALUES(quality_score)",
            (
                report.suite_name[:128],
                report.table[:128],
                start,
                end,
                int(report.success),
                report.evaluated,
                report.failed,
                report.row_count,
                json.dumps(report.to_json(), ensure_ascii=False, sort_keys=True),
                dag_run_id[:250] if dag_run_id else None,
                int(report.success),
                int(report.success),
                quality_score,
            ),
        )
    conn.commit()
