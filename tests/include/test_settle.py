"""Every dispatched element ends answered, retried or Dead (issue 12), against real MariaDB and Redis.

Settling a finished task, empty answers, the success rate over lost elements, lost queues
re-pushed by the 5-minute supervision run, the open-task index, and members that are not
the task's elements.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from crawlops import dispatch, health, invariant, lifecycle, queue
from crawlops.model import UTC, hour_window_starting

NOON = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"
RETRY = TASK + "_fail"


def dispatch_noon(mysql, r, settings, config, *, keywords=2, pages=5):
    config([("search_result", f"keyword {i}", "US", "hourly", pages) for i in range(keywords)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, NOON, "UTC"))
    dispatch.push_window(mysql, r, settings, NOON)


def after_grace(settings, extra_seconds=5):
    return dt.datetime.now(UTC) + dt.timedelta(seconds=settings.health.completeness_grace_seconds + extra_seconds)


def row(mysql, task_id, columns="task_status, element_count, answered_count, empty_count, failed_count, lost_count"):
    with mysql.cursor() as cur:
        cur.execute(f"SELECT {columns} FROM amazon_task_information WHERE task_id = %s", (task_id,))
        return cur.fetchone()


def manifest(mysql, task_id):
    with mysql.cursor() as cur:
        cur.execute("SELECT element FROM amazon_task_element WHERE task_id = %s", (task_id,))
        return sorted(e for (e,) in cur.fetchall())


def members(r, key):
    return sorted(m.decode() for m in r.smembers(key))


def answer_empty(r, task_id, elements):
    r.sadd(task_id + "_empty", *elements)


def test_seven_answered_one_failed_two_lost_retries_exactly_the_three_once(
    mysql, redis_client, settings, config, crawler
):
    dispatch_noon(mysql, redis_client, settings, config, keywords=2, pages=5)  # 10 elements
    taken = sorted(crawler.take(TASK, 10))
    crawler.succeed(TASK, taken[:7])
    crawler.fail(TASK, taken[7:8])  # the task ends Failed...
    # ...and taken[8:] were taken by a worker that died
    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert row(mysql, TASK)[0] == "Failed"

    # Inside the grace period the two may still be crawled: nothing is decided yet.
    early = lifecycle.retry_failures(mysql, redis_client, settings)
    assert (early["waiting"], early["retries"]) == ({TASK: 2}, {})

    settled = lifecycle.retry_failures(mysql, redis_client, settings, now=after_grace(settings))

    assert settled["retries"] == {RETRY: 3}
    assert manifest(mysql, RETRY) == sorted(taken[7:]) == members(redis_client, RETRY)
    assert row(mysql, TASK) == ("Failed", 10, 7, 0, 1, 2)
    assert [(f["check"], f["subject"], f["level"]) for f in settled["findings"]] == [("missing_data", TASK, "WARNING")]
    # Exactly once: settling again, or a whole tracking pass, adds nothing anywhere.
    for _ in range(2):
        again = lifecycle.track(mysql, redis_client, settings, now=after_grace(settings, 60))
        assert (again.retries, again.settled, again.repushed) == ({}, [], {})
    assert members(redis_client, RETRY) == sorted(taken[7:])
    assert not redis_client.exists(TASK)
    # The retry answers them: every element of the root ends answered.
    crawler.succeed(RETRY, crawler.take(RETRY, 3))
    lifecycle.track(mysql, redis_client, settings, now=after_grace(settings, 120))
    assert row(mysql, RETRY)[0] == "Completed"
    assert invariant.element_fates(mysql) == {"answered": 10, "empty": 0, "open retry": 0, "dead": 0, "LOST": 0}


def test_an_element_answered_empty_is_never_retried_and_the_task_completes(
    mysql, redis_client, settings, config, crawler
):
    dispatch_noon(mysql, redis_client, settings, config, keywords=1, pages=5)
    taken = sorted(crawler.take(TASK, 5))
    crawler.succeed(TASK, taken[:3])
    answer_empty(redis_client, TASK, taken[3:])  # pages 4 and 5 do not exist for this keyword

    synced = lifecycle.sync_statuses(mysql, redis_client, settings)
    settled = lifecycle.retry_failures(mysql, redis_client, settings)  # no grace needed: all accounted for

    assert synced["emptied"] == {TASK: 2}
    assert not redis_client.exists(TASK + "_empty")  # ingested, then taken out like a fail set
    assert (settled["retries"], settled["waiting"], settled["findings"]) == ({}, {}, [])
    assert row(mysql, TASK) == ("Completed", 5, 5, 2, 0, 0)
    with mysql.cursor() as cur:
        cur.execute("SELECT element FROM amazon_task_element WHERE task_id = %s AND empty_at IS NOT NULL", (TASK,))
        assert sorted(e for (e,) in cur.fetchall()) == taken[3:]
    # Long after, nothing comes back for it; the rate counts it as answered.
    later = after_grace(settings, 600)
    report = health.check_tasks(mysql, redis_client, settings, later)
    assert report.repair == {} and report.tracking["retries"] == {}
    assert report.success_by_type["search_result"]["rate"] == 1.0
    assert invariant.element_fates(mysql)["empty"] == 2


def test_an_empty_answer_reported_late_still_counts(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config, keywords=1, pages=3)
    taken = sorted(crawler.take(TASK, 3))
    crawler.succeed(TASK, taken[:2])
    lifecycle.sync_statuses(mysql, redis_client, settings)  # drained: Completed, one in flight
    answer_empty(redis_client, TASK, taken[2:])  # the worker answers after the set drained

    settled = lifecycle.retry_failures(mysql, redis_client, settings)

    assert settled["retries"] == {} and settled["waiting"] == {}
    assert row(mysql, TASK) == ("Completed", 3, 3, 1, 0, 0)


def test_an_element_failed_then_answered_elsewhere_is_not_retried(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config, keywords=1, pages=4)
    taken = sorted(crawler.take(TASK, 4))
    crawler.succeed(TASK, taken)
    crawler.fail(TASK, taken[:1])  # a second worker crawled a copy and failed on it
    lifecycle.sync_statuses(mysql, redis_client, settings)

    settled = lifecycle.retry_failures(mysql, redis_client, settings)

    assert settled["retries"] == {}
    assert row(mysql, TASK)[0] == "Completed"
    assert not redis_client.exists(TASK + "_fail")


def test_success_rate_counts_lost_elements_as_failures_per_crawl_object(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config, keywords=2, pages=5)
    taken = sorted(crawler.take(TASK, 10))
    crawler.succeed(TASK, taken[:7])
    answer_empty(redis_client, TASK, taken[7:8])  # answered: counts as a success
    # taken[8:] lost: a drained task with no failure reported at all (the old rate said 100 %)
    later = after_grace(settings)
    lifecycle.sync_statuses(mysql, redis_client, settings)

    report = health.check_tasks(mysql, redis_client, settings, later)

    entry = report.success_by_type["search_result"]
    assert (entry["elements"], entry["answered"], entry["empty"], entry["lost"]) == (10, 8, 1, 2)
    assert entry["rate"] == 0.8
    assert report.success_rate == 0.8
    rate = [f for f in report.findings if f.check == "success_rate"]
    assert [(f.level.value, f.subject) for f in rate] == [("WARNING", "search_result")]
    assert [f.subject for f in report.findings if f.check == "missing_data"] == [TASK]


def test_a_lost_queue_is_repushed_by_the_five_minute_run_with_a_warning(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config, keywords=2, pages=5)
    done = crawler.take(TASK, 4)
    crawler.succeed(TASK, done)
    lifecycle.sync_statuses(mysql, redis_client, settings)
    redis_client.flushdb()  # Redis restarted with nothing kept on disk

    report = health.check_tasks(mysql, redis_client, settings, dt.datetime.now(UTC))

    lost = [f for f in report.findings if f.check == "queue_lost"]
    assert [(f.level.value, f.subject, f.details["repushed"]) for f in lost] == [("WARNING", TASK, 6)]
    assert "6" in lost[0].action and TASK in lost[0].title
    assert len(members(redis_client, TASK)) == 6 and set(members(redis_client, TASK)).isdisjoint(done)
    assert queue.open_index(redis_client) == {TASK}
    # The next run finds nothing lost.
    again = health.check_tasks(mysql, redis_client, settings, dt.datetime.now(UTC))
    assert [f for f in again.findings if f.check == "queue_lost"] == []


def test_the_open_task_index_follows_every_task(mysql, redis_client, settings, config, crawler):
    assert queue.open_index(redis_client) == set()
    dispatch_noon(mysql, redis_client, settings, config, keywords=1, pages=2)
    assert queue.open_index(redis_client) == {TASK}  # published with the set, atomically

    crawler.fail(TASK, crawler.take(TASK, 2))
    lifecycle.track(mysql, redis_client, settings)
    assert queue.open_index(redis_client) == {RETRY}  # the source left, its retry joined

    redis_client.srem(queue.OPEN_INDEX, RETRY)  # a stale or damaged index is rebuilt by sync
    redis_client.sadd(queue.OPEN_INDEX, "search_result_1_hourly")
    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert queue.open_index(redis_client) == {RETRY}

    redis_client.flushdb()  # a restart loses the index with the sets: reconcile restores both
    lifecycle.track(mysql, redis_client, settings)
    assert queue.open_index(redis_client) == {RETRY} and redis_client.scard(RETRY) == 2

    for k in range(1, settings.dispatch.retry_limit + 1):  # fail until Dead: nothing stays listed
        crawler.fail(TASK + "_fail" * k, crawler.take(TASK + "_fail" * k, 2))
        lifecycle.track(mysql, redis_client, settings)
    assert row(mysql, TASK + "_fail" * settings.dispatch.retry_limit)[0] == "Dead"
    assert queue.open_index(redis_client) == set()


@pytest.mark.parametrize("odd", ["", "a\nb"], ids=["compared-in-redis", "id-with-a-newline"])
def test_the_index_rebuild_leaves_exactly_the_open_tasks_and_their_priorities(redis_client, odd):
    redis_client.sadd(queue.OPEN_INDEX, "kept", "kept_urgent", "stale", "stale_urgent", "now_plain")
    redis_client.hset(
        queue.PRIORITY_KEY,
        mapping={"kept_urgent": 3, "stale_urgent": 2, "now_plain": 4, "orphan": 1, "kept": 9, "wrong": 1},
    )
    wanted = {"kept": 0, "kept_urgent": 3, "now_plain": 0, "new": 0, "new_urgent": 7, "wrong": 5}
    if odd:
        wanted[odd] = 2

    changed = queue.rebuild_open_index(redis_client, wanted)

    assert queue.open_index(redis_client) == set(wanted)
    stored = {k.decode(): int(v) for k, v in redis_client.hgetall(queue.PRIORITY_KEY).items()}
    assert stored == {t: p for t, p in wanted.items() if p}
    assert changed == {"added": 3 + bool(odd), "removed": 2}
    assert queue.rebuild_open_index(redis_client, wanted) == {"added": 0, "removed": 0}


def test_members_that_are_not_the_tasks_elements_are_never_dispatched_and_reported_once(
    mysql, redis_client, settings, config, crawler
):
    dispatch_noon(mysql, redis_client, settings, config, keywords=1, pages=3)
    taken = sorted(crawler.take(TASK, 3))
    crawler.succeed(TASK, taken[:1])
    typo = json.dumps(json.loads(taken[1]))  # spaces after the separators: not byte-identical
    other = '{"keyword":"another task","marketplace":"US","page":1}'
    garbage = b"\xff\xfe not json"
    redis_client.sadd(TASK + "_fail", taken[1], typo, other)
    redis_client.sadd(TASK + "_empty", taken[2], garbage)

    first = health.check_tasks(mysql, redis_client, settings, after_grace(settings))

    # The real failure is retried, the real empty answer counts; nothing else moves.
    assert manifest(mysql, RETRY) == [taken[1]] == members(redis_client, RETRY)
    assert row(mysql, TASK) == ("Failed", 3, 2, 1, 1, 0)
    bad = sorted((f.subject, f.details["count"], f.level.value) for f in first.findings if f.check == "bad_member")
    assert bad == [(TASK + "_empty", 1, "WARNING"), (TASK + "_fail", 2, "WARNING")]
    examples = [e for f in first.findings if f.check == "bad_member" for e in f.details["examples"]]
    assert typo in examples and other in examples
    assert not redis_client.exists(TASK + "_empty")
    # Reported once: they are out of Redis, and a late copy to the retry's set is refused too.
    second = health.check_tasks(mysql, redis_client, settings, after_grace(settings, 60))
    assert [f for f in second.findings if f.check == "bad_member"] == []
    redis_client.sadd(RETRY, other)
    third = health.check_tasks(mysql, redis_client, settings, after_grace(settings, 120))
    assert [(f.subject, f.details["count"]) for f in third.findings if f.check == "bad_member"] == [(RETRY, 1)]
    assert manifest(mysql, RETRY) == [taken[1]] == members(redis_client, RETRY)


def test_an_empty_answer_after_the_task_settled_is_recorded_and_the_set_removed(
    mysql, redis_client, settings, config, crawler
):
    dispatch_noon(mysql, redis_client, settings, config, keywords=1, pages=2)
    taken = sorted(crawler.take(TASK, 2))
    crawler.succeed(TASK, taken[:1])
    lifecycle.track(mysql, redis_client, settings, now=after_grace(settings))  # lost one: retried
    answer_empty(redis_client, TASK, taken[1:])  # the worker that was thought dead answers

    lifecycle.track(mysql, redis_client, settings, now=after_grace(settings, 60))

    assert not redis_client.exists(TASK + "_empty")
    assert invariant.element_fates(mysql)["empty"] == 1
    # The retry's copy is now answered too: settling the retry retries nothing.
    crawler.take(RETRY, 1)
    settled = lifecycle.track(mysql, redis_client, settings, now=after_grace(settings, 120))
    assert settled.retries == {} and row(mysql, RETRY)[0] == "Completed"


def test_an_element_whose_rows_were_quarantined_was_answered(mysql, redis_client, settings, config, crawler):
    from crawlops import quality
    from crawlops.model import Window

    dispatch_noon(mysql, redis_client, settings, config, keywords=1, pages=2)
    taken = sorted(crawler.take(TASK, 2))
    crawler.succeed(TASK, taken)
    with mysql.cursor() as cur:  # every row of page 1 is invalid, and lands in quarantine
        cur.execute("UPDATE amazon_search_result SET price = -1 WHERE page = 1")
        cur.execute("SELECT MIN(create_time) FROM amazon_search_result")
        (created,) = cur.fetchone()
    mysql.commit()
    hour = created.replace(minute=0, second=0, tzinfo=UTC)
    quality.quarantine_invalid(mysql, "amazon_search_result", Window(hour, hour + dt.timedelta(hours=1)), settings)

    tracking = lifecycle.track(mysql, redis_client, settings, now=after_grace(settings))

    assert tracking.retries == {} and row(mysql, TASK)[:3] == ("Completed", 2, 2)
    assert invariant.element_fates(mysql)["answered"] == 2


def test_the_sizes_of_each_tasks_three_sets_come_in_one_reply_as_the_keys_themselves_give_them(
    redis_client, monkeypatch
):
    ids = ["task_a", "task_b", "odd\nid", "task_c"]
    redis_client.sadd("task_a", "x", "y")
    redis_client.sadd("task_a_fail", "z")
    redis_client.sadd("task_b_empty", "p", "q", "r")
    redis_client.sadd("odd\nid_fail", "w")
    named = [k for t in ids for k in (t, t + "_fail", t + "_empty")]

    assert queue.task_set_sizes(redis_client, ids[:2] + ids[3:]) == [2, 1, 0, 0, 0, 3, 0, 0, 0]
    assert queue.task_set_sizes(redis_client, ids) == queue.set_sizes(redis_client, named)  # the keys named instead
    assert queue.task_set_sizes(redis_client, []) == []
    monkeypatch.setattr(queue, "_IDS_PER_SCRIPT", 2)  # a script per two tasks: the same answer
    assert queue.task_set_sizes(redis_client, ids) == queue.set_sizes(redis_client, named)
