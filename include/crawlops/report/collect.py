"""Collecting the daily report's numbers: every one is a SQL aggregate over the day's rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from crawlops import health, quality, store
from crawlops.db import Connection
from crawlops.model import TaskStatus, Window
from crawlops.queue import RedisClient
from crawlops.settings import Settings
from crawlops.store import alerts as store_alerts
from crawlops.store import verdicts

RESULTS_TABLE = "amazon_search_result"

LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO")  # most severe first

TOP_ALERTS = 10

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
    from crawlops.report.html import render_html
    from crawlops.report.markdown import render_markdown

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
    rows, p95_rows = store.day_task_statistics(conn, start, end, percent=P95_PERCENT)
    p95_by_type: dict[str | None, int] = {}
    for task_type, seconds, is_type_p95, is_all_p95 in p95_rows:
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
    rows = verdicts.day_verdicts(conn, start, end)
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


def alert_counts(conn: Connection, column: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Current alerts per level (every level, most severe first) whose ``column`` lies in [start, end)."""
    return store_alerts.counts_by_level(conn, column, start, end)


def alert_summary(conn: Connection, window: Window) -> dict[str, Any]:
    """The day's alerts (window_start in the day) by level, and the top ones by level then time."""
    start, end = window.naive()
    by_level = alert_counts(conn, "window_start", start, end)
    top = [
        {
            "level": level,
            "source": source,
            "check_name": check_name,
            "subject": subject,
            "title": title,
            "window_start": window_start.replace(tzinfo=dt.UTC).isoformat(),
        }
        for level, source, check_name, subject, title, window_start in store_alerts.top_current(
            conn, start, end, TOP_ALERTS
        )
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
    return {
        t: {"open_tasks": n, "queued": None, "failed_waiting": None} for t, n in sorted(store.open_counts_by_type(conn))
    }
