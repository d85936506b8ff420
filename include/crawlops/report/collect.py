"""Collecting the daily report's numbers: every one is a SQL aggregate over the day's rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from crawlops import health, objects, readmodel, store, surges
from crawlops.db import Connection
from crawlops.model import TaskStatus, Window
from crawlops.quality import scope as quality_scope
from crawlops.queue import RedisClient
from crawlops.report.model import (
    AlertLine,
    Alerts,
    CrawlOutcomes,
    MarketOutcomes,
    MysqlFacts,
    OperatorAction,
    Quality,
    QueueDepth,
    RedisFacts,
    ReportData,
    Span,
    SystemHealth,
    TaskCounts,
    TaskStatistics,
    Volume,
)
from crawlops.settings import Settings
from crawlops.store import alerts as store_alerts

RESULTS_TABLE = objects.get(objects.FIRST).results_table

LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO")  # most severe first

TOP_ALERTS = 10

P95_PERCENT = 95  # integer, so the rank CEIL(95 * n / 100) is exact decimal arithmetic

FINISHED = (TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.DEAD.value)

HOUR = dt.timedelta(hours=1)


@dataclasses.dataclass
class DailyReport:
    day: dt.date
    window: Window
    data: ReportData
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
    data = ReportData(
        title=f"Crawl daily report {day.isoformat()}",
        day=day.isoformat(),
        timezone=tz,
        window=Span(window.start.isoformat(), window.end.isoformat()),
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        run_url=run_url,
        hours=labels,
        tasks=task_statistics(conn, window),
        quality=quality_by_hour(conn, window, hours),
        volume=volume_by_hour(conn, settings, hours),
        volumes=object_volumes(conn, settings, window, hours),
        alerts=alert_summary(conn, window),
        system=system_health(conn, r, settings),
        outcomes=crawl_outcomes(conn, window),
        actions=operator_actions(conn, window),
    )
    from crawlops.report.html import render_html
    from crawlops.report.markdown import render_markdown

    return DailyReport(day, window, data, render_markdown(data), render_html(data))


def operator_actions(conn: Connection, window: Window) -> list[OperatorAction]:
    """The day's audited operator actions, oldest first."""
    from crawlops.store import audit

    start, end = window.naive()
    return [
        OperatorAction(a["action"], a["subject"], a["actor"], a["reason"], a["acted_at"])
        for a in reversed(audit.actions_between(conn, start, end))
    ]


def crawl_outcomes(conn: Connection, window: Window) -> CrawlOutcomes:
    """What the crawlers saw over the day, per crawl object and marketplace (``surges.breakdown``)."""
    seen = surges.breakdown(conn, *window.naive())
    return CrawlOutcomes(
        markets=[MarketOutcomes(**m) for m in seen["markets"]],
        failed_by_reason=seen["failed_by_reason"],
        total=seen["total"],
    )


def task_statistics(conn: Connection, window: Window) -> TaskStatistics:
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

    stats = TaskStatistics()
    for row in rows:
        task_type, tasks, dispatched, retried, completed, failed, dead, still_open = row[:8]
        elements, answered, empty, lost, n, mean = row[8:]
        entry = TaskCounts(
            tasks=int(tasks),
            dispatched=int(dispatched or 0),
            completed=int(completed or 0),
            failed=int(failed or 0),
            retried=int(retried or 0),
            dead=int(dead or 0),
            open=int(still_open or 0),
            finished_elements=int(elements or 0),
            answered_elements=int(answered or 0),
            empty_elements=int(empty or 0),
            lost_elements=int(lost or 0),
            success_rate=round(int(answered) / int(elements), 6) if elements else None,
            timed_tasks=int(n or 0),
            mean_seconds=round(float(mean), 1) if mean is not None else None,
            p95_seconds=p95_by_type.get(task_type),
        )
        if task_type is None:
            stats.total = entry
        else:
            stats.by_type[str(task_type)] = entry
    stats.by_type = dict(sorted(stats.by_type.items()))
    return stats


def quality_by_hour(conn: Connection, window: Window, hours: Sequence[dt.datetime]) -> Quality:
    """Suite verdicts per hour of the day (``readmodel.suite_quality``, as the Crawl Ops page shows them)."""
    return readmodel.suite_quality(conn, window.start, len(hours))


def volume_by_hour(
    conn: Connection, settings: Settings, hours: Sequence[dt.datetime], *, crawl_object: str = objects.FIRST
) -> Volume:
    """Rows per hour of a crawl object's results table against the volume check's band
    (``readmodel.volume``, as the Crawl Ops page shows them), every hour of the day counted
    where the check has not judged it; the band by the object's own thresholds."""
    entry = objects.get(crawl_object)
    quality = settings.for_object(crawl_object, entry.quality_defaults).quality
    return readmodel.volume(conn, entry.results_table, hours, quality, now=dt.datetime.now(dt.UTC))


def object_volumes(
    conn: Connection, settings: Settings, window: Window, hours: Sequence[dt.datetime]
) -> dict[str, Volume]:
    """``volume_by_hour`` of every crawl object in use that day but the first (``Volume``)."""
    in_use = quality_scope.objects_to_check(conn, settings, window)
    return {name: volume_by_hour(conn, settings, hours, crawl_object=name) for name in in_use if name != objects.FIRST}


def alert_counts(conn: Connection, column: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    """Current alerts per level (every level, most severe first) whose ``column`` lies in [start, end)."""
    return store_alerts.counts_by_level(conn, column, start, end)


def alert_summary(conn: Connection, window: Window) -> Alerts:
    """The day's alerts (window_start in the day) by level, and the top ones by level then time."""
    start, end = window.naive()
    by_level = alert_counts(conn, "window_start", start, end)
    top = [
        AlertLine(level, source, check_name, subject, title, window_start.replace(tzinfo=dt.UTC).isoformat())
        for level, source, check_name, subject, title, window_start in store_alerts.top_current(
            conn, start, end, TOP_ALERTS
        )
    ]
    return Alerts(total=sum(by_level.values()), by_level=by_level, top=top)


def system_health(conn: Connection, r: RedisClient, settings: Settings) -> SystemHealth:
    """MySQL (reachable: the report is being read from it), Redis reachability and memory, queue depths."""
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        (version,) = cur.fetchone()
    system = SystemHealth(mysql=MysqlFacts(reachable=True, version=str(version)))
    try:
        facts, findings = health.probe_redis(r, settings)
    except health.SystemFault as fault:
        system.redis.error = fault.finding.title
    else:
        system.redis = RedisFacts(reachable=True, memory_alarm=bool(findings), **facts)
    queues = None
    if system.redis.reachable:
        try:
            queues = health.queue_depth(conn, r)
        except Exception as exc:  # Redis went away between the probe and the count
            system.redis.error = f"queue depth unavailable: {type(exc).__name__}: {exc}"
    system.queues = {t: QueueDepth(**q) for t, q in (open_tasks_only(conn) if queues is None else queues).items()}
    return system


def open_tasks_only(conn: Connection) -> dict[str, dict[str, int | None]]:
    """Open tasks per crawl object from MySQL alone (when Redis cannot say what is queued)."""
    return {
        t: {"open_tasks": n, "queued": None, "failed_waiting": None} for t, n in sorted(store.open_counts_by_type(conn))
    }
