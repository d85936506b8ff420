"""Collecting the daily report's numbers: every one is a SQL aggregate over the day's rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from crawlops import health, quality, store, surges
from crawlops.db import Connection
from crawlops.model import TaskStatus, Window
from crawlops.queue import RedisClient
from crawlops.report.model import (
    AlertLine,
    Alerts,
    CrawlOutcomes,
    MarketOutcomes,
    MysqlFacts,
    Quality,
    QualityCell,
    QueueDepth,
    RedisFacts,
    ReportData,
    Span,
    SuiteQuality,
    SystemHealth,
    TaskCounts,
    TaskStatistics,
    Volume,
    VolumeHour,
)
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
        alerts=alert_summary(conn, window),
        system=system_health(conn, r, settings),
        outcomes=crawl_outcomes(conn, window),
    )
    from crawlops.report.html import render_html
    from crawlops.report.markdown import render_markdown

    return DailyReport(day, window, data, render_markdown(data), render_html(data))


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
    """Suite verdicts per hour, from the validation runs whose window lies inside the day.

    An hour reads ``failed``, ``repaired`` (its first run failed, a later one passed after a
    repair) or ``passed``; a re-run never erases a failure. ``quality_score`` is the share of
    the hour's rows passing every validity and required-field rule (the lowest when several
    runs fall in one hour). A run shorter than an hour counts in the hour it starts in;
    several runs in one hour combine (the worst verdict, counts added).
    """
    start, end = window.naive()
    quality = Quality()
    for (
        suite_name,
        table_name,
        window_start,
        success,
        evaluated,
        failed,
        row_count,
        verdict,
        score,
    ) in verdicts.day_verdicts(conn, start, end):
        label = suite_name if suite_name == table_name else f"{suite_name} ({table_name})"
        suite = quality.suites.get(label) or SuiteQuality(suite_name, table_name, [None] * len(hours))
        quality.suites[label] = suite
        index = int((window_start.replace(tzinfo=dt.UTC) - window.start) // HOUR)
        run = QualityCell(
            bool(success), str(verdict), int(evaluated or 0), int(failed or 0), int(row_count or 0),
            None if score is None else float(score),
        )  # fmt: skip
        cell = suite.hours[index]
        if cell is None:
            suite.hours[index] = run
        else:
            cell.merge(run)
    for suite in quality.suites.values():
        cells = [c for c in suite.hours if c is not None]
        suite.passed = sum(1 for c in cells if c.verdict == "passed")
        suite.repaired = sum(1 for c in cells if c.verdict == "repaired")
        suite.failed = sum(1 for c in cells if c.verdict == "failed")
        suite.not_validated = len(suite.hours) - len(cells)
        scores = [c.quality_score for c in cells if c.quality_score is not None]
        suite.quality_score_min = min(scores) if scores else None
        suite.quality_score_mean = round(sum(scores) / len(scores), 6) if scores else None
        quality.passed += suite.passed
        quality.repaired += suite.repaired
        quality.failed += suite.failed
        quality.not_validated += suite.not_validated
    lowest = [s.quality_score_min for s in quality.suites.values() if s.quality_score_min is not None]
    quality.quality_score_min = min(lowest) if lowest else None
    return quality


def volume_by_hour(conn: Connection, settings: Settings, hours: Sequence[dt.datetime]) -> Volume:
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
    volume = Volume(table=RESULTS_TABLE, anomaly_z=q.anomaly_z)
    for hour in naive:
        observed = counts.get(hour, 0)
        verdict = quality.judge_volume(observed, [counts[p] for p in history[hour] if counts.get(p)], q)
        low, high = quality.volume_band(verdict, q)
        outside = None if low is None or high is None else observed < low or observed > high
        volume.hours.append(
            VolumeHour(
                hour=hour.replace(tzinfo=dt.UTC).isoformat(),
                rows=observed,
                history_points=verdict.points,
                mean=verdict.mean,
                band_low=low,
                band_high=high,
                outside=outside,
                anomalous=verdict.anomalous,
            )
        )
    volume.total_rows = sum(e.rows for e in volume.hours)
    volume.outside_band = sum(1 for e in volume.hours if e.outside)
    volume.without_band = sum(1 for e in volume.hours if e.band_low is None)
    return volume


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
