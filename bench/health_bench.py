"""Task-health benchmark: the 5-minute health check on 100k task rows, against its floor.

    python -m bench.health_bench [--tasks 100000] [--open 200]

Ours: ``crawlops.health.check_tasks``, what the supervision DAG's task_health runs (status
sync through the dispatch core, timeouts, stalls, success rate, queue depth). Floor,
measured in the same run: the single indexed query that returns the open tasks. Most task
rows are closed, as in production; the open ones have Redis sets. Writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from bench.common import bench_mysql, bench_redis, write_result
from crawlops import health, queue
from crawlops.db import batched
from crawlops.model import UTC
from crawlops.settings import Settings


def load(conn, r, tasks: int, open_tasks: int) -> None:
    with conn.cursor() as cur:
        cur.execute("TRUNCATE TABLE amazon_task_information")
    conn.commit()
    r.flushdb()
    epoch = queue.current_epoch(r, create=True)
    start = dt.datetime(2026, 1, 1)
    rows = []
    for i in range(tasks):
        is_open = i >= tasks - open_tasks
        status = "In Progress" if is_open else ("Completed" if i % 20 else "Failed")
        interval = start + dt.timedelta(hours=i)
        rows.append(
            (
                f"search_result_{int(interval.replace(tzinfo=UTC).timestamp())}_{i}",
                "search_result",
                f"search_result_{i}",
                "hourly",
                status,
                100,
                40 if is_open else 0,
                0 if status != "Failed" else 3,
                interval,
                interval + dt.timedelta(hours=1),
                epoch,
                interval,
                None if is_open else interval + dt.timedelta(minutes=30),
                None if is_open else interval + dt.timedelta(minutes=30),  # settled: a year of history
                None if is_open else 100 - (0 if status != "Failed" else 3),
            )
        )
    with conn.cursor() as cur:
        for batch in batched(rows, 5000):
            cur.executemany(
                "INSERT INTO amazon_task_information (task_id, task_type, root_task_id, frequency, task_status, "
                "element_count, remaining_count, failed_count, interval_start, interval_end, redis_epoch, pushed_at, "
                "finished_at, settled_at, answered_count, push_count, started_at, progress_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1, UTC_TIMESTAMP(), "
                "UTC_TIMESTAMP())",
                batch,
            )
    conn.commit()
    pipe = r.pipeline(transaction=False)
    for row in rows[-open_tasks:]:
        pipe.sadd(row[0], *[f'{{"keyword":"k{j}","marketplace":"US","page":1}}' for j in range(40)])
    pipe.execute()


def floor(conn) -> float:
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, task_type, task_status, element_count, remaining_count, started_at, progress_at "
            "FROM amazon_task_information WHERE task_status IN ('Pending', 'In Progress')"
        )
        cur.fetchall()
    return time.perf_counter() - started


def ours(conn, r, settings) -> float:
    started = time.perf_counter()
    report = health.check_tasks(conn, r, settings, dt.datetime.now(UTC))
    elapsed = time.perf_counter() - started
    assert report.open_tasks > 0 and not report.timed_out
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    conn, r = bench_mysql(), bench_redis()
    settings = Settings.load()
    load(conn, r, args.tasks, args.open)
    ours(conn, r, settings)  # warm-up: the first sync records the sets' sizes
    ours_times = [ours(conn, r, settings) for _ in range(args.repeat)]
    floor_times = [floor(conn) for _ in range(args.repeat)]
    best_ours, best_floor = min(ours_times), min(floor_times)
    result = {
        "benchmark": "health",
        "tasks": args.tasks,
        "open_tasks": args.open,
        "ours_seconds": round(best_ours, 4),
        "floor_seconds": round(best_floor, 4),
        "ratio": round(best_ours / best_floor, 2),
    }
    print(
        f"health   {args.tasks:>9,} tasks ({args.open} open): ours {best_ours * 1000:7.1f} ms   "
        f"floor {best_floor * 1000:7.1f} ms   ratio {result['ratio']:.2f}x"
    )
    write_result("health", result)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE TABLE amazon_task_information")
    conn.commit()
    r.flushdb()


if __name__ == "__main__":
    main()
