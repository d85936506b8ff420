"""Dispatch benchmark: config rows -> MySQL task + manifest rows -> Redis set, against its floor.

    python -m bench.dispatch_bench --keywords 20000 --pages 5     # 100k elements

Ours: the functions the DAG's record_tasks and push_tasks call (plan_window, record_plan,
push_window) on the real local MariaDB and Redis. Floor, measured in the same run on the
same rows: a plain batched executemany of the manifest rows into the same table plus a
plain batched SADD of the same members. Prints both times and the ratio; writes JSON to
bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time

from bench.common import bench_mysql, bench_redis, write_result
from crawlops import dispatch
from crawlops.db import batched
from crawlops.model import UTC, element_digest, hour_window_starting
from crawlops.settings import Settings

TABLES = ("amazon_crawl_config", "amazon_task_information", "amazon_task_element")
WINDOW = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")


def reset(conn, r) -> None:
    with conn.cursor() as cur:
        for table in TABLES:
            cur.execute(f"TRUNCATE TABLE {table}")
    conn.commit()
    r.flushdb()


def load_config(conn, keywords: int, pages: int) -> None:
    rows = [("search_result", f"bench keyword {i:07d}", "US", "hourly", pages) for i in range(keywords)]
    with conn.cursor() as cur:
        for batch in batched(rows, 10_000):
            cur.executemany(
                "INSERT INTO amazon_crawl_config (crawl_object, target, marketplace, frequency, max_pages) "
                "VALUES (%s, %s, %s, %s, %s)",
                batch,
            )
    conn.commit()


def ours(conn, r, settings: Settings) -> tuple[float, int]:
    started = time.perf_counter()
    plan = dispatch.plan_window(conn, settings, WINDOW, "UTC")
    dispatch.record_plan(conn, settings, plan, dag_run_id="bench")
    pushed = dispatch.push_window(conn, r, settings, WINDOW)
    return time.perf_counter() - started, sum(pushed.values())


def floor(conn, r, settings: Settings) -> float:
    """The same manifest rows and members, prepared beforehand, written with no logic around them."""
    with conn.cursor() as cur:
        cur.execute("SELECT task_id, seq, element, target, marketplace, page, config_id FROM amazon_task_element")
        rows = [(t, n, element_digest(e), e, tg, mp, p, c) for t, n, e, tg, mp, p, c in cur.fetchall()]
        cur.execute("TRUNCATE TABLE amazon_task_element")
    conn.commit()
    r.flushdb()
    members = [row[3] for row in rows]
    key = rows[0][0]
    started = time.perf_counter()
    with conn.cursor() as cur:
        for batch in batched(rows, settings.dispatch.mysql_batch_size):
            cur.executemany(
                "INSERT INTO amazon_task_element (task_id, seq, element_hash, element, target, marketplace, page, "
                "config_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                batch,
            )
    conn.commit()
    pipe = r.pipeline(transaction=False)
    for batch in batched(members, settings.dispatch.redis_batch_size):
        pipe.sadd(key, *batch)
    pipe.execute()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keywords", type=int, default=20_000)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    args = parser.parse_args()

    conn, r = bench_mysql(), bench_redis()
    settings = Settings.load()
    ours_times, floor_times = [], []
    rss_growth_kb = None
    for _ in range(args.repeat):
        reset(conn, r)
        load_config(conn, args.keywords, args.pages)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        elapsed, pushed = ours(conn, r, settings)
        if rss_growth_kb is None:  # the first run, before the floor's prepared rows inflate the peak
            rss_growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        ours_times.append(elapsed)
        assert pushed == args.keywords * args.pages, pushed
        assert r.scard(f"search_result_{WINDOW.epoch}_hourly") == pushed
        floor_times.append(floor(conn, r, settings))
    reset(conn, r)
    best_ours, best_floor = min(ours_times), min(floor_times)
    result = {
        "benchmark": "dispatch",
        "elements": args.keywords * args.pages,
        "ours_seconds": round(best_ours, 3),
        "floor_seconds": round(best_floor, 3),
        "ratio": round(best_ours / best_floor, 2),
        "ours_runs": [round(t, 3) for t in ours_times],
        "floor_runs": [round(t, 3) for t in floor_times],
        "peak_rss_growth_mb_during_ours": round(rss_growth_kb / 1024, 1),
    }
    print(
        f"dispatch {result['elements']:>9,} elements: ours {best_ours:7.2f} s   floor {best_floor:7.2f} s   "
        f"ratio {result['ratio']:.2f}x   peak RSS growth {result['peak_rss_growth_mb_during_ours']} MB"
    )
    write_result(f"dispatch-{result['elements']}", result)


if __name__ == "__main__":
    main()
