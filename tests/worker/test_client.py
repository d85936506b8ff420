"""The worker kit's client and loop against the real MariaDB and Redis."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from crawlops import dispatch, lifecycle, queue, telemetry
from crawlops.model import UTC, empty_key, fail_key, hour_window_starting
from crawlops.store import config as store_config
from crawlops.worker import EMPTY, Blocked, Element, Result, Stop, WorkerClient, run

ROOT = Path(__file__).resolve().parents[2]
HOUR = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"
MIDNIGHT = hour_window_starting(dt.datetime(2026, 11, 3, 0, tzinfo=UTC), "UTC")


def dispatch_window(mysql, redis_client, settings, window=HOUR):
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, window, "UTC"))
    return dispatch.push_window(mysql, redis_client, settings, window)


def manifest(mysql, task_id):
    with mysql.cursor() as cur:
        cur.execute("SELECT element FROM amazon_task_element WHERE task_id = %s", (task_id,))
        return {text.encode() for (text,) in cur.fetchall()}


def rows(mysql, sql, *params):
    with mysql.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_take_answer_and_report_per_the_contract(mysql, redis_client, settings, config):
    config([("search_result", 'Çafé "crème" 日本', "DE", "hourly", 3)])
    dispatch_window(mysql, redis_client, settings)
    client = WorkerClient(redis_client, mysql)

    taken = client.take(10)
    assert {e.member for e in taken} == manifest(mysql, TASK) and len(client.held) == 3
    first, second, third = sorted(taken, key=lambda e: e.page)
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    client.answer(first, [{"asin": "B0AAAAAAA1", "title": "t", "price": 9.5}, Result("B0AAAAAAA2", position=7)])
    client.empty(second)
    client.fail(third, "blocked")
    assert rows(mysql, "SELECT COUNT(*) FROM amazon_search_result") == ((0,),)  # buffered until flush
    client.flush()

    written = rows(
        mysql, "SELECT task_id, keyword, marketplace, page, asin, position, create_time FROM amazon_search_result "
        "ORDER BY position",
    )  # fmt: skip
    assert [r[:6] for r in written] == [
        (TASK, 'Çafé "crème" 日本', "DE", 1, "B0AAAAAAA1", 1),  # the element's fields, byte for byte
        (TASK, 'Çafé "crème" 日本', "DE", 1, "B0AAAAAAA2", 7),
    ]
    assert all(before - dt.timedelta(seconds=2) <= r[6] <= before + dt.timedelta(seconds=5) for r in written)  # UTC
    assert redis_client.smembers(empty_key(TASK)) == {second.member}  # byte-identical
    assert redis_client.smembers(fail_key(TASK)) == {third.member}
    assert client.held == {}
    assert (client.tally.answered, client.tally.empty, client.tally.failed, client.tally.rows) == (1, 1, 1, 2)
    with pytest.raises(ValueError, match="answered already"):
        client.fail(first)
    with pytest.raises(ValueError, match="not result fields"):
        Result.of({"asin": "B0AAAAAAA3", "keyword": "another"}, "search_result")


def test_release_reports_what_it_holds_and_supervision_retries_exactly_that(mysql, redis_client, settings, config):
    config([("search_result", "kw", "US", "hourly", 6)])
    dispatch_window(mysql, redis_client, settings)
    client = WorkerClient(redis_client, mysql)
    taken = client.take(6)
    client.answer(taken[0], [Result("B0AAAAAAA1")])
    client.flush()

    assert client.release() == 5

    assert redis_client.smembers(fail_key(TASK)) == {e.member for e in taken[1:]}
    lifecycle.sync_statuses(mysql, redis_client, settings)
    retried = lifecycle.retry_failures(mysql, redis_client, settings)["retries"]
    assert retried == {fail_key(TASK): 5}  # at once: reported failures need no grace period
    assert manifest(mysql, fail_key(TASK)) == {e.member for e in taken[1:]}


def test_run_answers_each_element_by_what_fetch_did(mysql, redis_client, settings, config):
    config([("search_result", f"kw {i}", "US", "hourly", 5) for i in range(4)])
    dispatch_window(mysql, redis_client, settings)

    def fetch(element: Element) -> list[dict] | object:
        if element.page == 2:
            raise ConnectionError("refused")
        if element.page == 4:
            raise Blocked("robot check")
        if element.page == 5:
            return []  # parsed to nothing, and the crawler did not say empty: a failure
        return EMPTY if element.page == 3 else [{"asin": "B0AAAAAAA1"}, {"asin": "B0AAAAAAA2"}]

    tally = run(fetch, WorkerClient(redis_client, mysql), batch=5, threads=3, idle_exit=True)

    assert (tally.taken, tally.answered, tally.empty, tally.failed, tally.rows) == (20, 4, 4, 12, 8)
    assert tally.reasons == {"connection": 4, "blocked": 4, "nothing_parsed": 4}
    page = {n: {m for m in manifest(mysql, TASK) if f'"page":{n}'.encode() in m} for n in range(1, 6)}
    assert redis_client.smembers(fail_key(TASK)) == page[2] | page[4] | page[5]
    assert redis_client.smembers(empty_key(TASK)) == page[3]
    reasons = {m.encode(): why for m, (why, _) in telemetry.fail_reasons(redis_client, TASK).items()}
    assert reasons == {**dict.fromkeys(page[2], "connection"), **dict.fromkeys(page[4], "blocked"),
                       **dict.fromkeys(page[5], "nothing_parsed")}  # fmt: skip
    assert redis_client.exists(TASK) == 0
    now = dt.datetime.now(dt.UTC)
    counted: Counter[tuple[str, str]] = Counter()
    for c in telemetry.read_outcomes(redis_client, [now - dt.timedelta(minutes=1), now]):  # a minute may have turned
        counted[(c.outcome, c.reason)] += (
            c.elements if (c.crawl_object, c.marketplace) == ("search_result", "US") else 0
        )
    assert counted == {("answered", ""): 4, ("empty", ""): 4, ("failed", "connection"): 4,
                       ("failed", "blocked"): 4, ("failed", "nothing_parsed"): 4}  # fmt: skip


def test_stopping_mid_batch_reports_the_rest_failed(mysql, redis_client, settings, config):
    config([("search_result", "kw", "US", "hourly", 8)])
    dispatch_window(mysql, redis_client, settings)
    stop = Stop()

    def fetch(element: Element) -> list[Result]:
        stop.set()  # SIGTERM arrives during the first fetch
        return [Result("B0AAAAAAA1")]

    tally = run(fetch, WorkerClient(redis_client, mysql), batch=8, stop=stop)

    assert (tally.taken, tally.answered, tally.released) == (8, 1, 7)
    assert redis_client.scard(fail_key(TASK)) == 7


def test_priority_orders_open_tasks_and_survives_retries_and_a_flushed_index(mysql, redis_client, settings):
    store_config.add_config_rows(
        mysql, [("search_result", "plain", "US", "hourly", 0, 2), ("search_result", "urgent", "US", "daily", 5, 2),
                ("search_result", "minor", "US", "daily", 1, 2)],
        only=True,
    )  # fmt: skip
    dispatch_window(mysql, redis_client, settings, MIDNIGHT)  # the midnight window: daily and hourly tasks
    daily, hourly = "search_result_1793664000_daily", "search_result_1793664000_hourly"
    assert rows(mysql, "SELECT task_id, priority FROM amazon_task_information ORDER BY task_id") == (
        (daily, 5), (hourly, 0),
    )  # fmt: skip

    assert queue.open_tasks_by_urgency(redis_client) == [daily, hourly]
    client = WorkerClient(redis_client, mysql)
    assert {e.task_id for e in client.take(4)} == {daily}  # the urgent task first, all of it
    client.release()  # its four elements failed: a retry task
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    assert queue.open_tasks_by_urgency(redis_client) == [fail_key(daily), hourly]  # the retry keeps priority 5

    redis_client.delete(queue.PRIORITY_KEY, queue.OPEN_INDEX)  # a flush of the index keys
    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert queue.open_tasks_by_urgency(redis_client) == [fail_key(daily), hourly]


def test_a_worker_killed_mid_batch_loses_nothing(mysql, redis_client, settings, config):
    config([("search_result", f"kw {i}", "US", "hourly", 5) for i in range(8)])
    dispatch_window(mysql, redis_client, settings)
    env = {
        **os.environ,
        "CRAWLOPS_MYSQL_URL": os.environ["CRAWLOPS_MYSQL_URL"],
        "CRAWLOPS_REDIS_URL": f"redis://127.0.0.1:6379/{redis_client.connection_pool.connection_kwargs['db']}",
        "PYTHONPATH": str(ROOT / "tests"),
        "SLOW_FETCH_SECONDS": "0.1",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "crawlops.worker", "support.slow_fetch:fetch", "--batch", "8"], env=env
    )

    def second_batch_taken() -> bool:
        mysql.commit()
        done = rows(mysql, "SELECT COUNT(*) FROM amazon_search_result")[0][0]
        return done == 8 and redis_client.scard(TASK) == 24  # one batch answered, the next one held

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not second_batch_taken():
            time.sleep(0.02)
    finally:
        worker.send_signal(signal.SIGKILL)  # mid-batch: no chance to report what it holds
        worker.wait()
    assert redis_client.scard(TASK) == 24
    run(lambda e: [Result("B0AAAAAAA1")], WorkerClient(redis_client, mysql), idle_exit=True)  # the rest of the fleet
    mysql.commit()
    answered = {
        f'{{"keyword":"{k}","marketplace":"US","page":{p}}}'.encode()
        for k, p in rows(mysql, "SELECT keyword, page FROM amazon_search_result WHERE task_id = %s", TASK)
    }
    held = manifest(mysql, TASK) - answered
    assert len(held) == 8 and redis_client.exists(TASK) == 0  # the killed worker's batch, nowhere to be seen

    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert lifecycle.retry_failures(mysql, redis_client, settings)["waiting"] == {TASK: 8}  # a slow worker may answer
    later = dt.datetime.now(UTC) + dt.timedelta(seconds=settings.health.completeness_grace_seconds + 5)
    assert lifecycle.retry_failures(mysql, redis_client, settings, now=later)["retries"] == {fail_key(TASK): 8}
    assert manifest(mysql, fail_key(TASK)) == held == redis_client.smembers(fail_key(TASK))  # re-dispatched


def test_a_throttled_marketplace_spaces_its_elements_and_leaves_the_others_alone(mysql, redis_client, settings, config):
    config([("search_result", "kw", m, "hourly", 4) for m in ("US", "DE")])
    dispatch_window(mysql, redis_client, settings)
    telemetry.set_throttles(redis_client, {"DE": 0.25}, ttl_seconds=60)
    client = WorkerClient(redis_client, mysql)

    elements = client.take(8)
    delays = {m: sorted(client.delay_for(e) for e in elements if e.marketplace == m) for m in ("US", "DE")}

    assert delays["US"] == [0.0] * 4
    assert delays["DE"] == pytest.approx([0.0, 0.25, 0.5, 0.75], abs=0.02)  # booked one interval apart


def test_elements_released_on_shutdown_are_failed_but_not_counted_as_what_the_crawler_saw(
    mysql, redis_client, settings, config
):
    config([("search_result", "kw", "DE", "hourly", 6)])
    dispatch_window(mysql, redis_client, settings)
    client = WorkerClient(redis_client, mysql)
    taken = client.take(6)
    client.fail(taken[0], "http_503")

    assert client.release() == 5

    now = dt.datetime.now(dt.UTC)
    counted = telemetry.read_outcomes(redis_client, [now - dt.timedelta(minutes=1), now])
    assert [(c.outcome, c.reason, c.elements) for c in counted] == [("failed", "http_503", 1)]
    assert redis_client.scard(fail_key(TASK)) == 6  # all six are retried
