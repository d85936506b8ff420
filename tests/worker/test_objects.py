"""The worker kit serving every crawl object (search results, product pages, reviews) against the
real MariaDB and Redis: elements carry their object's fields, results fill their object's
columns (checked) in its own table, ``--objects`` / ``objects=`` / ``crawl_objects`` choose
which tasks a worker takes, and the simulator crawls them all."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from crawlops import dispatch, lifecycle, telemetry
from crawlops.harness import simulator
from crawlops.model import UTC, empty_key, fail_key, hour_window_starting
from crawlops.store import results as store_results
from crawlops.worker import Element, Result, ResultError, WorkerClient, run

ROOT = Path(__file__).resolve().parents[2]
HOUR = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
SEARCH, DETAIL, REVIEW = (f"{o}_1793707200_hourly" for o in ("search_result", "product_detail", "product_review"))


def dispatch_hour(mysql, r, settings, config, rows, window=HOUR):
    if rows:
        config(rows)
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, window, "UTC"))
    return dispatch.push_window(mysql, r, settings, window)


def rows(mysql, sql, *params):
    mysql.commit()
    with mysql.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def three_objects(mysql, r, settings, config):
    return dispatch_hour(mysql, r, settings, config, [
        ("search_result", "usb c cable", "US", "hourly", 2),
        ("product_detail", " b0c1234567", "US", "hourly", None),  # upper-cased and trimmed by dispatch
        ("product_detail", "B0C7654321", "DE", "hourly", 1),
        ("product_review", "B0C1234567", "DE", "hourly", 2),
    ])  # fmt: skip


def test_product_detail_and_review_tasks_answered_end_to_end(mysql, redis_client, settings, config, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "worker"))
    from fetchers import fetch

    assert three_objects(mysql, redis_client, settings, config) == {SEARCH: 2, DETAIL: 2, REVIEW: 2}
    seen: list[Element] = []

    def crawl(element: Element):
        seen.append(element)
        return fetch(element)

    tally = run(crawl, WorkerClient(redis_client, mysql, objects=["product_detail", "product_review"]), idle_exit=True)

    detail = next(e for e in seen if e.member == b'{"asin":"B0C1234567","marketplace":"US"}')
    assert (detail.crawl_object, detail.asin, detail.marketplace, detail.page) == ("product_detail", "B0C1234567",
                                                                                  "US", None)  # fmt: skip
    with pytest.raises(
        AttributeError, match=r"product_detail element has no field 'keyword' \(its fields: asin, marketplace\)"
    ):
        _ = detail.keyword
    assert sorted((e.crawl_object, e.page) for e in seen if e.task_id == REVIEW) == [("product_review", 1),
                                                                                     ("product_review", 2)]  # fmt: skip
    assert (tally.taken, tally.answered, tally.empty, tally.failed, tally.rows) == (4, 3, 1, 0, 4)
    assert rows(mysql, "SELECT task_id, asin, marketplace, title, brand, price, currency, list_price, rating, "
                "review_count, availability, best_seller_rank FROM amazon_product_detail ORDER BY marketplace") == (
        (DETAIL, "B0C7654321", "DE", "Kabel “USB-C” 2 m", "Ugreen", Decimal("9.99"), "USD", None, Decimal("4.50"),
         1200, "in_stock", 37),
        (DETAIL, "B0C1234567", "US", "Kabel “USB-C” 2 m", "Ugreen", Decimal("9.99"), "USD", None, Decimal("4.50"),
         1200, "in_stock", 37),
    )  # fmt: skip
    assert rows(mysql, "SELECT task_id, asin, marketplace, page, position, review_id, rating, title, review_date, "
                "verified_purchase, helpful_votes FROM amazon_product_review ORDER BY position") == (
        (REVIEW, "B0C1234567", "DE", 1, 1, "RB0C12345671", 5, "Top", dt.date(2025, 3, 1), 1, 3),
        (REVIEW, "B0C1234567", "DE", 1, 7, "RB0C12345672", 2, None, dt.date(2025, 3, 2), 0, 0),
    )  # fmt: skip
    assert redis_client.smembers(empty_key(REVIEW)) == {b'{"asin":"B0C1234567","marketplace":"DE","page":2}'}
    assert rows(mysql, "SELECT COUNT(*) FROM amazon_search_result") == ((0,),)
    assert redis_client.scard(SEARCH) == 2  # not served: left for a search worker

    tracking = lifecycle.track(mysql, redis_client, settings)

    settled = {s.task_id: (s.status, s.answered, s.empty, s.failed, s.lost, s.retry_task) for s in tracking.settled}
    assert settled == {DETAIL: ("Completed", 2, 0, 0, 0, None), REVIEW: ("Completed", 2, 1, 0, 0, None)}
    assert tracking.retries == {}
    now = dt.datetime.now(UTC)
    counted: Counter[tuple[str, str, str]] = Counter()
    for c in telemetry.read_outcomes(redis_client, [now - dt.timedelta(minutes=1), now]):  # a minute may have turned
        counted[(c.crawl_object, c.marketplace, c.outcome)] += c.elements
    assert counted == {("product_detail", "US", "answered"): 1, ("product_detail", "DE", "answered"): 1,
                       ("product_review", "DE", "answered"): 1, ("product_review", "DE", "empty"): 1}  # fmt: skip


def test_objects_choose_the_tasks_a_worker_takes(mysql, redis_client, settings, config):
    three_objects(mysql, redis_client, settings, config)

    assert sorted(WorkerClient(redis_client, mysql).open_tasks()) == [DETAIL, REVIEW, SEARCH]
    assert sorted(WorkerClient(redis_client, mysql, objects="product_review,search_result").open_tasks()) == [
        REVIEW, SEARCH,
    ]  # fmt: skip
    assert WorkerClient(redis_client, mysql, objects=["all"]).objects is None
    client = WorkerClient(redis_client, mysql, objects=("product_detail",))
    taken = client.take(10)
    assert {e.task_id for e in taken} == {DETAIL} and len(taken) == 2
    assert redis_client.scard(SEARCH) == 2 and redis_client.scard(REVIEW) == 2
    with pytest.raises(ValueError, match=r"unknown crawl objects \['product_detial'\].*product_detail"):
        WorkerClient(redis_client, mysql, objects=["product_detial"])
    env = {"CRAWLOPS_OBJECTS": "product_review", "CRAWLOPS_MYSQL_URL": os.environ["CRAWLOPS_MYSQL_URL"]}
    narrowed = WorkerClient.from_env(env, objects=("product_detail", "product_review"))
    narrowed.close()
    assert narrowed.objects == ("product_review",)  # the environment narrows a spider's crawl_objects
    with pytest.raises(ValueError, match="names none of search_result"):
        WorkerClient.from_env(env, objects=("search_result",))


def test_the_worker_command_serves_only_its_objects(mysql, redis_client, settings, config):
    three_objects(mysql, redis_client, settings, config)
    env = {
        **os.environ,
        "CRAWLOPS_REDIS_URL": f"redis://127.0.0.1:6379/{redis_client.connection_pool.connection_kwargs['db']}",
        "PYTHONPATH": str(ROOT / "tests" / "worker"),
    }
    command = [sys.executable, "-m", "crawlops.worker", "fetchers:fetch", "--poll-seconds", "0.2"]
    refused = subprocess.run([*command, "--objects", "product_detail,reviews"], env=env, capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
    assert refused.returncode == 2 and "unknown crawl objects ['reviews']" in refused.stderr

    worker = subprocess.Popen([*command, "--objects", "product_detail", "--objects", "search_result"], env=env)
    try:
        deadline = time.monotonic() + 30
        while rows(mysql, "SELECT COUNT(*) FROM amazon_product_detail")[0][0] < 2 or redis_client.exists(SEARCH):
            assert time.monotonic() < deadline and worker.poll() is None, "the worker did not answer its objects"
            time.sleep(0.1)
        time.sleep(0.5)  # a few more polls: it must still leave the reviews alone
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0

    assert rows(mysql, "SELECT COUNT(*) FROM amazon_search_result WHERE task_id = %s", SEARCH) == ((2,),)
    assert redis_client.scard(REVIEW) == 2 and not redis_client.exists(fail_key(REVIEW))
    assert rows(mysql, "SELECT COUNT(*) FROM amazon_product_review") == ((0,),)


def test_results_are_checked_against_their_objects_columns(mysql, redis_client, settings, config):
    with pytest.raises(ResultError, match=r"product_detail: not result fields: \['asin'\] \(asin: the element's "):
        Result.of({"asin": "B0C1234567", "title": "t"}, "product_detail")
    with pytest.raises(
        ResultError,
        match=r"not result fields: \['colour'\]; a product_detail result fills "
        r"availability, best_seller_rank, brand, category, currency, list_price, price, rating",
    ):
        Result.of({"colour": "red"}, "product_detail")
    with pytest.raises(ResultError, match=r"search_result: not result fields: \['keyword'\]"):
        Result.of({"asin": "B0AAAAAAA3", "keyword": "another"}, "search_result")
    wrong = [
        ("product_detail", {"title": 5}, "title takes text \\(str\\), got int 5"),
        ("product_detail", {"review_count": 3.0}, "review_count takes a whole number \\(int\\), got float"),
        ("product_detail", {"price": "9.99"}, "price takes a number \\(int, float or Decimal\\), got str '9.99'"),
        ("product_detail", {"price": float("nan")}, "price takes a finite number"),
        ("product_review", {"rating": True}, "rating takes a whole number \\(int\\), got bool"),
        ("product_review", {"review_date": "2025-03-01"}, "review_date takes a date or datetime, got str"),
        ("product_review", {"verified_purchase": 1}, "verified_purchase takes true or false \\(bool\\), got int"),
    ]
    for crawl_object, values, message in wrong:
        with pytest.raises(ResultError, match=f"{crawl_object}: {message}"):
            Result.of(values, crawl_object)
    assert Result.of({"price": 9, "rating": Decimal("4.5")}, "product_detail") == Result(price=9, rating=Decimal("4.5"))

    dispatch_hour(mysql, redis_client, settings, config, [
        ("product_detail", asin, "US", "hourly", None) for asin in ("B0C1234567", "B0C7654321", "B0C0000001")
    ])  # fmt: skip
    client = WorkerClient(redis_client, mysql)
    (first,) = client.take(1)
    with pytest.raises(ResultError, match="not result fields"):
        client.answer(first, [{"title": "fine"}, {"colour": "red"}])
    assert client.held.keys() == {(DETAIL, first.member)}  # still held: nothing buffered, nothing written
    assert client.release() == 1

    tally = run(lambda e: [{"title": "t", "seller_rank": 3}], WorkerClient(redis_client, mysql), idle_exit=True)

    assert (tally.taken, tally.answered, tally.failed, tally.reasons) == (2, 0, 2, {"parse_error": 2})
    reasons = {m: r for m, r in telemetry.fail_reasons(redis_client, DETAIL).items() if m != first.member.decode()}
    assert [why for why, _ in reasons.values()] == ["parse_error"] * 2
    assert all("not result fields: ['seller_rank']" in detail for _, detail in reasons.values())
    assert rows(mysql, "SELECT COUNT(*) FROM amazon_product_detail") == ((0,),)
    assert redis_client.scard(fail_key(DETAIL)) == 3  # retried, as any failure


def test_the_simulator_writes_valid_rows_for_every_object(mysql, redis_client, settings, config):
    three_objects(mysql, redis_client, settings, config)
    clean = simulator.Behaviour(results_per_page=3, fail_rate=0.0, invalid_rate=0.0)

    counts = simulator.crawl(mysql, redis_client, behaviour=clean, rng=random.Random(7))

    assert counts == {"answered": 6, "empty": 0, "failed": 0, "vanished": 0, "rows": 2 * 3 + 2 + 2 * 3}
    start, end = HOUR.naive()[0], dt.datetime(2100, 1, 1)
    for table, expected in (("amazon_search_result", 6), ("amazon_product_detail", 2), ("amazon_product_review", 6)):
        rules = store_results.validity_rules(table, ["US", "DE"])
        required = ("title",) if table == "amazon_product_detail" else ()
        assert store_results.count_passing(mysql, table, start, end, rules=rules, required=required) == (
            expected, expected,
        ), table  # fmt: skip

    dispatch_hour(mysql, redis_client, settings, config, [], hour_window_starting(HOUR.end, "UTC"))  # all broken
    broken = simulator.Behaviour(results_per_page=3, fail_rate=0.0, invalid_rate=1.0)
    simulator.crawl(mysql, redis_client, behaviour=broken, rng=random.Random(7))
    for table in ("amazon_product_detail", "amazon_product_review"):
        rules = store_results.validity_rules(table, ["US", "DE"])
        total, good = store_results.count_passing(mysql, table, start, end, rules=rules, required=())
        assert good == total // 2, table  # the first hour's rows pass, none of the second's
