"""The daily report: the day's tasks, data quality, volume, alerts and system health.

Built once a day (by the supervision run whose window ends at midnight in the DAG
timezone) for the calendar day that ends there. Every number comes from SQL aggregates
over that day's rows; nothing loads a whole table. The report is rendered twice:

- Markdown for a DingTalk robot "markdown" message (compact, under ``MARKDOWN_LIMIT``
  characters; DingTalk's markdown has no tables, so per-object statistics are list items);
- one self-contained HTML page (inline CSS, charts as inline SVG drawn here, no script and
  no external URL), stored in ``amazon_daily_report`` and written to the reports folder.

No Airflow imports: the DAG hands in a MySQL connection, a Redis client and the window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crawlops import health, quality
from crawlops.db import Connection, Cursor
from crawlops.delivery import DingTalkRobot
from crawlops.model import OPEN_STATUSES, TaskStatus, Window
from crawlops.queue import RedisClient
from crawlops.settings import Settings

RESULTS_TABLE = "amazon_search_result"
LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO")  # most severe first
TOP_ALERTS = 10
MARKDOWN_LIMIT = 4000
SUMMARY_LIMIT = 60_000  # bytes; amazon_daily_report.summary is a TEXT column (64 KiB)
P95_PERCENT = 95  # integer, so the rank CEIL(95 * n / 100) is exact decimal arithmetic
FINISHED = (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.DEAD.value)
HOUR = dt.timedelta(hours=1)


@dataclasses.dataclass
class DailyReport:
    day: dt.date
    window: Window
    data: dict[str, Any]
    markdown: str
    html: str


# ---------------------------------------------------------------------------------------
# Building


def build_daily_report(
    conn: Connection, r: RedisClient, settings: Settings, window: Window, *, tz: str, run_url: str | None = None
) -> DailyReport:
    """The report of the calendar day ``window`` (in ``tz``, as ``model.day_ending`` gives it).

    ``r`` may be unreachable: the system-health section then says so instead of raising.
    """
    zone = ZoneInfo(tz)
    day = window.start.astimezone(zone).date()
    hours = [window.start + HOUR * k for k in range(math.ceil((window.end - window.start) / HOUR))]
    labels = [h.astimezone(zone).strftime("%H:%M") for h in hours]
    data: dict[str, Any] = {
        "title": f"Crawl daily report {day.isoformat()}",
        "day": day.isoformat(),
        "timezone": tz,
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "run_url": run_url,
        "hours": labels,
        "tasks": task_statistics(conn, window),
        "quality": quality_by_hour(conn, window, hours),
        "volume": volume_by_hour(conn, settings, hours),
        "alerts": alert_summary(conn, window),
        "system": system_health(conn, r, settings),
    }
    return DailyReport(day, window, data, render_markdown(data), render_html(data))


def task_statistics(conn: Connection, window: Window) -> dict[str, Any]:
    """Per crawl object (``task_type``) and in total, for tasks whose interval starts in the window.

    dispatched = root tasks, retried = retry tasks created; completed / failed / dead / open
    count every task by status; success rate = answered (result rows or an empty answer) /
    dispatched elements of settled tasks (failed and lost ones are not successes); time to
    complete = finished_at - pushed_at of finished tasks (mean, and p95 by nearest rank: the
    smallest duration with at least 95 % of the durations at or below it).
    """
    start, end = window.naive()
    finished = ", ".join(["%s"] * len(FINISHED))
    opened = ", ".join(["%s"] * len(OPEN_STATUSES))
    timed = f"task_status IN ({finished}) AND pushed_at IS NOT NULL AND finished_at IS NOT NULL"
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_type, COUNT(*), SUM(task_source IS NULL), SUM(task_source IS NOT NULL), "  # noqa: S608
            "SUM(task_status = %s), SUM(task_status = %s), SUM(task_status = %s), "
            f"SUM(task_status IN ({opened})), "
            "SUM(IF(settled_at IS NOT NULL, element_count, 0)), SUM(IF(settled_at IS NOT NULL, answered_count, 0)), "
            "SUM(IF(settled_at IS NOT NULL, empty_count, 0)), SUM(IF(settled_at IS NOT NULL, lost_count, 0)), "
            f"SUM({timed}), AVG(IF({timed}, TIMESTAMPDIFF(SECOND, pushed_at, finished_at), NULL)) "
            "FROM amazon_task_information WHERE interval_start >= %s AND interval_start < %s "
            "GROUP BY task_type WITH ROLLUP",
            (
                TaskStatus.COMPLETED.value,
                TaskStatus.FAILED.value,
                TaskStatus.DEAD.value,
                *(s.value for s in OPEN_STATUSES),
                *FINISHED,
                *FINISHED,
                start,
                end,
            ),
        )
        rows = cur.fetchall()
        # p95 by nearest rank, per type and over all types, in one pass of window functions
        # (ROW_NUMBER/COUNT OVER work on MySQL 8 and MariaDB alike; PERCENTILE_DISC does not).
        cur.execute(
            "SELECT task_type, seconds, rn = CEIL(%s * n / 100), rn_all = CEIL(%s * n_all / 100) FROM ("  # noqa: S608
            "SELECT task_type, TIMESTAMPDIFF(SECOND, pushed_at, finished_at) AS seconds, "
            "ROW_NUMBER() OVER (PARTITION BY task_type ORDER BY TIMESTAMPDIFF(SECOND, pushed_at, finished_at)) AS rn, "
            "COUNT(*) OVER (PARTITION BY task_type) AS n, "
            "ROW_NUMBER() OVER (ORDER BY TIMESTAMPDIFF(SECOND, pushed_at, finished_at), task_type) AS rn_all, "
            "COUNT(*) OVER () AS n_all "
            f"FROM amazon_task_information WHERE interval_start >= %s AND interval_start < %s AND {timed}"
            ") ranked WHERE rn = CEIL(%s * n / 100) OR rn_all = CEIL(%s * n_all / 100)",
            (P95_PERCENT, P95_PERCENT, start, end, *FINISHED, P95_PERCENT, P95_PERCENT),
        )
        p95_by_type: dict[str | None, int] = {}
        for task_type, seconds, is_type_p95, is_all_p95 in cur.fetchall():
            if is_type_p95:
                p95_by_type[task_type] = int(seconds)
            if is_all_p95:
                p95_by_type[None] = int(seconds)

    by_type: dict[str, dict[str, Any]] = {}
    total = _empty_task_entry()
    for row in rows:
        task_type, tasks, dispatched, retried, completed, failed, dead, still_open = row[:8]
        elements, answered, empty, lost, n, mean = row[8:]
        entry = {
            "tasks": int(tasks),
            "dispatched": int(dispatched or 0),
            "completed": int(completed or 0),
            "failed": int(failed or 0),
            "retried": int(retried or 0),
            "dead": int(dead or 0),
            "open": int(still_open or 0),
            "finished_elements": int(elements or 0),
            "answered_elements": int(answered or 0),
            "empty_elements": int(empty or 0),
            "lost_elements": int(lost or 0),
            "success_rate": round(int(answered) / int(elements), 6) if elements else None,
            "timed_tasks": int(n or 0),
            "mean_seconds": round(float(mean), 1) if mean is not None else None,
            "p95_seconds": p95_by_type.get(task_type),
        }
        if task_type is None:
            total = entry
        else:
            by_type[str(task_type)] = entry
    return {"by_type": dict(sorted(by_type.items())), "total": total}


def _empty_task_entry() -> dict[str, Any]:
    return {
        "tasks": 0,
        "dispatched": 0,
        "completed": 0,
        "failed": 0,
        "retried": 0,
        "dead": 0,
        "open": 0,
        "finished_elements": 0,
        "answered_elements": 0,
        "empty_elements": 0,
        "lost_elements": 0,
        "success_rate": None,
        "timed_tasks": 0,
        "mean_seconds": None,
        "p95_seconds": None,
    }


def quality_by_hour(conn: Connection, window: Window, hours: Sequence[dt.datetime]) -> dict[str, Any]:
    """Suite verdicts per hour, from the validation runs whose window lies inside the day.

    An hour reads ``failed``, ``repaired`` (its first run failed, a later one passed after a
    repair) or ``passed``; a re-run never erases a failure. ``quality_score`` is the share of
    the hour's rows passing every validity and required-field rule (the lowest when several
    runs fall in one hour). A run shorter than an hour counts in the hour it starts in;
    several runs in one hour combine (the worst verdict, counts added).
    """
    start, end = window.naive()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT suite_name, table_name, window_start, success, evaluated, failed, row_count, "
            "COALESCE(verdict, IF(success, 'passed', 'failed')), quality_score FROM amazon_validation_run "
            "WHERE window_start >= %s AND window_end <= %s ORDER BY suite_name, table_name, window_start",
            (start, end),
        )
        rows = cur.fetchall()
    suites: dict[str, dict[str, Any]] = {}
    rank = {"passed": 0, "repaired": 1, "failed": 2}
    for suite_name, table_name, window_start, success, evaluated, failed, row_count, verdict, score in rows:
        label = suite_name if suite_name == table_name else f"{suite_name} ({table_name})"
        suite = suites.setdefault(label, {"suite": suite_name, "table": table_name, "hours": [None] * len(hours)})
        index = int((window_start.replace(tzinfo=dt.UTC) - window.start) // HOUR)
        cell = suite["hours"][index] or {
            "success": True, "verdict": "passed", "evaluated": 0, "failed": 0, "row_count": 0, "quality_score": None,
        }  # fmt: skip
        cell["success"] = cell["success"] and bool(success)
        cell["verdict"] = max(cell["verdict"], str(verdict), key=rank.__getitem__)
        cell["evaluated"] += int(evaluated or 0)
        cell["failed"] += int(failed or 0)
        cell["row_count"] += int(row_count or 0)
        if score is not None:
            cell["quality_score"] = min(
                float(score), cell["quality_score"] if cell["quality_score"] is not None else 1.0
            )
        suite["hours"][index] = cell
    for suite in suites.values():
        cells = suite["hours"]
        for verdict in ("passed", "repaired", "failed"):
            suite[verdict] = sum(1 for c in cells if c and c["verdict"] == verdict)
        suite["not_validated"] = sum(1 for c in cells if c is None)
        scores = [c["quality_score"] for c in cells if c and c["quality_score"] is not None]
        suite["quality_score_min"] = min(scores) if scores else None
        suite["quality_score_mean"] = round(sum(scores) / len(scores), 6) if scores else None
    scores = [s["quality_score_min"] for s in suites.values() if s["quality_score_min"] is not None]
    return {
        "suites": suites,
        "passed": sum(s["passed"] for s in suites.values()),
        "repaired": sum(s["repaired"] for s in suites.values()),
        "failed": sum(s["failed"] for s in suites.values()),
        "not_validated": sum(s["not_validated"] for s in suites.values()),
        "quality_score_min": min(scores) if scores else None,
    }


def volume_by_hour(conn: Connection, settings: Settings, hours: Sequence[dt.datetime]) -> dict[str, Any]:
    """Rows per hour of the results table against the band the volume-anomaly check uses.

    The band is mean ± anomaly_z * std over the same history (``quality.history_hours``,
    hours with no rows left out, spread floored as ``quality.judge_volume`` does); hours
    with fewer than ``anomaly_min_points`` past hours get no band.
    """
    q = settings.quality
    naive = [h.replace(tzinfo=None) for h in hours]
    history = {h: quality.history_hours(h, q) for h in naive}
    wanted = sorted({*naive, *(p for past in history.values() for p in past)})
    counts = quality.hourly_counts(conn, RESULTS_TABLE, wanted)
    entries = []
    for hour in naive:
        observed = counts.get(hour, 0)
        verdict = quality.judge_volume(observed, [counts[p] for p in history[hour] if counts.get(p)], q)
        low, high = quality.volume_band(verdict, q)
        outside = None if low is None or high is None else observed < low or observed > high
        entries.append(
            {
                "hour": hour.replace(tzinfo=dt.UTC).isoformat(),
                "rows": observed,
                "history_points": verdict.points,
                "mean": verdict.mean,
                "band_low": low,
                "band_high": high,
                "outside": outside,
                "anomalous": verdict.anomalous,
            }
        )
    return {
        "table": RESULTS_TABLE,
        "anomaly_z": q.anomaly_z,
        "total_rows": sum(e["rows"] for e in entries),
        "outside_band": sum(1 for e in entries if e["outside"]),
        "without_band": sum(1 for e in entries if e["band_low"] is None),
        "hours": entries,
    }


ALERT_TIME_COLUMNS = ("window_start", "created_at")


def alert_counts(cur: Cursor, column: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Current alerts per level (every level, most severe first) whose ``column`` lies in
    [start, end); findings a later run of their window no longer made (resolved) are left out."""
    if column not in ALERT_TIME_COLUMNS:
        raise ValueError(f"alerts are counted by {ALERT_TIME_COLUMNS}, not {column!r}")
    cur.execute(
        f"SELECT level, COUNT(*) FROM amazon_alert WHERE {column} >= %s AND {column} < %s "  # noqa: S608
        "AND resolved_at IS NULL GROUP BY level",
        (start, end),
    )
    by_level = dict.fromkeys(LEVELS, 0)
    for level, count in cur.fetchall():
        by_level[str(level)] = int(count)
    return by_level


def alert_summary(conn: Connection, window: Window) -> dict[str, Any]:
    """The day's alerts (window_start in the day) by level, and the top ones by level then time."""
    start, end = window.naive()
    with conn.cursor() as cur:
        by_level = alert_counts(cur, "window_start", start, end)
        cur.execute(
            "SELECT level, source, check_name, subject, title, window_start FROM amazon_alert "
            "WHERE window_start >= %s AND window_start < %s AND resolved_at IS NULL "
            "ORDER BY FIELD(level, %s, %s, %s, %s) DESC, window_start DESC, id DESC LIMIT %s",
            (start, end, *reversed(LEVELS), TOP_ALERTS),
        )
        top = [
            {
                "level": level,
                "source": source,
                "check_name": check_name,
                "subject": subject,
                "title": title,
                "window_start": window_start.replace(tzinfo=dt.UTC).isoformat(),
            }
            for level, source, check_name, subject, title, window_start in cur.fetchall()
        ]
    return {"total": sum(by_level.values()), "by_level": by_level, "top": top}


def system_health(conn: Connection, r: RedisClient, settings: Settings) -> dict[str, Any]:
    """MySQL (reachable: the report is being read from it), Redis reachability and memory, queue depths."""
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        (version,) = cur.fetchone()
    redis_facts: dict[str, Any] = {
        "reachable": False,
        "error": None,
        "used_memory": None,
        "maxmemory": None,
        "ratio": None,
        "memory_alarm": False,
    }
    try:
        facts, findings = health.probe_redis(r, settings)
    except health.SystemFault as fault:
        redis_facts["error"] = fault.finding.title
    else:
        redis_facts.update(facts, reachable=True, memory_alarm=bool(findings))
    queues: Mapping[str, Mapping[str, int | None]] | None = None
    if redis_facts["reachable"]:
        try:
            queues = health.queue_depth(conn, r)
        except Exception as exc:  # Redis went away between the probe and the count
            redis_facts["error"] = f"queue depth unavailable: {type(exc).__name__}: {exc}"
    if queues is None:
        queues = open_tasks_only(conn)
    return {"mysql": {"reachable": True, "version": str(version)}, "redis": redis_facts, "queues": queues}


def open_tasks_only(conn: Connection) -> dict[str, dict[str, int | None]]:
    """Open tasks per crawl object from MySQL alone (when Redis cannot say what is queued)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_type, COUNT(*) FROM amazon_task_information WHERE task_status IN (%s, %s) GROUP BY task_type",
            tuple(s.value for s in OPEN_STATUSES),
        )
        return {
            str(t): {"open_tasks": int(n), "queued": None, "failed_waiting": None} for t, n in sorted(cur.fetchall())
        }


# ---------------------------------------------------------------------------------------
# Storing and writing


def store_report(conn: Connection, report: DailyReport, *, dag_run_id: str | None) -> None:
    """Upsert the day's row of ``amazon_daily_report``: re-running a day rewrites it."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_daily_report (report_date, markdown, html, summary, dag_run_id, created_at) "
            "VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP()) "
            "ON DUPLICATE KEY UPDATE markdown = VALUES(markdown), html = VALUES(html), summary = VALUES(summary), "
            "dag_run_id = VALUES(dag_run_id), created_at = VALUES(created_at)",
            (
                report.day,
                report.markdown,
                report.html,
                summary_json(report.data),
                dag_run_id[:250] if dag_run_id else None,
            ),
        )
    conn.commit()


def record_delivery(conn: Connection, day: dt.date, error: str | None) -> None:
    """The outcome of sending the day's report: ``sent_at`` on success, the error otherwise."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_daily_report SET sent_at = IF(%s IS NULL, UTC_TIMESTAMP(), NULL), send_error = %s "
            "WHERE report_date = %s",
            (error, error, day),
        )
    conn.commit()


def unsent_reports(conn: Connection, *, days: int = 7) -> list[tuple[dt.date, str]]:
    """Reports built in the last ``days`` days that did not go out: (day, markdown), oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT report_date, markdown FROM amazon_daily_report WHERE sent_at IS NULL "
            "AND created_at >= UTC_TIMESTAMP() - INTERVAL %s DAY ORDER BY report_date",
            (days,),
        )
        return [(day, str(text)) for day, text in cur.fetchall()]


def publish(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    day: Window,
    *,
    tz: str,
    run_url: str | None,
    robot: DingTalkRobot | None,
    dag_run_id: str | None,
) -> dict[str, str]:
    """Build the day's report, store it, write its HTML page and send it to DingTalk as
    Markdown (``robot`` None: no channel). Its ``daily_report`` check reads ``pass`` once
    sent, ``unsent`` while it could not be (``resend_unsent`` sends it later)."""
    from crawlops.alerts import record_check
    from crawlops.delivery import send_document

    built = build_daily_report(conn, r, settings, day, tz=tz, run_url=run_url)
    store_report(conn, built, dag_run_id=dag_run_id)
    path = write_html(built, settings.report.directory())
    sent, status = "no channel", "no_channel"
    if robot is not None:
        error = send_document(
            conn, robot, f"Crawl daily report {built.day}", built.markdown, settings.alerts, dag_run_id=dag_run_id
        )
        record_delivery(conn, built.day, error)
        sent, status = (f"not sent: {error}", "unsent") if error else ("sent", "pass")
    details = {"html": str(path), "dingtalk": sent}
    record_check(conn, "daily_report", day, status=status, details=details, dag_run_id=dag_run_id)
    return {"day": str(built.day), **details}


def resend_unsent(
    conn: Connection, robot: DingTalkRobot, settings: Settings, *, tz: str, dag_run_id: str | None
) -> list[str]:
    """Send the daily reports of the last week that did not go out (rate budget spent,
    DingTalk down), oldest first, until one fails; each one sent turns its check ``pass``."""
    from crawlops.alerts import set_check_status
    from crawlops.delivery import send_document

    sent: list[str] = []
    for day, markdown in unsent_reports(conn):
        error = send_document(
            conn, robot, f"Crawl daily report {day}", markdown, settings.alerts, dag_run_id=dag_run_id
        )
        record_delivery(conn, day, error)
        if error:
            break  # the budget or the robot: a later run goes on
        start = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(tz))
        set_check_status(conn, "daily_report", start, "pass", only_if="unsent")
        sent.append(str(day))
    return sent


def summary_json(data: dict[str, Any]) -> str:
    """The report's numbers as JSON for the summary column; per-hour detail is dropped if too long."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    if len(text.encode("utf-8")) <= SUMMARY_LIMIT:
        return text
    slim = json.loads(text)
    slim["volume"].pop("hours", None)
    for suite in slim["quality"]["suites"].values():
        suite.pop("hours", None)
    slim["alerts"]["top"] = slim["alerts"]["top"][:3]
    slim["truncated"] = True
    return json.dumps(slim, ensure_ascii=False, sort_keys=True)


def write_html(report: DailyReport, reports_dir: Path) -> Path:
    """Write ``daily-report-YYYY-MM-DD.html`` into ``reports_dir`` (created if needed), replacing it."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / f"daily-report-{report.day.isoformat()}.html"
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(report.html, encoding="utf-8")
    partial.replace(path)  # readers never see half a page
    return path


# ---------------------------------------------------------------------------------------
# Formatting helpers


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _bytes(value: int | None) -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _one_line(text: Any, limit: int) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _safe_link(url: str | None) -> str | None:
    """Only plain web links become links; anything else (``javascript:``...) is shown as text."""
    if url and url.lower().startswith(("http://", "https://")) and not any(c.isspace() for c in url):
        return url
    return None


def _listed(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _failed_hours(data: dict[str, Any]) -> list[str]:
    hours = data["hours"]
    return [
        f"{label} {hours[i]}"
        for label, suite in data["quality"]["suites"].items()
        for i, cell in enumerate(suite["hours"])
        if cell and cell["verdict"] == "failed"
    ]


def _outside_hours(data: dict[str, Any]) -> list[str]:
    return [
        f"{data['hours'][i]} {_num(e['rows'])} rows (expected {_num(e['band_low'])}–{_num(e['band_high'])})"
        for i, e in enumerate(data["volume"]["hours"])
        if e["outside"]
    ]


def _queue_text(queues: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for task_type, q in queues.items():
        queued = "queued unknown" if q["queued"] is None else f"{_num(q['queued'])} queued"
        failing = "" if q["failed_waiting"] is None else f", {_num(q['failed_waiting'])} failed waiting"
        lines.append(f"{task_type}: {_num(q['open_tasks'])} open tasks, {queued}{failing}")
    return lines


# ---------------------------------------------------------------------------------------
# Markdown (DingTalk)


def render_markdown(data: dict[str, Any], *, limit: int = MARKDOWN_LIMIT) -> str:
    """Compact Markdown for a DingTalk robot message; text from the data is escaped and single-line."""

    def md(text: Any, width: int = 80) -> str:
        return html.escape(_one_line(text, width), quote=False)

    tasks, q, vol, alerts, system = data["tasks"], data["quality"], data["volume"], data["alerts"], data["system"]
    head = [
        f"### {md(data['title'])}",
        f"{md(data['day'])} 00:00 – 24:00 ({md(data['timezone'])})",
        "",
        "**Tasks**",
        "",
    ]
    rows = list(tasks["by_type"].items()) or [("(none)", tasks["total"])]
    for task_type, t in rows:
        head.append(
            f"- {md(task_type, 40)}: {t['dispatched']} dispatched, {t['completed']} completed, {t['failed']} failed, "
            f"{t['retried']} retried, {t['dead']} dead, {t['open']} open; success {_pct(t['success_rate'])} "
            f"({t['empty_elements']} answered empty, {t['lost_elements']} lost); "
            f"time to complete mean {_duration(t['mean_seconds'])}, p95 {_duration(t['p95_seconds'])}"
        )
    failed = [md(h, 60) for h in _failed_hours(data)]
    validated = q["passed"] + q["repaired"] + q["failed"]
    quality_line = f"**Data quality**: {q['passed']} of {validated} validated hours passed"
    if q["repaired"]:
        quality_line += f", {q['repaired']} repaired"
    if failed:
        quality_line += f", {q['failed']} failed ({_listed(failed, 6)})"
    if q["quality_score_min"] is not None:
        quality_line += f"; lowest quality score {_pct(q['quality_score_min'])}"
    if not q["suites"]:
        quality_line = "**Data quality**: no validation runs this day"
    outside = _outside_hours(data)
    volume_line = f"**Volume**: {_num(vol['total_rows'])} rows in {md(vol['table'])}; "
    volume_line += (
        f"{len(outside)} hours outside the expected band: {_listed(outside, 4)}"
        if outside
        else "every hour with a band lies within it"
    )
    if vol["without_band"]:
        volume_line += f" ({vol['without_band']} hours without enough history for a band)"
    levels = " · ".join(f"{level} {count}" for level, count in alerts["by_level"].items())
    body = ["", quality_line, "", volume_line, "", f"**Alerts** ({alerts['total']}): {levels}", ""]
    alert_lines = [
        f"- {md(a['level'], 10)} {md(a['check_name'], 40)} {md(a['subject'], 60)}: {md(a['title'], 120)}"
        for a in alerts["top"][:5]
    ]
    redis = system["redis"]
    if redis["reachable"]:
        memory = f"memory {_bytes(redis['used_memory'])}"
        memory += f" of {_bytes(redis['maxmemory'])}" if redis["maxmemory"] else " (no maxmemory)"
        redis_text = f"Redis reachable, {memory}" + (
            " **above the memory limit ratio**" if redis["memory_alarm"] else ""
        )
    else:
        redis_text = f"**Redis unreachable** ({md(redis['error'], 120)})"
    queue_text = "; ".join(md(line, 100) for line in _queue_text(system["queues"])) or "no open tasks"
    tail = ["", f"**System**: MySQL reachable · {redis_text} · queues: {queue_text}"]
    link = _safe_link(data.get("run_url"))
    if link:
        tail += ["", f"[Open the run in Airflow]({link})"]

    while True:
        text = "\n".join(head + body + alert_lines + tail)
        if len(text) <= limit or not alert_lines:
            break
        alert_lines.pop()  # drop the least important alert lines first
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------
# HTML

_LEVEL_COLORS = {"CRITICAL": "#7f1d1d", "ERROR": "#dc2626", "WARNING": "#f59e0b", "INFO": "#0ea5e9"}
_OK, _BAD, _NONE, _BAR, _BAND = "#16a34a", "#dc2626", "#e5e7eb", "#2563eb", "#bfdbfe"
_REPAIRED = "#f59e0b"

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;
font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:24px}
header h1{margin:0 0 4px;font-size:24px}
header p{margin:0;color:#4b5563}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px 20px;margin:16px 0}
section h2{margin:0 0 12px;font-size:17px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(124px,1fr));gap:10px;margin-top:16px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px}
.card .v{font-size:20px;font-weight:600;overflow-wrap:anywhere}
.card .v.word{font-size:16px;padding-top:4px}
.card .k{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.bad{color:#b91c1c}.ok{color:#15803d}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 8px;border-bottom:1px solid #e5e7eb;text-align:right;vertical-align:top}
th{background:#f9fafb;font-weight:600}
th:first-child,td:first-child,td.text,th.text{text-align:left}
td.text{overflow-wrap:break-word}
td.nowrap{white-space:nowrap;text-align:left}
.lvl{display:inline-block;white-space:nowrap;padding:1px 6px;border-radius:4px;color:#fff;
font-size:11px;font-weight:600}
.legend{display:flex;gap:16px;flex-wrap:wrap;color:#4b5563;font-size:12px;margin:4px 0 8px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-2px}
svg.chart{display:block;width:100%;height:auto}
svg.chart text{font-size:11px;fill:#4b5563}
.muted{color:#6b7280}
footer{color:#6b7280;font-size:12px;margin-top:8px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _nice_max(value: float) -> tuple[float, float]:
    """A round axis maximum at or above ``value`` and its tick step (4-5 ticks)."""
    if value <= 0:
        return 4.0, 1.0
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(step, 1.0)  # counts: whole-number ticks
    return step * math.ceil(value / step), step


def _legend(items: list[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{color}"></i>{_e(text)}</span>' for color, text in items)
        + "</div>"
    )


def _volume_svg(data: dict[str, Any]) -> str:
    entries, labels = data["volume"]["hours"], data["hours"]
    width, height, left, right, top, bottom = 1040, 280, 60, 12, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([e["rows"] for e in entries] + [e["band_high"] or 0 for e in entries] + [1])
    y_max, step = _nice_max(peak * 1.05)
    slot = plot_w / max(len(entries), 1)

    def y(value: float) -> float:
        return top + plot_h - plot_h * min(value, y_max) / y_max

    parts = [
        f'<svg class="chart" id="chart-volume" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Rows per hour with the expected band">'
    ]
    tick = 0.0
    while tick <= y_max + 1e-9:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{_num(tick)}</text>'
        )
        tick += step
    for i, (entry, label) in enumerate(zip(entries, labels, strict=True)):
        x = left + i * slot
        if entry["band_low"] is not None:
            y_hi, y_lo = y(entry["band_high"]), y(entry["band_low"])
            parts.append(
                f'<rect class="band" x="{x + 1:.1f}" y="{y_hi:.1f}" width="{slot - 2:.1f}" '
                f'height="{max(y_lo - y_hi, 1):.1f}" fill="{_BAND}" opacity="0.7"/>'
            )
            if entry["mean"] is not None:
                parts.append(
                    f'<line x1="{x + 1:.1f}" x2="{x + slot - 1:.1f}" y1="{y(entry["mean"]):.1f}" '
                    f'y2="{y(entry["mean"]):.1f}" stroke="#60a5fa" stroke-dasharray="3 2"/>'
                )
        bar_w = slot * 0.56
        bar_y = y(entry["rows"])
        color = _BAD if entry["outside"] else _BAR
        band = (
            f"expected {_num(entry['band_low'])}–{_num(entry['band_high'])}"
            if entry["band_low"] is not None
            else f"no band ({entry['history_points']} past hours)"
        )
        parts.append(
            f'<rect class="bar" x="{x + (slot - bar_w) / 2:.1f}" y="{bar_y:.1f}" width="{bar_w:.1f}" '
            f'height="{top + plot_h - bar_y:.1f}" fill="{color}"><title>{_e(label)}: {_num(entry["rows"])} rows, '
            f"{_e(band)}</title></rect>"
        )
        if len(entries) <= 26 or i % 2 == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">{_e(label[:2])}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#9ca3af"/>'
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 2}" text-anchor="middle">hour ({_e(data["timezone"])})</text>'
        "</svg>"
    )
    return "".join(parts)


def _quality_svg(data: dict[str, Any]) -> str:
    suites, labels = data["quality"]["suites"], data["hours"]
    width, left, right, top, row_h = 1040, 200, 12, 6, 30
    names = list(suites) or ["(no validation runs)"]
    height = top + row_h * len(names) + 24
    slot = (width - left - right) / max(len(labels), 1)
    parts = [
        f'<svg class="chart" id="chart-quality" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Suite verdict per hour">'
    ]
    for row, name in enumerate(names):
        y = top + row * row_h
        parts.append(
            f'<text x="{left - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">{_e(_one_line(name, 30))}</text>'
        )
        cells = suites[name]["hours"] if name in suites else [None] * len(labels)
        for i, cell in enumerate(cells):
            if cell is None:
                color, tip = _NONE, "not validated"
            elif cell["verdict"] == "repaired":
                color = _REPAIRED
                tip = f"repaired: failed first, passed after repair; {_num(cell['row_count'])} rows"
            elif cell["verdict"] == "passed":
                color = _OK
                tip = f"passed: {cell['evaluated']} expectations, {_num(cell['row_count'])} rows"
            else:
                color = _BAD
                tip = f"failed {cell['failed']} of {cell['evaluated']} expectations, {_num(cell['row_count'])} rows"
            if cell is not None and cell["quality_score"] is not None:
                tip += f", quality score {_pct(cell['quality_score'])}"
            parts.append(
                f'<rect class="cell" x="{left + i * slot + 1:.1f}" y="{y + 2}" width="{slot - 2:.1f}" '
                f'height="{row_h - 4}" rx="3" fill="{color}">'
                f"<title>{_e(name)} {_e(labels[i])}: {_e(tip)}</title></rect>"
            )
            if cell is not None and cell["verdict"] == "failed":
                parts.append(
                    f'<text x="{left + i * slot + slot / 2:.1f}" y="{y + row_h / 2 + 4:.1f}" text-anchor="middle" '
                    f'style="fill:#fff;font-weight:600">{cell["failed"]}</text>'
                )
    for i, label in enumerate(labels):
        if len(labels) <= 26 or i % 2 == 0:
            parts.append(
                f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                f"{_e(label[:2])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _alerts_svg(data: dict[str, Any]) -> str:
    by_level = data["alerts"]["by_level"]
    levels = list(by_level)
    width, height, left, right, top, bottom = 340, 200, 36, 8, 18, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max, step = _nice_max(max([*by_level.values(), 1]) * 1.1)
    slot = plot_w / max(len(levels), 1)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / y_max

    parts = [
        f'<svg class="chart" id="chart-alerts" viewBox="0 0 {width} {height}" role="img" aria-label="Alerts by level">'
    ]
    tick = 0.0
    while tick <= y_max + 1e-9:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{_num(tick)}</text>'
        )
        tick += step
    for i, level in enumerate(levels):
        count = by_level[level]
        bar_w = slot * 0.5
        x = left + i * slot + (slot - bar_w) / 2
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y(count):.1f}" width="{bar_w:.1f}" height="{y(0) - y(count):.1f}" '
            f'fill="{_LEVEL_COLORS.get(level, "#6b7280")}"><title>{_e(level)}: {count}</title></rect>'
            f'<text x="{x + bar_w / 2:.1f}" y="{y(count) - 4:.1f}" text-anchor="middle" '
            f'style="font-weight:600;fill:#111827">{count}</text>'
            f'<text x="{x + bar_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{_e(level)}</text>'
        )
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(0)}" y2="{y(0)}" stroke="#9ca3af"/></svg>')
    return "".join(parts)


def _task_table(tasks: dict[str, Any]) -> str:
    head = (
        "<tr><th>crawl object</th><th>dispatched</th><th>completed</th><th>failed</th><th>retried</th>"
        "<th>dead</th><th>open</th><th>elements settled</th><th>answered empty</th><th>lost</th>"
        "<th>success rate</th>"
        "<th>mean time to complete</th><th>p95 time to complete</th></tr>"
    )
    rows = [(name, t, False) for name, t in tasks["by_type"].items()]
    if len(rows) != 1:
        rows.append(("all", tasks["total"], True))
    body = []
    for name, t, is_total in rows:
        cells = [
            f'<td class="text">{"<b>" if is_total else ""}{_e(name)}{"</b>" if is_total else ""}</td>',
            *(f"<td>{_num(t[k])}</td>" for k in ("dispatched", "completed", "failed", "retried")),
            f'<td class="{"bad" if t["dead"] else ""}">{_num(t["dead"])}</td>',
            f"<td>{_num(t['open'])}</td>",
            f"<td>{_num(t['finished_elements'])}</td>",
            f"<td>{_num(t['empty_elements'])}</td>",
            f'<td class="{"bad" if t["lost_elements"] else ""}">{_num(t["lost_elements"])}</td>',
            f"<td>{_pct(t['success_rate'])}</td>",
            f"<td>{_duration(t['mean_seconds'])}</td>",
            f"<td>{_duration(t['p95_seconds'])}</td>",
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="task-table"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _alert_table(alerts: dict[str, Any], tz: str) -> str:
    if not alerts["top"]:
        return '<p class="muted">No alerts this day.</p>'
    zone = ZoneInfo(tz)
    rows = []
    for a in alerts["top"]:
        color = _LEVEL_COLORS.get(a["level"], "#6b7280")
        hour = dt.datetime.fromisoformat(a["window_start"]).astimezone(zone)
        rows.append(
            f'<tr><td class="nowrap"><span class="lvl" style="background:{color}">{_e(a["level"])}</span></td>'
            f'<td class="nowrap">{hour:%H:%M}</td><td class="nowrap">{_e(a["check_name"])}</td>'
            f'<td class="text">{_e(a["subject"])}</td><td class="text">{_e(a["title"])}</td></tr>'
        )
    return (
        f'<table id="alert-table"><thead><tr><th>level</th><th class="text">hour ({_e(tz)})</th>'
        '<th class="text">check</th><th class="text">subject</th><th class="text">title</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _system_table(system: dict[str, Any]) -> str:
    redis = system["redis"]
    if redis["reachable"]:
        ratio = f" ({redis['ratio']:.0%} of maxmemory)" if redis["ratio"] is not None else " (no maxmemory)"
        redis_cell = f'<span class="ok">reachable</span>, memory {_bytes(redis["used_memory"])}{_e(ratio)}'
        if redis["memory_alarm"]:
            redis_cell += ' <b class="bad">above the memory limit ratio</b>'
        if redis["error"]:
            redis_cell += f' <span class="bad">{_e(redis["error"])}</span>'
    else:
        redis_cell = f'<b class="bad">unreachable</b>: {_e(redis["error"])}'
    queues = "<br>".join(_e(line) for line in _queue_text(system["queues"])) or "no open tasks"
    return (
        '<table id="system-table"><tbody>'
        f'<tr><td class="text">MySQL</td><td class="text"><span class="ok">reachable</span>, '
        f"{_e(system['mysql']['version'])}</td></tr>"
        f'<tr><td class="text">Redis</td><td class="text">{redis_cell}</td></tr>'
        f'<tr><td class="text">Queue depth</td><td class="text">{queues}</td></tr>'
        "</tbody></table>"
    )


def render_html(data: dict[str, Any]) -> str:
    """One self-contained page: inline CSS and SVG, no script, no external resource."""
    tasks, q, vol, alerts, system = data["tasks"], data["quality"], data["volume"], data["alerts"], data["system"]
    total = tasks["total"]
    severe = alerts["by_level"].get("CRITICAL", 0) + alerts["by_level"].get("ERROR", 0)
    redis_ok = system["redis"]["reachable"]
    cards = [
        ("tasks dispatched", _num(total["dispatched"]), ""),
        ("success rate", _pct(total["success_rate"]), ""),
        ("dead tasks", _num(total["dead"]), "bad" if total["dead"] else ""),
        ("rows", _num(vol["total_rows"]), ""),
        ("hours outside band", _num(vol["outside_band"]), "bad" if vol["outside_band"] else ""),
        ("quality hours failed", _num(q["failed"]), "bad" if q["failed"] else ""),
        ("critical + error alerts", _num(severe), "bad" if severe else ""),
        ("Redis", "reachable" if redis_ok else "unreachable", "word ok" if redis_ok else "word bad"),
    ]
    cards_html = "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v {c}">{_e(v)}</div></div>' for k, v, c in cards
    )
    link = _safe_link(data.get("run_url"))
    run = f' · <a href="{_e(link)}">Airflow run</a>' if link else ""
    window = {k: dt.datetime.fromisoformat(v) for k, v in data["window"].items()}
    utc_span = (
        "" if data["timezone"] == "UTC" else f" (UTC {window['start']:%Y-%m-%d %H:%M} → {window['end']:%Y-%m-%d %H:%M})"
    )
    volume_legend = _legend(
        [
            (_BAR, "rows in the hour"),
            (_BAD, "outside the expected band"),
            (_BAND, f"expected band (mean ± {vol['anomaly_z']:g}σ)"),
        ]
    )
    quality_legend = _legend(
        [
            (_OK, "passed"),
            (_REPAIRED, "repaired (failed, then passed after a repair)"),
            (_BAD, "failed (number of failed expectations)"),
            (_NONE, "not validated"),
        ]
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(data["title"])}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<header>
<h1>{_e(data["title"])}</h1>
<p>{_e(data["day"])} 00:00 – 24:00 {_e(data["timezone"])}{_e(utc_span)}{run}</p>
</header>
<div class="cards">{cards_html}</div>
<section>
<h2>Tasks by crawl object</h2>
{_task_table(tasks)}
<p class="muted">Tasks whose interval starts this day. Dispatched: root tasks; retried: retry tasks created;
success rate: answered / dispatched elements of finished tasks; time to complete: push to finish.</p>
</section>
<section>
<h2>Rows per hour in {_e(vol["table"])}</h2>
{volume_legend}
{_volume_svg(data)}
<p class="muted">{_num(vol["total_rows"])} rows; {vol["outside_band"]} hours outside the band;
{vol["without_band"]} hours without enough history for a band.</p>
</section>
<section>
<h2>Data quality per hour</h2>
{quality_legend}
{_quality_svg(data)}
<p class="muted">{q["passed"]} suite-hours passed, {q["repaired"]} repaired, {q["failed"]} failed,
{q["not_validated"]} not validated; lowest quality score {_pct(q["quality_score_min"])}.</p>
</section>
<section>
<h2>Alerts</h2>
<div style="display:grid;grid-template-columns:minmax(240px,1fr) 3fr;gap:20px;align-items:start">
<div>{_alerts_svg(data)}<p class="muted">{alerts["total"]} alerts this day.</p></div>
<div>{_alert_table(alerts, data["timezone"])}</div>
</div>
</section>
<section>
<h2>System health</h2>
{_system_table(system)}
</section>
<footer>Generated {_e(data["generated_at"])} by crawlops.</footer>
</main>
</body>
</html>
"""
