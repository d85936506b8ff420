"""Task health and system probes against the real MariaDB and Redis."""

from __future__ import annotations

import datetime as dt

import pytest
import redis as redis_lib

from crawlops import dispatch, health, lifecycle
from crawlops.findings import Level
from crawlops.model import UTC, hour_window_starting

NOON = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"


def dispatch_noon(mysql, r, settings, config, *, keywords=4, pages=5):
    config([("search_result", f"keyword {i}", "US", "hourly", pages) for i in range(keywords)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, NOON, "UTC"))
    dispatch.push_window(mysql, r, settings, NOON)


def age(mysql, task_id, **columns_seconds_ago):
    """Move a task's timestamps back in time (as if it had been running that long)."""
    sets = ", ".join(f"{c} = UTC_TIMESTAMP() - INTERVAL %s SECOND" for c in columns_seconds_ago)
    with mysql.cursor() as cur:
        cur.execute(
            f"UPDATE amazon_task_information SET {sets} WHERE task_id = %s", [*columns_seconds_ago.values(), task_id]
        )
    mysql.commit()


def now():
    return dt.datetime.now(UTC)


def status_of(mysql, task_id):
    with mysql.cursor() as cur:
        cur.execute("SELECT task_status, retry_count FROM amazon_task_information WHERE task_id = %s", (task_id,))
        return cur.fetchone()


def test_healthy_tasks_give_no_findings(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    crawler.succeed(TASK, crawler.take(TASK, 5))

    report = health.check_tasks(mysql, redis_client, settings, now())

    assert report.findings == []
    assert report.open_tasks == 1
    assert report.queue_depth == {"search_result": {"open_tasks": 1, "queued": 15, "failed_waiting": 0}}


def test_timed_out_task_is_handed_to_the_retry_path(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    answered = crawler.take(TASK, 6)
    crawler.succeed(TASK, answered)
    crawler.take(TASK, 4)  # taken by a worker that died: no results, no failure report
    lifecycle.sync_statuses(mysql, redis_client, settings)
    age(mysql, TASK, started_at=settings.health.task_timeout_seconds + 60)

    report = health.check_tasks(mysql, redis_client, settings, now())

    by_check = {f.check: f for f in report.findings}
    finding = by_check["task_timeout"]
    assert (finding.level, finding.subject) == (Level.ERROR, TASK)
    # The closed task now counts as finished: 6 of 20 answered.
    assert by_check["success_rate"].details["elements"] == 20
    assert "sent 14 unanswered elements" in finding.action
    assert report.timed_out == {TASK: 14}
    assert status_of(mysql, TASK)[0] == "Failed"
    assert status_of(mysql, TASK + "_fail") == ("Pending", 1)
    assert not redis_client.exists(TASK)  # withdrawn from the workers
    assert redis_client.scard(TASK + "_fail") == 14
    assert not set(answered) & {m.decode() for m in redis_client.smembers(TASK + "_fail")}


def test_timeout_dry_run_changes_nothing(mysql, redis_client, settings, config):
    dispatch_noon(mysql, redis_client, settings, config)
    age(mysql, TASK, pushed_at=settings.health.task_timeout_seconds + 60)

    report = health.check_tasks(mysql, redis_client, settings, now(), dry_run=True)

    assert "would send 20" in report.findings[0].action
    assert status_of(mysql, TASK)[0] == "Pending"
    assert redis_client.scard(TASK) == 20


def test_stalled_task_is_a_warning(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    crawler.succeed(TASK, crawler.take(TASK, 2))
    lifecycle.sync_statuses(mysql, redis_client, settings)
    age(mysql, TASK, started_at=settings.health.stall_seconds + 10, progress_at=settings.health.stall_seconds + 10)

    report = health.check_tasks(mysql, redis_client, settings, now())

    assert [(f.level, f.check) for f in report.findings] == [(Level.WARNING, "task_stalled")]
    assert report.stalled == [TASK]


def test_low_success_rate_is_a_warning(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    crawler.drain(TASK, fail_every=5)  # 4 of 20 fail: 80 %
    lifecycle.sync_statuses(mysql, redis_client, settings)

    report = health.check_tasks(mysql, redis_client, settings, now() + dt.timedelta(seconds=5))

    assert report.success_rate == pytest.approx(0.8)
    assert [f.check for f in report.findings] == ["success_rate"]


def test_unreachable_redis_is_a_system_fault(settings):
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)

    with pytest.raises(health.SystemFault) as caught:
        health.probe_redis(dead, settings)

    assert caught.value.finding.level == Level.CRITICAL
    assert caught.value.finding.check == "redis_reachable"


def test_redis_memory_near_its_limit_is_critical(redis_client, settings):
    used = int(redis_client.info("memory")["used_memory"])
    original = redis_client.config_get("maxmemory")["maxmemory"]
    redis_client.config_set("maxmemory", int(used / 0.95))
    try:
        facts, findings = health.probe_redis(redis_client, settings)
    finally:
        redis_client.config_set("maxmemory", original)

    assert facts["ratio"] >= settings.health.redis_memory_max_ratio
    assert [(f.level, f.check) for f in findings] == [(Level.CRITICAL, "redis_memory")]
