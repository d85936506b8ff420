"""Faults found in review: interrupted pushes, late failures, a Redis restored from a snapshot."""

from __future__ import annotations

import datetime as dt
import subprocess
import time

import pytest
import redis as redis_lib

from crawlops import dispatch, lifecycle, queue, store
from crawlops.model import UTC, hour_window_starting

NOON = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"


def record_noon(mysql, settings, config, keywords=4, pages=5):
    config([("search_result", f"keyword {i}", "US", "hourly", pages) for i in range(keywords)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, NOON, "UTC"))


def status(mysql, task_id=TASK):
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT task_status, pushed_at IS NOT NULL FROM amazon_task_information WHERE task_id=%s", (task_id,)
        )
        return cur.fetchone()


def after_grace(settings):
    """A moment past the grace period of every task that finished so far."""
    return dt.datetime.now(UTC) + dt.timedelta(seconds=settings.health.completeness_grace_seconds + 5)


def result_count(mysql):
    with mysql.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM amazon_search_result")
        return cur.fetchone()[0]


# 1. Crash between RENAMENX and the ledger UPDATE: the retried push re-publishes everything.
def test_interrupted_push_then_drained_is_not_pushed_twice(mysql, redis_client, settings, config, crawler):
    record_noon(mysql, settings, config)
    (task,) = store.select_tasks(mysql, "task_id = %s", (TASK,))
    epoch = queue.current_epoch(redis_client, create=True)
    # publish() up to the Redis side, then the worker process dies before the UPDATE commits
    queue.push_members(redis_client, TASK, store.stream_elements(mysql, task, batch_size=100), epoch=epoch)
    done, _ = crawler.drain(TASK)  # fast workers drain all 20 before the Airflow retry
    assert len(done) == 20
    again = dispatch.push_window(mysql, redis_client, settings, NOON)  # Airflow task retry
    assert again[TASK] == 0, f"all 20 elements dispatched a second time: {again}"


# 1b. Same crash, but reconcile runs first: it 'adopts' the set without pushed_at -> task invisible to sync.
def test_reconcile_adoption_of_unrecorded_push_keeps_task_tracked(mysql, redis_client, settings, config, crawler):
    record_noon(mysql, settings, config)
    (task,) = store.select_tasks(mysql, "task_id = %s", (TASK,))
    epoch = queue.current_epoch(redis_client, create=True)
    queue.push_members(redis_client, TASK, store.stream_elements(mysql, task, batch_size=100), epoch=epoch)
    lifecycle.reconcile_lost(mysql, redis_client, settings)  # adopts: sets redis_epoch only
    crawler.drain(TASK)
    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert status(mysql) == ("Completed", 1), f"task stuck as {status(mysql)} (pushed_at NULL -> never synced)"


# 2. Late failure lands in X_fail after the retry task X_fail was recorded: not in any manifest -> lost on flush.
def test_late_failure_after_retry_created_survives_flush(mysql, redis_client, settings, config, crawler):
    record_noon(mysql, settings, config)
    dispatch.push_window(mysql, redis_client, settings, NOON)
    taken = crawler.take(TASK, 20)
    crawler.succeed(TASK, taken[:15])
    crawler.fail(TASK, taken[15:18])
    in_flight = taken[18:]  # two elements still being crawled
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)  # retry TASK_fail with 3 elements
    crawler.fail(TASK, in_flight)  # late failures, within late_failure_window
    redis_client.flushdb()  # Redis restart without persistence
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings, now=after_grace(settings))
    lifecycle.reconcile_lost(mysql, redis_client, settings)
    queued = {m.decode() for k in redis_client.keys("search_result_*") for m in redis_client.smembers(k)}
    assert set(in_flight) <= queued, f"late failures lost for good: {set(in_flight) - queued}"


# 3. Retry task's set lost in a flush, then one late failure re-creates it: reconcile 'adopts' a 1-member set.
def test_recreated_retry_set_is_not_adopted_as_complete(mysql, redis_client, settings, config, crawler):
    record_noon(mysql, settings, config)
    dispatch.push_window(mysql, redis_client, settings, NOON)
    taken = crawler.take(TASK, 20)
    crawler.succeed(TASK, taken[:14])
    crawler.fail(TASK, taken[14:19])
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)  # retry has 5 elements
    redis_client.flushdb()
    crawler.fail(TASK, taken[19:])  # in-flight worker of TASK reports late -> SADD TASK_fail
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings, now=after_grace(settings))
    lifecycle.reconcile_lost(mysql, redis_client, settings)
    members = {m.decode() for m in redis_client.smembers(TASK + "_fail")}
    assert set(taken[14:19]) <= members, f"{len(set(taken[14:19]) - members)} retry elements never re-pushed"


# 4. Redis restarted from an RDB snapshot (or replica failover): sentinel comes back, recent sets do not.
@pytest.fixture
def persistent_redis(tmp_path):
    port = 6391

    def start():
        p = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(tmp_path),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                redis_lib.Redis(port=port).ping()
                break
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        return p

    procs = [start()]
    yield (lambda: redis_lib.Redis(port=port)), procs, start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait()


def test_restart_from_snapshot_is_detected_as_lost(mysql, settings, config, crawler, persistent_redis):
    client, procs, start = persistent_redis
    r = client()
    record_noon(mysql, settings, config)
    queue.current_epoch(r, create=True)
    r.save()  # last snapshot, taken before this hour's push
    dispatch.push_window(mysql, r, settings, NOON)
    run_id_before = r.info("server")["run_id"]
    r.shutdown(nosave=True)
    procs[0].wait()  # crash
    procs.append(start())
    r = client()  # restart, loads the snapshot
    assert r.info("server")["run_id"] != run_id_before
    assert r.scard(TASK) == 0  # the set is gone, sentinel is back
    lifecycle.sync_statuses(mysql, r, settings)
    rec = lifecycle.reconcile_lost(mysql, r, settings)
    assert status(mysql)[0] != "Completed" or result_count(mysql) == 20, (
        f"task marked Completed with {result_count(mysql)} results of 20; reconcile={rec.repushed}"
    )
