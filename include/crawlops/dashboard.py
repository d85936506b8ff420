"""The numbers behind the Crawl Ops page: queues, tasks, data quality, volume, alerts, reports.

Every function reads this package's tables (and Redis, for the live queue depth) through
the same code the DAGs use, for a time range of whole UTC hours. Each is one or two
indexed queries whose cost grows with the range, not with the tables:

- tasks by ``interval_start`` (``idx_task_interval``), open tasks by ``idx_task_status``;
- suite verdicts from ``amazon_validation_run`` and check outcomes from ``amazon_check_run``,
  one row per hour each;
- volume from the ``amazon_volume_hourly`` rollup the volume check writes at each hour's
  close; only the hours it has not judged yet (the current one) are counted live, through
  the ``create_hour`` index;
- alerts by ``created_at`` (``idx_alert_created``).

No Airflow imports: the plugin hands in a MySQL connection and a Redis client.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any
from urllib.parse import quote

from crawlops import health, objects, readmodel, report, store, surges, telemetry
from crawlops.db import Connection
from crawlops.model import TaskStatus, as_utc
from crawlops.names import DISPATCH_DAG, SUPERVISION_DAG
from crawlops.queue import RedisClient
from crawlops.report import RESULTS_TABLE
from crawlops.settings import QualitySettings, Settings
from crawlops.store import alerts as store_alerts
from crawlops.store import reports as store_reports
from crawlops.store import story as store_story

HOUR = dt.timedelta(hours=1)
MAX_RANGE = dt.timedelta(days=31)
DEFAULT_RANGE = dt.timedelta(hours=24)
# Disjoint outcomes of a task, in the order the chart stacks them.
OUTCOMES = ("completed", "retried", "failed", "dead", "open")
DAG_IDS = (DISPATCH_DAG, SUPERVISION_DAG)
SUPERVISION = DAG_IDS[1]
# Hours the volume rollup lacks are counted live, the newest this many at most (each is an
# index range of that hour's rows); older ones show as missing until supervision judges them.
LIVE_HOURS_MAX = 24
ALERT_LIMIT = 200


class RangeError(ValueError):
    """A time range the page cannot serve (reversed, or longer than ``MAX_RANGE``)."""


@dataclasses.dataclass(frozen=True)
class HourRange:
    """Whole UTC hours [start, end): the start floored and the end rounded up to the hour.

    Without a start the range is the 24 hours up to the end of the current (or given) end's hour.
    """

    start: dt.datetime
    end: dt.datetime

    @classmethod
    def of(cls, start: dt.datetime | None, end: dt.datetime | None, *, now: dt.datetime | None = None) -> HourRange:
        end = as_utc(end or now or dt.datetime.now(dt.UTC))
        ceil = end.replace(minute=0, second=0, microsecond=0)
        if ceil < end:
            ceil += HOUR
        start = as_utc(start) if start else ceil - DEFAULT_RANGE  # default: 24 hours, the current one last
        floor = start.replace(minute=0, second=0, microsecond=0)
        if ceil <= floor:
            raise RangeError(
                f"the range must end after it starts (start {start:%Y-%m-%d %H:%M}, end {end:%Y-%m-%d %H:%M})"
            )
        if ceil - floor > MAX_RANGE:
            raise RangeError(f"the range may span at most {MAX_RANGE.days} days")
        return cls(floor, ceil)

    @property
    def hours(self) -> list[dt.datetime]:
        return [self.start + HOUR * k for k in range(int((self.end - self.start) / HOUR))]

    def naive(self) -> tuple[dt.datetime, dt.datetime]:
        return self.start.replace(tzinfo=None), self.end.replace(tzinfo=None)

    def index(self, naive_hour: dt.datetime) -> int:
        return int((naive_hour.replace(tzinfo=dt.UTC) - self.start) / HOUR)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "hours": [h.isoformat() for h in self.hours],
        }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=dt.UTC).isoformat()


def run_path(dag_id: str | None, run_id: str | None) -> str | None:
    """The Airflow UI path of a DAG run (relative to the UI root), for this package's DAGs."""
    if dag_id not in DAG_IDS or not run_id:
        return None
    return f"dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


# ---------------------------------------------------------------------------------------
# Queues and task status


def overview(conn: Connection, r: RedisClient, span: HourRange) -> dict[str, Any]:
    """Queue depth per crawl object now (Redis), open tasks now, and tasks in the range per status."""
    start, end = span.naive()
    in_range = dict.fromkeys((s.value for s in TaskStatus), 0)
    in_range.update(store.status_counts(conn, start, end))
    queues: dict[str, dict[str, Any]] = {}
    redis_error = None
    try:
        queues = health.queue_depth(conn, r)
    except Exception as exc:  # the page still shows MySQL's side when Redis is down
        redis_error = f"{type(exc).__name__}: {exc}"
        queues = report.open_tasks_only(conn)
    return {
        "range": {"start": span.start.isoformat(), "end": span.end.isoformat()},
        "queues": dict(sorted(queues.items())),
        "queued_total": None if redis_error else sum(q["queued"] for q in queues.values()),
        "redis_error": redis_error,
        "status_counts": in_range,
        "tasks_total": sum(in_range.values()),
        "crawl_objects": sorted(objects.REGISTRY),
    }


def tasks_by_hour(conn: Connection, span: HourRange) -> dict[str, Any]:
    """Tasks per hour of their window by outcome, each task in exactly one outcome.

    completed; retried = failed and its failures handed to a retry task; failed = failed,
    retry not made yet; dead = retry budget spent; open = pending or in progress.
    """
    start, end = span.naive()
    rows = store.outcome_counts_by_interval(conn, start, end)
    series = {outcome: [0] * len(span.hours) for outcome in OUTCOMES}
    for interval_start, status, has_retry, count in rows:
        outcome = {
            TaskStatus.COMPLETED.value: "completed",
            TaskStatus.FAILED.value: "retried" if has_retry else "failed",
            TaskStatus.DEAD.value: "dead",
        }.get(str(status), "open")
        hour = interval_start.replace(minute=0, second=0, microsecond=0)
        series[outcome][span.index(hour)] += int(count)
    return {
        "hours": [h.isoformat() for h in span.hours],
        "outcomes": list(OUTCOMES),
        "series": series,
        "totals": {outcome: sum(values) for outcome, values in series.items()},
    }


# ---------------------------------------------------------------------------------------
# Data quality and volume


# The page's cells speak the words amazon_check_run stores (pass / repaired / fail): a suite's
# verdict (passed / repaired / failed in the read model) is formatted into them, so a strip of
# suite cells reads like a strip of check cells.
CELL_STATUS = {"passed": "pass", "repaired": "repaired", "failed": "fail"}


def _suite_strip(suite: readmodel.SuiteQuality) -> dict[str, Any]:
    cells = [
        None
        if c is None
        else {
            "status": CELL_STATUS[c.verdict],
            "evaluated": c.evaluated,
            "failed": c.failed,
            "row_count": c.row_count,
            "failures": c.failures,
            "quality_score": c.quality_score,
            "run": run_path(SUPERVISION_DAG, c.run_id),
        }
        for c in suite.hours
    ]
    return {"name": suite.label, "kind": "suite", "cells": cells, "passed": suite.passed + suite.repaired,
            "failed": suite.failed, "not_run": suite.not_validated}  # fmt: skip


def quality_by_hour(conn: Connection, span: HourRange) -> dict[str, Any]:
    """One strip per suite (``readmodel.suite_quality``, as the daily report has them) and per
    hourly check: each hour pass / repaired / fail / not run, with what failed.

    Suite cells list their failed expectations; check cells the titles of the findings the
    check stored for that hour.
    """
    start, end = span.naive()
    size = len(span.hours)
    suites = readmodel.suite_quality(conn, span.start, size).suites
    strips = [_suite_strip(suites[label]) for label in sorted(suites)]
    # a suite's own check row: its strip comes from amazon_validation_run
    checks = store_alerts.hourly_checks(conn, start, end, except_like="suite:%")
    titles = _finding_titles(conn, {c for c, *_ in checks}, start, end)
    by_check: dict[str, dict[str, Any]] = {}
    for check, window_start, status, findings, run_id in checks:
        strip = by_check.setdefault(check, {"name": check, "kind": "check", "cells": [None] * size})
        strip["cells"][span.index(window_start)] = {
            "status": str(status),
            "findings": int(findings or 0),
            "failures": titles.get((check, window_start, run_id), []),
            "run": run_path(SUPERVISION_DAG, run_id),
        }
    for strip in by_check.values():
        cells = [c for c in strip["cells"] if c]
        strip["passed"] = sum(1 for c in cells if c["status"] in ("pass", "repaired"))
        strip["failed"] = sum(1 for c in cells if c["status"] == "fail")
        strip["not_run"] = size - len(cells)
    return {"hours": [h.isoformat() for h in span.hours], "strips": strips + [by_check[c] for c in sorted(by_check)]}


# The check names of the findings each hourly check stores, where they differ from its own.
FINDINGS_OF_CHECK = {
    "completeness": ("missing_data", "task_dead"),
    "recrawl_incomplete": ("incomplete_data",),
    "quarantine_invalid": ("invalid_data",),
}


def _finding_titles(conn: Connection, checks: set[str], start: dt.datetime, end: dt.datetime) -> dict[tuple, list[str]]:
    """Titles of the supervision's hourly findings of ``checks`` in [start, end), per (check, hour, run).

    Keyed by the run too: a check cell lists what the run that recorded it found, not what an
    earlier run of the same hour found (alert rows of a re-run hour stay) or what another DAG
    stored under the same check name (dispatch's ``task_dead``)."""
    owner = {f: check for check in checks for f in FINDINGS_OF_CHECK.get(check, (check,))}
    if not owner:
        return {}
    titles: dict[tuple, list[str]] = {}
    # current ones only: a re-run no longer makes resolved ones
    for finding_check, window_start, run_id, title in store_alerts.hourly_titles(conn, list(owner), start, end,
                                                                              SUPERVISION):  # fmt: skip
        titles.setdefault((owner[finding_check], window_start, run_id), []).append(title)
    return titles


def volume_by_hour(
    conn: Connection, span: HourRange, *, table: str = RESULTS_TABLE, settings: QualitySettings | None = None
) -> dict[str, Any]:
    """Rows per hour against the band the volume check judged them by (``readmodel.volume``, as
    the daily report has them).

    Hours the check has judged come from the ``amazon_volume_hourly`` rollup (the count it
    saw at the hour's close); the newest ``LIVE_HOURS_MAX`` others are counted now, with the
    band the check would give them; older hours without a rollup row are ``missing``
    (backfill the supervision DAG with ``run_hourly`` over them to judge them).
    """
    q = settings or Settings.load().quality
    volume = readmodel.volume(conn, table, span.hours, q, now=dt.datetime.now(dt.UTC), live_max=LIVE_HOURS_MAX)
    return {
        "table": table,
        "hours": [dataclasses.asdict(h) for h in volume.hours],
        "total_rows": volume.total_rows,
        "missing_hours": volume.missing_hours,
        "anomalous_hours": volume.anomalous_hours,
    }


# ---------------------------------------------------------------------------------------
# What the crawlers saw, and the fleet


def crawl_outcomes(conn: Connection, span: HourRange) -> dict[str, Any]:
    """Answers in the range per crawl object and marketplace (kit workers' counts): answered,
    empty, failed by reason, with shares; and failures by reason over all of them."""
    return surges.breakdown(conn, *span.naive())


def fleet(r: RedisClient, *, silence_seconds: int, lookback: dt.timedelta = dt.timedelta(days=1)) -> dict[str, Any]:
    """Kit workers seen in the last day, newest first, each alive or silent (not seen for
    ``silence_seconds``), from their heartbeats; workers without the kit do not show."""
    now = dt.datetime.now(dt.UTC)
    workers = [
        {**w.to_json(), "alive": w.last_seen >= now - dt.timedelta(seconds=silence_seconds)}
        for w in telemetry.workers_seen(r, now - lookback)
    ]
    return {"workers": workers, "alive": sum(1 for w in workers if w["alive"]), "silence_seconds": silence_seconds}


# ---------------------------------------------------------------------------------------
# Alerts and reports


def alerts(conn: Connection, span: HourRange, *, limit: int = ALERT_LIMIT) -> dict[str, Any]:
    """Alerts raised in the range by level, and the newest ``limit`` of them with their run's link."""
    start, end = span.naive()
    by_level = store_alerts.counts_by_level(conn, "created_at", start, end)
    rows = store_alerts.raised_between(conn, start, end, limit)
    keys = ("id", "level", "source", "check_name", "subject", "title", "window_start", "window_end", "created_at",
            "dag_run_id", "delivery_status", "status", "occurrences", "last_seen", "owner", "acted_by", "acted_at",
            "action_note", "crawl_object", "marketplace", "escalated_at")  # fmt: skip
    items = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        for key in ("window_start", "window_end", "created_at", "last_seen", "acted_at", "escalated_at"):
            item[key] = _iso(item[key])
        source = item["source"]
        item |= {"id": int(item["id"]), "occurrences": int(item["occurrences"]),
                 "dag_id": source if source in DAG_IDS else None,
                 "run": run_path(source, item["dag_run_id"])}  # fmt: skip
        items.append(item)
    return {
        "by_level": by_level,
        "total": sum(by_level.values()),
        "alerts": items,
        "truncated": sum(by_level.values()) > len(items),
    }


def latest_report(conn: Connection) -> dict[str, Any] | None:
    """The newest daily report's facts (its HTML is served by ``latest_report_html``)."""
    row = store_reports.latest(conn)
    if row is None:
        return None
    report_date, created_at, run_id, summary = row
    facts = {
        "report_date": report_date.isoformat(),
        "created_at": _iso(created_at),
        "dag_run_id": run_id,
        "run": run_path(SUPERVISION_DAG, run_id),
    }
    quality_keys, volume_keys = ("passed", "failed", "not_validated"), ("total_rows", "outside_band", "without_band")
    if not summary:
        return {**facts, "title": None, "tasks": None, "quality": dict.fromkeys(quality_keys),
                "volume": dict.fromkeys(volume_keys), "alerts": None}  # fmt: skip
    data = report.ReportData.from_json(json.loads(summary))
    return {
        **facts,
        "title": data.title,
        "tasks": dataclasses.asdict(data.tasks.total),
        "quality": {k: getattr(data.quality, k) for k in quality_keys},
        "volume": {k: getattr(data.volume, k) for k in volume_keys},
        "alerts": data.alerts.by_level,
    }


def latest_report_html(conn: Connection) -> str | None:
    return store_reports.latest_html(conn)


def story(conn: Connection, span: HourRange) -> dict[str, Any]:
    """The faults ``make demo`` injected into its seeded history in the range, each with what the
    package did about it (``crawlops_demo_story``); none outside a demo database."""
    start, end = span.naive()
    return {
        "faults": [
            {"hour": _iso(hour), "fault": fault, "title": title, "story": text}
            for hour, fault, title, text in store_story.faults_between(conn, start, end)
        ]
    }
