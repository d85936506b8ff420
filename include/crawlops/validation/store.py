"""Storing a validation report in ``amazon_validation_run``."""

from __future__ import annotations

import json

from crawlops.db import Connection
from crawlops.store import verdicts
from crawlops.validation.results import ValidationReport


def store_report(
    conn: Connection, report: ValidationReport, *, dag_run_id: str | None, quality_score: float | None = None
) -> str:
    """Upsert the report into ``amazon_validation_run``: one row per (suite, table, window).

    Re-validating a window overwrites its counts, results, run id and time, but never its
    history: ``first_success`` keeps the first verdict, and ``verdict`` reads ``passed``,
    ``failed``, or ``repaired`` (the first run failed, the latest passed: quarantine or a
    re-crawl fixed the hour). ``quality_score``: the share of the window's rows passing every
    validity and required-field rule (``crawlops.quality.quality_score``), the latest run's.
    Returns the window's verdict after this run.
    """
    start, end = report.window.naive()
    verdicts.upsert_validation(
        conn,
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
            quality_score,
        ),
    )
    return verdicts.verdict(conn, report.suite_name[:128], report.table[:128], start, end) or "failed"
