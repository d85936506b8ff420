"""What this package knows, as Prometheus metrics: the numbers behind the Crawl Ops page, read
at scrape time from the same tables (and Redis for the queues).

Every metric is a gauge named ``crawlops_*`` with bounded labels: ``crawl_object`` (the
registry's), ``marketplace`` (the settings' list), ``status``, ``outcome``, ``level``,
``check`` (the package's check names) and ``dag_id``; never a task id or a keyword. A scrape
is a handful of indexed queries plus one pipelined Redis call: the open tasks, the settle
backlog, the last hour's settled tasks, one loose index scan per results table for
freshness, the closed hour's suite verdicts and volume rollup, the last hour's alerts and
failed deliveries, and the newest run of every check. No Airflow imports: the plugin serves
the families as Prometheus text (``prometheus-client``) on the Crawl Ops app's ``/metrics``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from crawlops import health, objects, surges, telemetry
from crawlops.db import Connection
from crawlops.queue import RedisClient
from crawlops.store import alerts as store_alerts
from crawlops.store import metrics as store_metrics
from crawlops.store import tasks as store_tasks
from crawlops.store import verdicts

HOUR = dt.timedelta(hours=1)
VERDICTS = {"passed": 1.0, "repaired": 1.0, "failed": 0.0}


@dataclasses.dataclass
class Family:
    """One metric: its name, help text and samples (labels, value)."""

    name: str
    help: str
    labels: tuple[str, ...]
    samples: list[tuple[tuple[str, ...], float]] = dataclasses.field(default_factory=list)

    def add(self, value: float | None, *labels: Any) -> None:
        if value is not None:
            self.samples.append((tuple(str(v) for v in labels), float(value)))


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def queues(conn: Connection, r: RedisClient) -> list[Family]:
    queued = Family("crawlops_queued_elements", "Elements waiting in open tasks' Redis sets", ("crawl_object",))
    waiting = Family("crawlops_failed_waiting_elements", "Failed elements waiting for their retry task",
                     ("crawl_object",))  # fmt: skip
    tasks = Family("crawlops_open_tasks", "Open tasks by status", ("crawl_object", "status"))
    backlog = Family("crawlops_settle_backlog_tasks", "Finished tasks not settled yet", ("crawl_object",))
    for name, depth in sorted(health.queue_depth(conn, r).items()):
        queued.add(depth["queued"], name)
        waiting.add(depth["failed_waiting"], name)
    for name, status, count in store_metrics.open_tasks(conn):
        tasks.add(count, name, status)
    for name, count in store_metrics.settle_backlog(conn):
        backlog.add(count, name)
    return [queued, waiting, tasks, backlog]


def fleet(r: RedisClient, now: dt.datetime, silence_seconds: int) -> list[Family]:
    """Kit workers alive (a heartbeat within ``silence_seconds``) and seen in the last day."""
    alive = Family("crawlops_workers_alive", "Kit workers with a heartbeat in the last worker_silence_seconds", ())
    seen = Family("crawlops_workers_seen", "Kit workers with a heartbeat in the last day", ())
    workers = telemetry.workers_seen(r, now - 24 * HOUR)
    alive.add(sum(1 for w in workers if w.last_seen >= now - dt.timedelta(seconds=silence_seconds)))
    seen.add(len(workers))
    return [alive, seen]


def seen_by_crawlers(conn: Connection, now: dt.datetime) -> list[Family]:
    """What the kit workers saw in the last 30 minutes per crawl object and marketplace (as folded
    into ``amazon_crawl_outcome`` by the supervision's ``crawl_outcomes``), failures by reason."""
    answers = Family("crawlops_crawl_answers_last_30m", "Elements the kit workers answered in the last 30 minutes, "
                     "by outcome (answered, empty, failed) and failure reason", ("crawl_object", "marketplace",
                     "outcome", "reason"))  # fmt: skip
    rate = Family("crawlops_crawl_success_rate_last_30m", "(answered + empty) / all answers the kit workers gave in "
                  "the last 30 minutes, per crawl object and marketplace", ("crawl_object", "marketplace"))  # fmt: skip
    end = _naive(now).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)  # the current minute counts
    for market in surges.breakdown(conn, end - dt.timedelta(minutes=30), end)["markets"]:
        keys = (market["crawl_object"], market["marketplace"])
        answers.add(market["answered"], *keys, "answered", "")
        answers.add(market["empty"], *keys, "empty", "")
        for reason, count in market["failed"].items():
            answers.add(count, *keys, "failed", reason)
        good = int(market["answered"]) + int(market["empty"])
        total = good + sum(int(c) for c in market["failed"].values())
        rate.add(round(good / total, 6) if total else None, *keys)
    return [answers, rate]


def outcomes(conn: Connection, now: dt.datetime) -> list[Family]:
    """Elements of the tasks settled in the last hour, by outcome, and the success rate."""
    elements = Family("crawlops_settled_elements_last_hour", "Elements of tasks settled in the last hour, by outcome",
                      ("crawl_object", "outcome"))  # fmt: skip
    rate = Family("crawlops_success_rate", "Answered (rows or empty) / dispatched elements of tasks settled in the "
                  "last hour", ("crawl_object",))  # fmt: skip
    end = _naive(now)
    for name, _tasks, *counts in store_tasks.settled_totals_by_type(conn, end - HOUR, end):
        total, answered, empty, lost = (int(v or 0) for v in counts)
        for outcome, value in (("dispatched", total), ("answered", answered - empty), ("empty", empty),
                               ("lost", lost), ("failed", total - answered - lost)):  # fmt: skip
            elements.add(value, name, outcome)
        rate.add(round(answered / total, 6) if total else None, name)
    return [elements, rate]


def freshness(conn: Connection, now: dt.datetime) -> list[Family]:
    lag = Family("crawlops_freshness_lag_seconds", "Age of the newest result row per crawl object and marketplace",
                 ("crawl_object", "marketplace"))  # fmt: skip
    end = _naive(now)
    for name, entry in sorted(objects.REGISTRY.items()):
        for marketplace, newest in store_metrics.newest_rows(conn, entry.results_table):
            if newest is not None and marketplace:
                lag.add(max((end - newest).total_seconds(), 0.0), name, marketplace)
    return [lag]


def closed_hour(conn: Connection, now: dt.datetime) -> list[Family]:
    """The last closed hour's rows, quality score and suite verdict per crawl object."""
    rows = Family("crawlops_hour_rows", "Result rows of the last closed hour (the volume check's count)",
                  ("crawl_object",))  # fmt: skip
    score = Family("crawlops_quality_score", "Quality score of the last closed hour (0-1)", ("crawl_object",))
    passed = Family("crawlops_suite_passed", "1 when the last closed hour passed its suite (or was repaired), 0 when "
                    "it failed; absent before its validation", ("crawl_object",))  # fmt: skip
    hour = _naive(now).replace(minute=0, second=0, microsecond=0) - HOUR
    by_table = {e.results_table: name for name, e in objects.REGISTRY.items()}
    for _suite, table, _start, verdict, *_rest, run_score, _ok in verdicts.validation_rows(conn, hour, hour + HOUR):
        if table in by_table:
            passed.add(VERDICTS.get(str(verdict), 0.0), by_table[table])
            score.add(None if run_score is None else float(run_score), by_table[table])
    for table, name in sorted(by_table.items()):
        for row in verdicts.volume_rows(conn, table, hour, hour + HOUR):
            rows.add(int(row[1]), name)
    return [rows, score, passed]


def alerting(conn: Connection, now: dt.datetime) -> list[Family]:
    raised = Family("crawlops_alerts_last_hour", "Alerts raised in the last hour, by level", ("level",))
    failed = Family("crawlops_failed_deliveries_last_day", "Alerts of the last day whose delivery failed", ())
    sends = Family("crawlops_alert_sends_failing", "Sends of the last day a channel failed or gave up on, per "
                   "channel (a connection id)", ("channel",))  # fmt: skip
    live = Family("crawlops_alerts_live", "Alerts still open, acknowledged or expected, by level and status",
                  ("level", "status"))  # fmt: skip
    end = _naive(now)
    for level, count in store_alerts.counts_by_level(conn, "created_at", end - HOUR, end).items():
        raised.add(count, level)
    failed.add(store_metrics.failed_deliveries(conn, end - 24 * HOUR))
    for channel, count in store_metrics.failing_sends(conn, end - 24 * HOUR):
        sends.add(count, channel)
    for level, status, count in store_metrics.live_alerts(conn):
        live.add(count, level, status)
    return [raised, failed, sends, live]


def checks(conn: Connection, now: dt.datetime) -> list[Family]:
    """How long ago each check last ran, its last status, and retention's unfinished work."""
    age = Family("crawlops_check_last_run_age_seconds", "Seconds since each supervision check last recorded an "
                 "outcome (the newest of the last two days)", ("check",))  # fmt: skip
    failing = Family("crawlops_check_failing", "1 when the check's newest outcome is a failure", ("check",))
    unfinished = Family("crawlops_retention_unfinished", "1 when the last retention run left work for the next", ())
    end = _naive(now)
    for check, status, checked_at in store_metrics.latest_checks(conn, end - 48 * HOUR):
        age.add(max((end - checked_at).total_seconds(), 0.0), check)
        failing.add(1.0 if str(status) == "fail" else 0.0, check)
        if check == "retention":
            unfinished.add(1.0 if str(status) == "unfinished" else 0.0)
    return [age, failing, unfinished]


def collect(
    conn: Connection, r: RedisClient, *, now: dt.datetime | None = None, silence_seconds: int = 120
) -> list[Family]:
    """Every family of the scrape; the queue and fleet families are left out (with
    ``crawlops_redis_up`` 0) when Redis cannot be asked, the rest still come from MySQL."""
    now = now or dt.datetime.now(dt.UTC)
    redis_up = Family("crawlops_redis_up", "1 when the scrape could read the queues from Redis", ())
    try:
        families = queues(conn, r) + fleet(r, now, silence_seconds)
        redis_up.add(1.0)
    except Exception:  # the scrape still tells MySQL's side
        families = []
        redis_up.add(0.0)
    families += outcomes(conn, now) + seen_by_crawlers(conn, now) + freshness(conn, now) + closed_hour(conn, now)
    families += alerting(conn, now) + checks(conn, now)
    conn.rollback()
    return [redis_up, *families]
