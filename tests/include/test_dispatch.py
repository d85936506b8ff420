"""Dispatch core against the real MariaDB and Redis: record, push, idempotency, backfill."""

from __future__ import annotations

import datetime as dt
import threading

from crawlops import dispatch, queue
from crawlops.db import connect
from crawlops.model import UTC, Window, hour_window_starting

NOON = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
ROWS = [
    ("search_result", "usb c cable", "US", "hourly", 3),
    ("search_result", "イヤホン 🎧", "JP", "hourly", 2),
    ("search_result", "phone case", "UK", "daily", 4),
]


def run_window(conn, r, settings, window=NOON, **narrow):
    plan = dispatch.plan_window(conn, settings, window, "UTC", **narrow)
    recorded = dispatch.record_plan(conn, settings, plan, dag_run_id="test")
    pushed = dispatch.push_window(conn, r, settings, window)
    return plan, recorded, pushed


def snapshot(conn, r):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, task_type, task_status, element_count, interval_start FROM amazon_task_information"
        )
        tasks = sorted(cur.fetchall())
        cur.execute("SELECT task_id, element FROM amazon_task_element")
        manifest = sorted(cur.fetchall())
    sets = {t[0]: sorted(m.decode() for m in r.smembers(t[0])) for t in tasks}
    return tasks, manifest, sets


def test_records_then_pushes_the_due_tasks(mysql, redis_client, settings, config):
    config(ROWS)

    _, recorded, pushed = run_window(mysql, redis_client, settings)

    task_id = "search_result_1793707200_hourly"
    assert recorded == {"recorded": [task_id], "existing": []}
    assert pushed == {task_id: 5}
    tasks, manifest, sets = snapshot(mysql, redis_client)
    assert [(t[0], t[1], t[2], t[3]) for t in tasks] == [(task_id, "search_result", "Pending", 5)]
    assert sets[task_id] == sorted(e for _, e in manifest)
    assert '{"keyword":"イヤホン 🎧","marketplace":"JP","page":2}' in sets[task_id]
    assert redis_client.get(queue.EPOCH_KEY) is not None
    assert not redis_client.keys(queue.STAGING_PREFIX + "*")


def test_same_window_three_times_changes_nothing(mysql, redis_client, settings, config, crawler):
    config(ROWS)
    run_window(mysql, redis_client, settings)
    first = snapshot(mysql, redis_client)
    taken = crawler.take("search_result_1793707200_hourly", 2)

    run_window(mysql, redis_client, settings)
    _, recorded, pushed = run_window(mysql, redis_client, settings)

    tasks, manifest, sets = snapshot(mysql, redis_client)
    assert (tasks, manifest) == first[:2]
    assert recorded == {"recorded": [], "existing": ["search_result_1793707200_hourly"]}
    assert pushed == {}
    # Elements a worker took are not handed out again by a re-run.
    assert sets["search_result_1793707200_hourly"] == sorted(
        set(first[2]["search_result_1793707200_hourly"]) - set(taken)
    )


def test_backfill_of_six_hours_gives_six_tasks(mysql, redis_client, settings, config):
    config(ROWS)
    windows = [Window(NOON.start + dt.timedelta(hours=h), NOON.start + dt.timedelta(hours=h + 1)) for h in range(-3, 3)]

    for window in windows:
        run_window(mysql, redis_client, settings, window)

    tasks, manifest, sets = snapshot(mysql, redis_client)
    assert [t[0] for t in tasks] == sorted(f"search_result_{w.epoch}_hourly" for w in windows)
    assert {t[4] for t in tasks} == {w.naive()[0] for w in windows}
    assert len(manifest) == 6 * 5
    assert all(len(members) == 5 for members in sets.values())


def test_midnight_window_adds_the_daily_task(mysql, redis_client, settings, config):
    config(ROWS)
    midnight = hour_window_starting(dt.datetime(2026, 11, 4, tzinfo=UTC), "UTC")

    _, _, pushed = run_window(mysql, redis_client, settings, midnight)

    assert pushed == {f"search_result_{midnight.epoch}_daily": 4, f"search_result_{midnight.epoch}_hourly": 5}


def test_manual_narrowing_by_crawl_object_and_frequency(mysql, redis_client, settings, config):
    config(ROWS)
    midnight = hour_window_starting(dt.datetime(2026, 11, 4, tzinfo=UTC), "UTC")

    _, recorded, _ = run_window(mysql, redis_client, settings, midnight, frequencies=["daily"])

    assert recorded["recorded"] == [f"search_result_{midnight.epoch}_daily"]


def test_hostile_config_rows_never_break_a_run(mysql, redis_client, settings, config):
    config(
        [
            ("search_result", "'; DROP TABLE amazon_task_information; --", "US", "hourly", 1),
            ("search_result", "🔥 deals 👨‍👩‍👧", "US", "hourly", 1),
            ("search_result", "x" * 10_000, "US", "hourly", 1),
            ("search_result", "%s %(x)s \\ \" '", "US", "hourly", 1),
            (None, None, None, None, None),
            ("search_result", "ok", None, "hourly", 1),
            ("search_result", "ok", "US", "hourly", None),
        ]
    )

    plan, _, _ = run_window(mysql, redis_client, settings)

    assert plan.summary()["skipped"] == {
        "max_pages_out_of_range": 1,
        "oversized_target": 1,
        "unknown_crawl_object": 1,
        "unknown_marketplace": 1,
    }
    members = {m.decode() for m in redis_client.smembers("search_result_1793707200_hourly")}
    assert members == {
        '{"keyword":"\'; DROP TABLE amazon_task_information; --","marketplace":"US","page":1}',
        '{"keyword":"🔥 deals 👨‍👩‍👧","marketplace":"US","page":1}',
        '{"keyword":"%s %(x)s \\\\ \\" \'","marketplace":"US","page":1}',
    }
    with mysql.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM amazon_task_information")
        assert cur.fetchone() == (1,)
        cur.execute("SELECT LENGTH(target) FROM amazon_crawl_config WHERE LENGTH(target) > 9000")
        assert cur.fetchone() == (10_000,)  # stored whole, skipped at dispatch


def test_dry_run_plan_writes_nothing(mysql, redis_client, settings, config):
    config(ROWS)

    plan = dispatch.plan_window(mysql, settings, NOON, "UTC")

    assert plan.summary()["tasks"] == {"search_result_1793707200_hourly": 5}
    assert snapshot(mysql, redis_client) == ([], [], {})


def test_concurrent_runs_of_one_window_record_one_task(mysql, redis_client, settings, config):
    config([("search_result", f"kw {i}", "US", "hourly", 5) for i in range(400)])
    outcomes = []

    def worker():
        conn = connect()
        import redis

        r = redis.Redis(db=redis_client.connection_pool.connection_kwargs["db"])
        outcomes.append(run_window(conn, r, settings)[1:])
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    tasks, manifest, sets = snapshot(mysql, redis_client)
    assert len(tasks) == 1 and len(manifest) == 2000
    assert len(sets[tasks[0][0]]) == 2000
    assert sorted(len(rec["recorded"]) for rec, _ in outcomes) == [0, 0, 1]
    assert sum(len(pushed) for _, pushed in outcomes) == 1


def test_interrupted_push_adopts_the_published_set(mysql, redis_client, settings, config, crawler):
    """A push that published the set but died before its ledger update must not push twice."""
    config(ROWS)
    plan = dispatch.plan_window(mysql, settings, NOON, "UTC")
    dispatch.record_plan(mysql, settings, plan)
    (task,) = plan.tasks
    epoch = queue.current_epoch(redis_client, create=True)
    queue.push_members(redis_client, task.task_id, [[e.text for e in task.elements()]], epoch=epoch)
    crawler.take(task.task_id, 3)

    pushed = dispatch.push_window(mysql, redis_client, settings, NOON)

    assert pushed == {task.task_id: 2}
    assert redis_client.scard(task.task_id) == 2
