"""A retry chain driven to Dead through the real dispatch and settling, for tests of what
operators do with it."""

from __future__ import annotations

import datetime as dt

from crawlops import dispatch, lifecycle
from crawlops.model import UTC, hour_window_starting

NOON = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"


def crawl_until_dead(mysql, redis_client, settings, config, crawler):
    """Noon's task for one keyword of 4 pages: pages 1-2 answered, 3-4 failing in every crawl
    until the chain's budget is spent. Returns (the Dead task, its failing elements)."""
    config([("search_result", "usb cable", "US", "hourly", 4)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, NOON, "UTC"))
    dispatch.push_window(mysql, redis_client, settings, NOON)
    taken = sorted(crawler.take(TASK, 10))
    crawler.succeed(TASK, taken[:2])
    failing, task_id = taken[2:], TASK
    crawler.fail(task_id, failing)
    for _ in range(settings.dispatch.retry_limit + 1):
        lifecycle.sync_statuses(mysql, redis_client, settings)
        lifecycle.retry_failures(mysql, redis_client, settings)
        mysql.commit()
        with mysql.cursor() as cur:
            cur.execute("SELECT task_status FROM amazon_task_information WHERE task_id = %s", (task_id,))
            dead = cur.fetchone()[0] == "Dead"
        if dead:
            return task_id, failing
        task_id += "_fail"
        crawler.fail(task_id, crawler.take(task_id, 10))
    raise AssertionError("the chain never went Dead")
