"""A day of operation, scaled down in `make test` (SOAK_HOURS=6, SOAK_KEYWORDS=200) and full
size in `make soak` (24 hours at 100k elements an hour): hourly dispatch, a simulated fleet
that fails, answers empty, vanishes and writes broken rows, and the supervision checks of
every hour. At the end every dispatched element is answered, in an open retry or Dead (none
lost), statuses are consistent, alerts are bounded, and the daily report matches the tables.

A slow day on a busy machine is not a failure: the timeout scales with the size asked for
(``SOAK_SECONDS_PER_ELEMENT``, 10 ms an element by default, some 14x the rate measured
here), each simulated hour prints its progress and rate, and the run's throughput is the
figure to compare (``make soak`` writes it to ``bench/results/soak.json``).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time

import pytest

from crawlops import dispatch, health, invariant, lifecycle, quality, report
from crawlops.alerts import record_findings
from crawlops.harness import simulator
from crawlops.model import UTC, Window

HOURS = int(os.environ.get("SOAK_HOURS", "6"))
KEYWORDS = int(os.environ.get("SOAK_KEYWORDS", "200"))
DAY = dt.datetime(2026, 11, 3, tzinfo=UTC)
ELEMENTS = KEYWORDS * 5 * HOURS
TIMEOUT = 600 + int(ELEMENTS * float(os.environ.get("SOAK_SECONDS_PER_ELEMENT", "0.01")))


def progress(hour: int, counts: dict[str, int], started: float, hour_started: float) -> None:
    per_hour, total = time.monotonic() - hour_started, time.monotonic() - started
    print(
        f"soak hour {hour + 1}/{HOURS}: {KEYWORDS * 5} dispatched, crawl {counts}; {per_hour:.1f} s, "
        f"{KEYWORDS * 5 / per_hour:,.0f} elements/s; {total:.0f} s in all",
        flush=True,
    )


@pytest.mark.timeout(TIMEOUT)
def test_a_day_of_dispatch_crawl_and_supervision(mysql, redis_client, settings, config):
    config([("search_result", f"soak keyword {i}", "US", "hourly", 5) for i in range(KEYWORDS)])
    rng = random.Random(2026)
    fleet = simulator.Behaviour(
        results_per_page=3, fail_rate=0.03, vanish_rate=0.01, empty_rate=0.02, invalid_rate=0.005
    )
    crawled = {"answered": 0, "empty": 0, "failed": 0, "vanished": 0}
    findings = 0
    started = time.monotonic()
    for hour in range(HOURS):
        hour_started = time.monotonic()
        window = Window(DAY + dt.timedelta(hours=hour), DAY + dt.timedelta(hours=hour + 1))
        plan = dispatch.plan_window(mysql, settings, window, "UTC")
        dispatch.record_plan(mysql, settings, plan)
        dispatch.push_window(mysql, redis_client, settings, window)
        lifecycle.retry_failures(mysql, redis_client, settings)

        def inside(window=window):
            return window.start + dt.timedelta(seconds=rng.uniform(0, 3599))

        counts = simulator.crawl(mysql, redis_client, behaviour=fleet, rng=rng, clock=inside)
        for outcome in crawled:
            crawled[outcome] += counts[outcome]
        later = dt.datetime.now(UTC) + dt.timedelta(hours=hour + 1)
        checks = [
            health.check_tasks(mysql, redis_client, settings, later).findings,
            quality.check_completeness(mysql, redis_client, settings, Window(later - dt.timedelta(hours=1), later))[1],
            quality.quarantine_invalid(mysql, "amazon_search_result", window, settings)[1],
        ]
        for found in checks:
            record_findings(mysql, found, window=window)
            findings += len(found)
        progress(hour, counts, started, hour_started)

    # What the next supervision run does, past every task's grace period.
    lifecycle.track(mysql, redis_client, settings, now=dt.datetime.now(UTC) + dt.timedelta(hours=HOURS + 2))
    expected = KEYWORDS * 5 * HOURS
    fates = invariant.element_fates(mysql)
    seconds = time.monotonic() - started
    print(f"soak: {expected} elements dispatched; simulator {crawled}; fates {fates}")
    print(f"soak throughput: {expected / seconds:,.0f} elements/s through dispatch, crawl and supervision "
          f"({seconds:.0f} s; timeout {TIMEOUT} s)")  # fmt: skip
    if os.environ.get("SOAK_RECORD"):
        from bench.common import write_result

        write_result("soak", {"hours": HOURS, "elements": expected, "seconds": round(seconds, 1),
                              "elements_per_second": round(expected / seconds), "fates": fates})  # fmt: skip
    assert crawled["vanished"] > 0 and crawled["empty"] > 0  # the holes were exercised
    assert fates["LOST"] == 0
    assert sum(fates.values()) == expected
    # Each element is answered once: an answered or empty one is never dispatched again.
    assert (fates["answered"], fates["empty"]) == (crawled["answered"], crawled["empty"])
    with mysql.cursor() as cur:
        cur.execute("SELECT COALESCE(SUM(element_count), 0) FROM amazon_task_information WHERE task_source IS NULL")
        assert int(cur.fetchone()[0]) == expected
        cur.execute("SELECT task_status, COUNT(*) FROM amazon_task_information GROUP BY task_status")
        statuses = dict(cur.fetchall())
        # Every task is accounted for: open ones only from the last hours, no unknown status.
        assert set(statuses) <= {"Pending", "In Progress", "Completed", "Failed", "Dead"}
        cur.execute(
            "SELECT COUNT(*) FROM amazon_task_information t WHERE t.task_status = 'Failed' AND NOT EXISTS "
            "(SELECT 1 FROM amazon_task_information r WHERE r.task_id = CONCAT(t.task_id, '_fail'))"
        )
        assert cur.fetchone() == (0,)  # every Failed task has its retry (or was Dead instead)
        cur.execute("SELECT COUNT(*) FROM amazon_alert")
        alerts = int(cur.fetchone()[0])
    # Bounded: at most a few findings per task and hour, never one per element.
    assert alerts <= findings <= 20 * HOURS
    # The report's numbers match the tables.
    day = Window(DAY, DAY + dt.timedelta(days=1))
    built = report.build_daily_report(mysql, redis_client, settings, day, tz="UTC")
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM amazon_task_information WHERE task_source IS NULL AND interval_start >= %s "
            "AND interval_start < %s",
            day.naive(),
        )
        dispatched = int(cur.fetchone()[0])
        cur.execute(
            "SELECT COUNT(*) FROM amazon_search_result WHERE create_time >= %s AND create_time < %s", day.naive()
        )
        rows = int(cur.fetchone()[0])
    assert built.data.tasks.total.dispatched == dispatched == HOURS
    assert sum(h.rows for h in built.data.volume.hours) == rows
