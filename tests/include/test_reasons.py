"""Failures keep their reason, from the worker to the Dead task's alert, against the real MariaDB
and Redis; a seed worker that only SPOPs and SADDs keeps working (its reasons read ``unknown``)."""

from __future__ import annotations

import datetime as dt
import socket
import urllib.error

import pytest

from crawlops import dispatch, lifecycle, telemetry
from crawlops.findings import Level
from crawlops.harness.fakesite import ROBOT_CHECK, PageKind, render
from crawlops.model import UTC, hour_window_starting
from crawlops.reasons import Blocked, Failed, amazon_block, classify, retry_after_seconds
from crawlops.worker import WorkerClient

NOON = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"


def dispatch_noon(mysql, r, settings, config, *, keywords=1, pages=4):
    config([("search_result", f"keyword {i}", "DE", "hourly", pages) for i in range(keywords)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, NOON, "UTC"))
    dispatch.push_window(mysql, r, settings, NOON)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (Blocked(), "blocked"),
        (Failed("http_403", "geo"), "http_403"),
        (Failed("weird", "x"), "other"),
        (urllib.error.HTTPError("http://x", 503, "Service Unavailable", None, None), "http_503"),  # type: ignore[arg-type]
        (urllib.error.URLError("refused"), "connection"),
        (ConnectionRefusedError(), "connection"),
        (socket.gaierror(-2, "Name or service not known"), "connection"),
        (TimeoutError(), "timeout"),
        (KeyError("price"), "parse_error"),
        (ValueError("bad float"), "parse_error"),
        ("http_429: slow down", "http_429"),
        ("nothing_parsed", "nothing_parsed"),
        ("the site was odd", "other"),
        (None, "other"),
    ],
)
def test_what_a_worker_reports_is_classified(error, reason):
    assert classify(error)[0] == reason


def test_the_default_detector_knows_amazons_robot_check_and_nothing_else():
    assert amazon_block(200, {}, ROBOT_CHECK.encode())
    for kind in (PageKind.RESULTS, PageKind.EMPTY, PageKind.BARE):
        assert amazon_block(200, {}, render("robot vacuum", "DE", 1, kind).encode()) is None


def test_retry_after_reads_seconds_and_dates():
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    later = (dt.datetime.now(UTC) + dt.timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 <= retry_after_seconds(later) <= 31


def test_a_dead_tasks_alert_names_its_failing_elements_with_their_reasons(mysql, redis_client, settings, config):
    dispatch_noon(mysql, redis_client, settings, config, pages=4)
    client = WorkerClient(redis_client, mysql)
    task = TASK
    for _ in range(settings.dispatch.retry_limit + 1):  # the task and each retry fail the same pages
        for element in client.take(10):
            if element.page <= 2:
                client.fail(element, Blocked("HTTP 200 page with 'Enter the characters you see below'"))
            elif element.page == 3:
                client.fail(element, urllib.error.HTTPError("http://x", 503, "Service Unavailable", None, None))  # type: ignore[arg-type]
            else:
                client.answer(element, [{"asin": "B0AAAAAAA1"}])
        client.flush()
        tracking = lifecycle.track(mysql, redis_client, settings)
        task = task + "_fail"
    dead_id = TASK + "_fail" * settings.dispatch.retry_limit

    (dead,) = [f for f in tracking.findings("test") if f.check == "task_dead"]

    assert dead.level == Level.CRITICAL and dead.subject == dead_id
    assert dead.title.endswith("3 elements still failing after 3 retries (blocked 2, http_503 1)")
    assert dead.details["reasons"] == {"blocked": 2, "http_503": 1}
    assert {(e["reason"], e["element"]) for e in dead.details["examples"]} >= {
        ("blocked", '{"keyword":"keyword 0","marketplace":"DE","page":1}'),
        ("http_503", '{"keyword":"keyword 0","marketplace":"DE","page":3}'),
    }
    assert '"page":3} http_503 (HTTPError: HTTP Error 503: Service Unavailable)' in dead.action
    with mysql.cursor() as cur:  # recorded per element on the manifest of the task that failed it
        cur.execute("SELECT page, fail_reason FROM amazon_task_element WHERE task_id = %s ORDER BY page", (dead_id,))
        assert cur.fetchall() == ((1, "blocked"), (2, "blocked"), (3, "http_503"))
    assert redis_client.exists(telemetry.reason_key(dead_id)) == 0  # read once, then gone


def test_a_seed_worker_without_reasons_or_heartbeats_still_passes_its_elements_to_completed(
    mysql, redis_client, settings, config, crawler
):
    dispatch_noon(mysql, redis_client, settings, config, keywords=2, pages=3)
    taken = crawler.take(TASK, 10)  # plain SPOP
    crawler.succeed(TASK, taken[:4])  # plain INSERT
    crawler.fail(TASK, taken[4:])  # plain SADD to _fail, no reason

    tracking = lifecycle.track(mysql, redis_client, settings)

    (settled,) = [s for s in tracking.settled if s.task_id == TASK]
    assert settled.reasons == {"unknown": 2} and settled.retry_task == TASK + "_fail"
    crawler.succeed(TASK + "_fail", crawler.take(TASK + "_fail", 10))
    lifecycle.track(mysql, redis_client, settings)
    with mysql.cursor() as cur:
        cur.execute("SELECT task_id, task_status FROM amazon_task_information ORDER BY task_id")
        assert cur.fetchall() == ((TASK, "Failed"), (TASK + "_fail", "Completed"))
    assert telemetry.workers_seen(redis_client, dt.datetime.now(UTC) - dt.timedelta(hours=1)) == []
