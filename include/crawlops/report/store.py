"""The report's row in ``amazon_daily_report``, its HTML file, and its delivery."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

from crawlops.alerts import record_check, set_check_status
from crawlops.channels import Channel
from crawlops.db import Connection
from crawlops.delivery import send_document
from crawlops.model import Window
from crawlops.names import DINGTALK_CONN_ID
from crawlops.queue import RedisClient
from crawlops.report.collect import DailyReport, build_daily_report
from crawlops.report.model import ReportData
from crawlops.settings import Settings
from crawlops.store import reports

SUMMARY_LIMIT = 60_000  # bytes; amazon_daily_report.summary is a TEXT column (64 KiB)


def store_report(conn: Connection, report: DailyReport, *, dag_run_id: str | None) -> None:
    """Upsert the day's row of ``amazon_daily_report``: re-running a day rewrites it."""
    reports.upsert(
        conn, report.day, markdown=report.markdown, html=report.html, summary=summary_json(report.data),
        dag_run_id=dag_run_id,
    )  # fmt: skip


def record_delivery(conn: Connection, day: dt.date, error: str | None) -> None:
    """The outcome of sending the day's report: ``sent_at`` on success, the error otherwise."""
    reports.record_delivery(conn, day, error)


def unsent_reports(conn: Connection, *, days: int = 7) -> list[tuple[dt.date, str]]:
    """Reports built in the last ``days`` days that did not go out: (day, markdown), oldest first."""
    return reports.unsent(conn, days=days)


def publish(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    day: Window,
    *,
    tz: str,
    run_url: str | None,
    robot: Channel | None,
    dag_run_id: str | None,
    channel: str = DINGTALK_CONN_ID,
) -> dict[str, str]:
    """Build the day's report, store it, write its HTML page and send it to DingTalk as
    Markdown (``robot`` None: no channel). Its ``daily_report`` check reads ``pass`` once
    sent, ``unsent`` while it could not be (``resend_unsent`` sends it later)."""

    built = build_daily_report(conn, r, settings, day, tz=tz, run_url=run_url)
    store_report(conn, built, dag_run_id=dag_run_id)
    path = write_html(built, settings.report.directory())
    sent, status = "no channel", "no_channel"
    if robot is not None:
        error = send_document(
            conn, robot, f"Crawl daily report {built.day}", built.markdown, settings.alerts, name=channel,
            dag_run_id=dag_run_id,
        )  # fmt: skip
        record_delivery(conn, built.day, error)
        sent, status = (f"not sent: {error}", "unsent") if error else ("sent", "pass")
    details = {"html": str(path), "dingtalk": sent}
    record_check(conn, "daily_report", day, status=status, details=details, dag_run_id=dag_run_id)
    return {"day": str(built.day), **details}


def resend_unsent(
    conn: Connection,
    robot: Channel,
    settings: Settings,
    *,
    tz: str,
    dag_run_id: str | None,
    channel: str = DINGTALK_CONN_ID,
) -> list[str]:
    """Send the daily reports of the last week that did not go out (rate budget spent,
    DingTalk down), oldest first, until one fails; each one sent turns its check ``pass``."""

    sent: list[str] = []
    for day, markdown in unsent_reports(conn):
        error = send_document(
            conn, robot, f"Crawl daily report {day}", markdown, settings.alerts, name=channel, dag_run_id=dag_run_id
        )
        record_delivery(conn, day, error)
        if error:
            break  # the budget or the robot: a later run goes on
        start = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(tz))
        set_check_status(conn, "daily_report", start, "pass", only_if="unsent")
        sent.append(str(day))
    return sent


def summary_json(data: ReportData) -> str:
    """The report's numbers as JSON for the summary column (``ReportData.from_json`` reads it
    back); if too long, the per-hour detail is dropped and ``truncated`` set. Keys keep their
    order (alert levels most severe first), so a read-back renders as the original did."""
    text = json.dumps(data.to_json(), ensure_ascii=False)
    if len(text.encode("utf-8")) <= SUMMARY_LIMIT:
        return text
    slim = dataclasses.replace(
        data,
        volume=dataclasses.replace(data.volume, hours=[]),
        volumes={name: dataclasses.replace(v, hours=[]) for name, v in data.volumes.items()},
        quality=dataclasses.replace(
            data.quality, suites={k: dataclasses.replace(s, hours=[]) for k, s in data.quality.suites.items()}
        ),
        alerts=dataclasses.replace(data.alerts, top=data.alerts.top[:3]),
        truncated=True,
    )
    return json.dumps(slim.to_json(), ensure_ascii=False)


def write_html(report: DailyReport, reports_dir: Path) -> Path:
    """Write ``daily-report-YYYY-MM-DD.html`` into ``reports_dir`` (created if needed), replacing it."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"daily-report-{report.day.isoformat()}.html"
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(report.html, encoding="utf-8")
    partial.replace(path)  # readers never see half a page
    return path
