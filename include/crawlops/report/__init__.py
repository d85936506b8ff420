"""The daily report: the day's tasks, data quality, volume, alerts and system health.

Built once a day (by the supervision run whose window ends at midnight in the DAG
timezone) for the calendar day that ends there. Every number comes from SQL aggregates
over that day's rows; nothing loads a whole table. The report is rendered twice:

- Markdown for a DingTalk robot "markdown" message (compact, under ``MARKDOWN_LIMIT``
  characters; DingTalk's markdown has no tables, so per-object statistics are list items);
- one self-contained HTML page (the Jinja2 template ``include/templates/daily_report.html.j2``
  with autoescape, charts as inline SVG drawn here, no script and no external URL), stored
  in ``amazon_daily_report`` and written to the reports folder.

``collect`` gathers the numbers, ``markdown`` and ``html`` (with ``charts`` and ``text``)
render them (``model``'s typed records in between), ``store`` keeps, writes and sends the report. No Airflow imports.
"""

from __future__ import annotations

from crawlops.report import charts, model
from crawlops.report.collect import (
    RESULTS_TABLE,
    DailyReport,
    alert_counts,
    alert_summary,
    build_daily_report,
    open_tasks_only,
    quality_by_hour,
    system_health,
    task_statistics,
    volume_by_hour,
)
from crawlops.report.html import render_html
from crawlops.report.markdown import MARKDOWN_LIMIT, render_markdown
from crawlops.report.model import ReportData
from crawlops.report.store import (
    publish,
    record_delivery,
    resend_unsent,
    store_report,
    summary_json,
    unsent_reports,
    write_html,
)

__all__ = [
    "MARKDOWN_LIMIT",
    "RESULTS_TABLE",
    "DailyReport",
    "ReportData",
    "alert_counts",
    "alert_summary",
    "build_daily_report",
    "charts",
    "model",
    "open_tasks_only",
    "publish",
    "quality_by_hour",
    "record_delivery",
    "render_html",
    "render_markdown",
    "resend_unsent",
    "store_report",
    "summary_json",
    "system_health",
    "task_statistics",
    "unsent_reports",
    "volume_by_hour",
    "write_html",
]
