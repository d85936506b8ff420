"""Faults injected into the real MariaDB and Redis: nothing lost, nothing doubled, loops bounded."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import time
from pathlib import Path

import pytest
import redis as redis_lib

from crawlops import dispatch, health, lifecycle, quality, store, validation
from crawlops.db import connect
from crawlops.harness import simulator
from crawlops.model import UTC, Window, hour_window_starting

NOON = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"


def manifest(mysql, task_id=TASK):
    with mysql.cursor() as cur:
        cur.execute("SELECT element FROM amazon_task_element WHERE task_id = %s", (task_id,))
        return sorted(e for (e,) in cur.fetchall())


def keywords(config, count, pages=5):
    config([("search_result", f"keyword {i}", "US", "hourly", pages) for i in range(count)])


def test_mysql_connection_killed_mid_record_rolls_back_and_the_retry_records_once(mysql, settings, config, monkeypatch):
    from conftest import MYSQL_URL

    keywords(config, 2000)  # 10,000 elements: two batches of 5,000
    victim = connect(MYSQL_URL)
    plan = dispatch.plan_window(victim, settings, NOON, "UTC")
    from crawlops.store import manifest as store_manifest  # where a new task's manifest is inserted in batches

    real_batched, calls = store_manifest.batched, []

    def killing_batched(items, size):
        for batch in real_batched(items, size):
            calls.append(len(batch))
            if len(calls) == 2:  # the first batch went in: the connection dies mid-transaction
                with mysql.cursor() as cur:
                    cur.execute("KILL CONNECTION %s", (victim.thread_id(),))
            yield batch

    monkeypatch.setattr(store_manifest, "batched", killing_batched)
    with pytest.raises(Exception, match=r"(?i)lost connection|server has gone away|killed"):
        dispatch.record_plan(victim, settings, plan)
    monkeypatch.setattr(store_manifest, "batched", real_batched)

    assert manifest(mysql) == []  # rolled back: no half-recorded task
    with mysql.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM amazon_task_information")
        assert cur.fetchone() == (0,)
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, NOON, "UTC"))
    assert len(manifest(mysql)) == 10_000 == len(set(manifest(mysql)))


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of our own that a test may kill and restart (nothing kept on disk)."""
    port = 6393
    processes = []

    def start():
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(process)
        for _ in range(200):
            try:
                redis_lib.Redis(port=port).ping()
                break
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        return redis_lib.Redis(port=port)

    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait()


def test_redis_dying_between_batches_fails_clearly_and_the_retry_completes_exactly(
    mysql, settings, config, monkeypatch, private_redis
):
    r = private_redis()
    keywords(config, 2000)  # 10,000 elements: five SADD batches of 2,000
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, NOON, "UTC"))
    real_stream = store.stream_elements

    def dying_stream(*args, **kwargs):
        for n, batch in enumerate(real_stream(*args, **kwargs)):
            if n == 2:
                r.shutdown(nosave=True)
            yield batch

    monkeypatch.setattr(store, "stream_elements", dying_stream)
    with pytest.raises(redis_lib.ConnectionError):
        dispatch.push_window(mysql, r, settings, NOON)
    monkeypatch.setattr(store, "stream_elements", real_stream)

    r = private_redis()  # restarted, empty
    assert dispatch.push_window(mysql, r, settings, NOON) == {TASK: 10_000}
    assert sorted(m.decode() for m in r.smembers(TASK)) == manifest(mysql)
    with mysql.cursor() as cur:
        cur.execute("SELECT push_count, task_status FROM amazon_task_information WHERE task_id = %s", (TASK,))
        assert cur.fetchone() == (1, "Pending")


def test_workers_that_die_end_in_dead_with_a_critical_alert_never_an_endless_loop(
    mysql, redis_client, settings, config
):
    keywords(config, 3, pages=2)
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, NOON, "UTC"))
    dispatch.push_window(mysql, redis_client, settings, NOON)
    dying = simulator.Behaviour(vanish_rate=1.0, fail_rate=0.0)
    later = dt.datetime.now(UTC)
    critical, cycles = [], 0
    while cycles < 10:
        cycles += 1
        simulator.crawl(mysql, redis_client, behaviour=dying, rng=random.Random(cycles))
        later += dt.timedelta(seconds=settings.health.task_timeout_seconds + 60)
        # Their elements drained without results: settling sends them to the retry path.
        report = health.check_tasks(mysql, redis_client, settings, later)
        _, missing = quality.check_completeness(
            mysql, redis_client, settings, Window(later - dt.timedelta(hours=1), later)
        )
        critical += [f for f in [*report.findings, *missing] if f.check == "task_dead"]
        if not lifecycle.sync_open_tasks(mysql, redis_client, settings, write=False).tasks:
            break

    assert cycles == settings.dispatch.retry_limit + 1  # the original, then one cycle per retry
    last = TASK + "_fail" * settings.dispatch.retry_limit
    assert [(f.level.value, f.subject) for f in critical] == [("CRITICAL", last)]
    with mysql.cursor() as cur:
        cur.execute("SELECT task_status, COUNT(*) FROM amazon_task_information GROUP BY task_status")
        assert dict(cur.fetchall()) == {"Failed": settings.dispatch.retry_limit, "Dead": 1}
    # Every element was taken and never answered, and each retry held exactly all of them.
    for k in range(settings.dispatch.retry_limit + 1):
        assert len(manifest(mysql, TASK + "_fail" * k)) == 6


def test_a_config_table_of_100k_rows_with_10_percent_hostile_ones(mysql, settings, config):
    hostile = [
        ("search_result", "nul\x00byte", "US", "hourly", 1),
        ("search_result", "x" * 1_000_000, "US", "hourly", 1),
        ("search_result", "minus pages", "US", "hourly", -3),
        ("search_result", "huge pages", "US", "hourly", 2_000_000_000),
        ("search_result", "fortnightly", "US", "fortnightly", 1),
        ("search_result", "'); DROP TABLE amazon_crawl_config; -- \\' \"", "XX", "hourly", 1),
        (None, None, None, None, None),
        ("product_page", "B0CHX1W1XY", "US", "hourly", 1),  # no such crawl object
        ("search_result", "", "US", "hourly", 1),
        ("search_result", "KEYWORD 0  🎧 イヤホン", "US", "hourly", 5),  # a duplicate of the first good row
    ]
    good = [("search_result", f"keyword {i} 🎧 イヤホン", "JP" if i % 2 else "US", "hourly", 5) for i in range(90_000)]
    rows = good[:45_000] + hostile * 1_000 + good[45_000:]
    for start in range(0, len(rows), 10_000):
        config(rows[start : start + 10_000])

    plan = dispatch.plan_window(mysql, settings, NOON, "UTC")

    summary = plan.summary()
    assert sum(summary["skipped"].values()) == 10_000
    assert summary["skipped"] == {
        "bad_frequency": 1_000,
        "duplicate": 1_000,
        "empty_target": 1_000,
        "invalid_target": 1_000,
        "max_pages_out_of_range": 2_000,
        "oversized_target": 1_000,
        "unknown_crawl_object": 2_000,
        "unknown_marketplace": 1_000,
    }
    assert summary["tasks"] == {TASK: 90_000 * 5}


def test_a_broken_suite_file_is_a_clear_error_naming_it(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "expectations": [')
    unnamed = tmp_path / "unnamed.json"
    unnamed.write_text(json.dumps({"name": "x", "expectations": [{"type": "expect_table_row_count_to_be_between"}]}))

    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON"):
        validation.load_suite(broken)
    with pytest.raises(ValueError, match=r"unnamed\.json: expectation #0 needs"):
        validation.load_suite(unnamed)
    # The shipped suite still loads.
    shipped = Path(validation.__file__).resolve().parents[2] / "expectations" / "amazon_search_result.json"
    assert validation.load_suite(shipped)["name"] == "amazon_search_result"


def test_mysql_connection_killed_mid_quarantine_move_rolls_back_and_the_retry_moves_once(mysql, settings, monkeypatch):
    from conftest import MYSQL_URL

    start = NOON.naive()[0]
    price = [-1.0] * 1500 + [9.99] * 1500  # half of the hour breaks price_non_negative
    when = [start + dt.timedelta(seconds=i % 3600) for i in range(3000)]
    rows = [(TASK, f"kw {i}", "US", f"B0{i:08d}", price[i], 4.5, 1, i, when[i]) for i in range(3000)]
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, title, price, currency, rating, "
            "review_count, page, position, create_time) VALUES (%s, %s, %s, %s, 't', %s, 'USD', %s, 1, %s, %s, %s)",
            rows,
        )
    mysql.commit()
    victim = connect(MYSQL_URL)
    from crawlops.store import results as store_results

    real_batched, chunks = store_results.batched, []

    def killing_batched(items, size):
        for chunk in real_batched(items, size):
            chunks.append(len(chunk))
            if len(chunks) == 2:  # the first 1,000 rows were copied and deleted inside the transaction
                with mysql.cursor() as cur:
                    cur.execute("KILL CONNECTION %s", (victim.thread_id(),))
            yield chunk

    monkeypatch.setattr(store_results, "batched", killing_batched)
    with pytest.raises(Exception, match=r"(?i)lost connection|server has gone away|killed"):
        quality.quarantine_invalid(victim, "amazon_search_result", NOON, settings)
    monkeypatch.setattr(store_results, "batched", real_batched)

    def counts():
        with mysql.cursor() as cur:
            cur.execute("SELECT (SELECT COUNT(*) FROM amazon_search_result), "
                        "(SELECT COUNT(*) FROM amazon_search_result_quarantine)")  # fmt: skip
            return cur.fetchone()

    assert counts() == (3000, 0)  # rolled back as one transaction
    summary, _ = quality.quarantine_invalid(mysql, "amazon_search_result", NOON, settings)
    assert summary["invalid"] == 1500
    assert counts() == (1500, 1500)
