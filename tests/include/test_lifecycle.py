"""Status sync, retries, Dead tasks and lost-set recovery against the real MariaDB and Redis."""

from __future__ import annotations

import dataclasses
import datetime as dt

from crawlops import dispatch, lifecycle, queue, store
from crawlops.model import UTC, hour_window_starting

NOON = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"


def dispatch_noon(mysql, r, settings, config, *, keywords=4, pages=5):
    config([("search_result", f"keyword {i}", "US", "hourly", pages) for i in range(keywords)])
    plan = dispatch.plan_window(mysql, settings, NOON, "UTC")
    dispatch.record_plan(mysql, settings, plan)
    dispatch.push_window(mysql, r, settings, NOON)


def task_row(mysql, task_id=TASK):
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT task_status, remaining_count, failed_count, retry_count, task_source, element_count, "
            "task_type, root_task_id FROM amazon_task_information WHERE task_id = %s",
            (task_id,),
        )
        return cur.fetchone()


def manifest(mysql, task_id):
    with mysql.cursor() as cur:
        cur.execute("SELECT element FROM amazon_task_element WHERE task_id = %s", (task_id,))
        return sorted(e for (e,) in cur.fetchall())


def test_statuses_follow_the_redis_set(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)

    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert task_row(mysql)[:2] == ("Pending", 20)

    crawler.succeed(TASK, crawler.take(TASK, 5))
    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert task_row(mysql)[:2] == ("In Progress", 15)

    crawler.succeed(TASK, crawler.take(TASK, 15))
    result = lifecycle.sync_statuses(mysql, redis_client, settings)
    assert task_row(mysql)[:2] == ("Completed", 0)
    assert result["moved"] == {"Completed": 1}

    again = lifecycle.sync_statuses(mysql, redis_client, settings)
    assert (again["open"], again["moved"], again["lost"], again["findings"]) == (0, {}, [], [])


def test_failures_become_a_retry_task_with_the_fail_set_as_its_queue(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    _, failed = crawler.drain(TASK, fail_every=4)

    lifecycle.sync_statuses(mysql, redis_client, settings)
    result = lifecycle.retry_failures(mysql, redis_client, settings)

    retry_id = TASK + "_fail"
    assert task_row(mysql)[:3] == ("Failed", 0, 5)
    assert (result["retries"], result["dead"], result["findings"]) == ({retry_id: 5}, [], [])
    status, remaining, _, retry_count, source, count, task_type, root = task_row(mysql, retry_id)
    assert (status, remaining, retry_count, source, count, task_type, root) == (
        "Pending",
        5,
        1,
        TASK,
        5,
        "search_result",
        TASK,
    )
    assert manifest(mysql, retry_id) == sorted(failed)
    assert sorted(m.decode() for m in redis_client.smembers(retry_id)) == sorted(failed)
    # Running the step again creates nothing new.
    again = lifecycle.retry_failures(mysql, redis_client, settings)
    assert (again["retries"], again["dead"], again["settled"]) == ({}, [], 0)


def test_retry_budget_spent_makes_the_task_dead(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config, keywords=1, pages=2)
    dead_seen = []
    task_id = TASK
    for _ in range(settings.dispatch.retry_limit + 1):
        crawler.fail(task_id, crawler.take(task_id, 100))
        lifecycle.sync_statuses(mysql, redis_client, settings)
        lifecycle.retry_failures(mysql, redis_client, settings, on_dead=dead_seen.extend)
        task_id += "_fail"

    last = TASK + "_fail" * settings.dispatch.retry_limit
    assert task_row(mysql, last)[0] == "Dead"
    assert task_row(mysql, last)[3] == settings.dispatch.retry_limit
    assert [(d.task_id, d.root_task_id, d.failed_elements) for d in dead_seen] == [(last, TASK, 2)]
    assert not redis_client.exists(last + "_fail_fail")
    assert 0 < redis_client.ttl(last + "_fail") <= settings.dispatch.dead_fail_set_ttl_seconds
    with mysql.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM amazon_task_information")
        assert cur.fetchone() == (settings.dispatch.retry_limit + 1,)


def test_a_failure_reported_after_the_set_drained_still_gets_retried(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config, keywords=1, pages=3)
    taken = crawler.take(TASK, 3)
    crawler.succeed(TASK, taken[:2])
    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert task_row(mysql)[0] == "Completed"

    crawler.fail(TASK, taken[2:])
    result = lifecycle.retry_failures(mysql, redis_client, settings)

    assert result["retries"] == {TASK + "_fail": 1}
    assert task_row(mysql)[0] == "Failed"


def test_drained_set_is_not_mistaken_for_a_lost_one(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    crawler.take(TASK, 100)  # taken, results not yet written: a drained set, not a lost one

    result = lifecycle.reconcile_lost(mysql, redis_client, settings)
    lifecycle.sync_statuses(mysql, redis_client, settings)

    assert result.repushed == {}
    assert not redis_client.exists(TASK)
    assert task_row(mysql)[0] == "Completed"


def test_flush_is_recovered_without_dispatching_anything_twice(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)  # 20 elements
    done = crawler.take(TASK, 6)
    crawler.succeed(TASK, done)
    failed = crawler.take(TASK, 4)
    crawler.fail(TASK, failed)
    waiting = sorted(m.decode() for m in redis_client.smembers(TASK))
    epoch_before = redis_client.get(queue.EPOCH_KEY)

    redis_client.flushdb()
    sync = lifecycle.sync_statuses(mysql, redis_client, settings)
    result = lifecycle.reconcile_lost(mysql, redis_client, settings)

    assert sync["lost"] == [TASK]
    assert redis_client.get(queue.EPOCH_KEY) != epoch_before
    # Back in the queue: everything without results, including the failed ones whose fail
    # set went down with the flush; never the six that have results.
    requeued = sorted(m.decode() for m in redis_client.smembers(TASK))
    assert requeued == sorted(waiting + failed)
    assert set(requeued).isdisjoint(done)
    assert result.repushed == {TASK: 14}
    assert task_row(mysql)[0] == "In Progress"
    # A second reconcile in the same epoch finds nothing to do.
    assert lifecycle.reconcile_lost(mysql, redis_client, settings).repushed == {}


def test_flush_leaves_elements_waiting_in_a_retry_alone(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config, keywords=2, pages=5)
    _, failed = crawler.drain(TASK, fail_every=3)
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    retry_id = TASK + "_fail"
    half = crawler.take(retry_id, 2)
    crawler.succeed(retry_id, half)

    redis_client.flushdb()
    lifecycle.sync_statuses(mysql, redis_client, settings)
    result = lifecycle.reconcile_lost(mysql, redis_client, settings)

    # The source task is Failed and retried: nothing of it is re-pushed. The retry task gets
    # back exactly its elements that have no results yet.
    assert TASK not in result.repushed
    assert sorted(m.decode() for m in redis_client.smembers(retry_id)) == sorted(set(failed) - set(half))
    assert not redis_client.exists(TASK)


def test_recorded_but_never_pushed_task_is_pushed_by_reconcile(mysql, redis_client, settings, config):
    config([("search_result", "kw", "US", "hourly", 3)])
    plan = dispatch.plan_window(mysql, settings, NOON, "UTC")
    dispatch.record_plan(mysql, settings, plan)  # the push step never ran

    result = lifecycle.reconcile_lost(mysql, redis_client, settings)

    assert result.repushed == {TASK: 3}
    assert task_row(mysql)[0] == "Pending"
    assert dispatch.push_window(mysql, redis_client, settings, NOON) == {}


def test_statuses_are_recorded_by_the_rules_of_one_update_a_task_in_batches(mysql):
    # 450 tasks (five UPDATEs of 100) in every kind of change a sync records
    then = dt.datetime(2026, 1, 1, 12)
    kinds = [  # status before, started_at before, finished_at before, change
        ("Pending", None, None, store.StatusChange("", "In Progress", 30, 2, progressed=True)),
        ("Pending", None, None, store.StatusChange("", "Pending", 40, 0, progressed=False)),
        ("In Progress", then, None, store.StatusChange("", "In Progress", 10, 1, progressed=True)),
        ("In Progress", then, None, store.StatusChange("", "Completed", 0, 0, progressed=True)),
        ("In Progress", then, None, store.StatusChange("", "Failed", 0, 4, progressed=False)),
        ("Completed", then, then, store.StatusChange("", "In Progress", 3, 0, progressed=False)),  # elements joined
    ]
    tasks = {f"task_{i:03}": kinds[i % len(kinds)] for i in range(450)}
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_task_information (task_id, task_type, root_task_id, frequency, task_status, "
            "element_count, remaining_count, interval_start, interval_end, started_at, progress_at, finished_at) "
            "VALUES (%s, 'search_result', %s, 'hourly', %s, 40, 40, %s, %s, %s, %s, %s)",
            [
                (t, t, status, then, then, started, then, finished)
                for t, (status, started, finished, _) in tasks.items()
            ],
        )
        cur.execute("SELECT UTC_TIMESTAMP()")
        (before,) = cur.fetchone()
    mysql.commit()

    store.record_statuses(mysql, [dataclasses.replace(k[3], task_id=t) for t, k in tasks.items()])
    mysql.commit()

    with mysql.cursor() as cur:
        cur.execute(
            "SELECT task_id, task_status, remaining_count, failed_count, started_at, progress_at, finished_at "
            "FROM amazon_task_information ORDER BY task_id"
        )
        rows = cur.fetchall()
    assert len(rows) == len(tasks)
    for task_id, status, remaining, failed, started, progress, finished in rows:
        _, started_before, _, change = tasks[task_id]
        assert (status, remaining, failed) == (change.status, change.remaining, change.failed)
        # progress_at when it progressed, started_at once it left Pending, finished_at while Completed/Failed
        assert progress >= before if change.progressed else progress == then
        if started_before is not None or change.status == "Pending":
            assert started == started_before
        else:
            assert started >= before
        if change.status in ("Completed", "Failed"):
            assert finished >= before
        else:
            assert finished is None
