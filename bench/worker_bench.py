"""Worker-kit benchmark: elements per second through ``crawlops.worker`` with a no-op fetch, against its floor.

    python -m bench.worker_bench [--elements 200000] [--processes 4] [--batch 100] [--repeat 2]

Both phases drain a task the package's own dispatch published (config rows keywords x pages,
``plan_window`` + ``record_plan`` + ``push_window``; each run its own fresh hour window, the
results table truncated before it) with ``--processes`` worker processes on the real local
MariaDB and Redis, and write one result row per element into ``amazon_search_result``.

Kit: each process opens ``WorkerClient.from_urls`` and calls ``crawlops.worker.run(fetch,
client, batch=B, idle_exit=True)``; ``fetch`` runs the default block detector
(``crawlops.reasons.amazon_block``) on a results page of the fake site (``PAGE``, 512 KB: a
real one is 0.3-2 MB) and returns one ``Result``, so what is measured is
the kit's own work per element with everything on: reading the open-task index, SPOP,
parsing the element, the throttle lookup (``pace``), block detection, checking it was taken
once, building the row, the batched insert and commit, the per-minute outcome counts, and
the heartbeat. Floor, measured in the same run: the same processes looping a raw ``SPOP task B``,
parsing each member's JSON for keyword / marketplace / page (the kit must, so the floor
does), and one ``executemany`` of the same row shape plus a commit per batch; no kit code.

Each time runs from starting the processes to the last one joined (connections included);
the phases alternate ``--repeat`` times and the best of each is reported. Reading the
ratio kit / floor: what a crawler pays for the kit over writing the protocol by hand, with
nothing to hide it behind (a real fetch takes 0.5-5 s per page, so per element the
overhead shrinks to noise); the target is at most 1.5x. Elements per hour per process is
the kit's rate / processes x 3600: an upper bound for one worker process, as the capacity
table in docs/performance.md uses it. The worker processes' own CPU seconds (user + system, from
``RUSAGE_CHILDREN``; MariaDB's and Redis's work is not in them) are printed beside the
times: on a small machine shared with the servers the wall times wander by 10-20 % from run
to run, the CPU seconds much less, so their ratio is the steadier reading of the kit's cost.
Runs in its own database, ``crawlops_bench_worker`` (``CRAWLOPS_BENCH_WORKER_MYSQL_URL``): it empties the
results table every run. Writes bench/results/worker.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import resource
import time
from typing import Any

from bench.common import BENCH_MYSQL_URL, bench_mysql, bench_redis, write_result
from crawlops import dispatch
from crawlops.db import Connection, batched, connect
from crawlops.harness.fakesite import PageKind, render
from crawlops.model import UTC, Window, empty_key, fail_key, hour_window_starting
from crawlops.queue import RedisClient
from crawlops.settings import Settings
from crawlops.worker import Blocked, Element, Result, WorkerClient, amazon_block, run
from crawlops.worker.loop import run_processes

TABLES = ("amazon_crawl_config", "amazon_task_information", "amazon_task_element", "amazon_search_result")
RUN_TABLES = TABLES[1:]  # emptied before every run; the config stays
FIRST_HOUR = dt.datetime(2026, 11, 3, 12, tzinfo=UTC)

RESULT = Result(
    asin="B000000001",
    title="Bench result title",
    price=19.99,
    currency="USD",
    rating=4.5,
    review_count=1234,
    position=1,
)
# A results page of 512 KB (the fake site's results repeated): real search, product and review
# pages are 0.3-2 MB, robot-check pages 2-7 KB, and the detector looks into small pages only.
PAGE = (render("bench keyword", "US", 1, PageKind.RESULTS).encode() * 256)[:524288]
# The floor's row: (task_id, keyword, marketplace, *RESULT_VALUES, page, position, create_time).
RESULT_VALUES = (RESULT.asin, RESULT.title, RESULT.price, RESULT.currency, RESULT.rating, RESULT.review_count)
FLOOR_INSERT = (
    "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, title, price, currency, rating, "
    "review_count, page, position, create_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def mysql_url() -> str:
    # A database of its own: the runs empty the results table, which in crawlops_bench holds
    # the 10M rows the validation and dashboard benchmarks load once and reuse.
    return os.environ.get(
        "CRAWLOPS_BENCH_WORKER_MYSQL_URL", BENCH_MYSQL_URL.rsplit("/", 1)[0] + "/crawlops_bench_worker"
    )


def redis_url(r: Any) -> str:
    kwargs = r.connection_pool.connection_kwargs
    return f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 14)}"


# -- setup ------------------------------------------------------------------------------------


def truncate(conn: Connection, tables: tuple[str, ...]) -> None:
    with conn.cursor() as cur:
        for table in tables:
            cur.execute(f"TRUNCATE TABLE {table}")
    conn.commit()


def load_config(conn: Connection, keywords: int, pages: int) -> None:
    rows = [("search_result", f"bench keyword {i:07d}", "US", "hourly", pages) for i in range(keywords)]
    with conn.cursor() as cur:
        for chunk in batched(rows, 10_000):
            cur.executemany(
                "INSERT INTO amazon_crawl_config (crawl_object, target, marketplace, frequency, max_pages) "
                "VALUES (%s, %s, %s, %s, %s)",
                chunk,
            )
    conn.commit()


def dispatch_fresh(conn: Connection, r: RedisClient, settings: Settings, window: Window, elements: int) -> str:
    """Empty the run's tables and Redis, dispatch ``window``; the id of its one task, holding ``elements``."""
    truncate(conn, RUN_TABLES)
    r.flushdb()
    plan = dispatch.plan_window(conn, settings, window, "UTC")
    dispatch.record_plan(conn, settings, plan, dag_run_id="bench")
    pushed = dispatch.push_window(conn, r, settings, window)
    ((task_id, count),) = pushed.items()
    assert count == elements, (task_id, count, elements)
    assert r.scard(task_id) == elements
    return task_id


def check_drained(conn: Connection, r: RedisClient, task_id: str, elements: int) -> None:
    """The set is gone, nothing failed or came back empty, one row per element."""
    assert not r.exists(task_id), f"{task_id} still holds {r.scard(task_id)} members"
    assert not r.exists(fail_key(task_id)), r.scard(fail_key(task_id))
    assert not r.exists(empty_key(task_id)), r.scard(empty_key(task_id))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*), COUNT(DISTINCT keyword, page) FROM amazon_search_result WHERE task_id = %s", (task_id,)
        )
        rows, distinct = cur.fetchone()
    conn.commit()
    assert rows == distinct == elements, (rows, distinct, elements)


# -- the two phases -----------------------------------------------------------------------------


def fetch(element: Element) -> list[Result]:
    """No crawl at all: the block detector on a page, then one result per element."""
    marker = amazon_block(200, {}, PAGE)
    if marker:
        raise Blocked(marker)
    return [RESULT]


def kit_process(mysql: str, redis_at: str, batch: int) -> None:
    client = WorkerClient.from_urls(mysql, redis_at)
    try:
        tally = run(fetch, client, batch=batch, idle_exit=True)
    finally:
        client.close()
    assert tally.failed == tally.empty == tally.released == 0, tally
    assert tally.answered == tally.rows == tally.taken, tally


def floor_process(mysql: str, redis_at: str, task_id: str, batch: int) -> None:
    import redis

    r = redis.Redis.from_url(redis_at)
    conn = connect(mysql)
    try:
        while members := r.spop(task_id, batch):
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            rows = []
            for member in members:
                element = json.loads(member)
                rows.append(
                    (task_id, element["keyword"], element["marketplace"], *RESULT_VALUES, element["page"], 1, now)
                )
            with conn.cursor() as cur:
                cur.executemany(FLOOR_INSERT, rows)
            conn.commit()
    finally:
        conn.close()


def children_cpu() -> float:
    """User + system CPU seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_kit(redis_at: str, processes: int, batch: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the worker processes)."""
    cpu, started = children_cpu(), time.perf_counter()
    errors = run_processes(kit_process, (mysql_url(), redis_at, batch), processes, name="bench-kit")
    elapsed = time.perf_counter() - started
    assert errors == 0, f"{errors} kit processes failed"
    return elapsed, children_cpu() - cpu


def timed_floor(redis_at: str, processes: int, batch: int, task_id: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the worker processes)."""
    cpu, started = children_cpu(), time.perf_counter()
    children = [
        multiprocessing.Process(target=floor_process, args=(mysql_url(), redis_at, task_id, batch))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
    elapsed = time.perf_counter() - started
    assert all(child.exitcode == 0 for child in children), [child.exitcode for child in children]
    return elapsed, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--elements", type=int, default=200_000)
    parser.add_argument("--pages", type=int, default=5, help="pages per keyword (keywords = elements / pages)")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="elements taken per SPOP (the kit's run(batch=))")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each phase, alternated; the best is reported")
    args = parser.parse_args()
    if args.elements % args.pages:
        parser.error(f"--elements {args.elements} is not a multiple of --pages {args.pages}")

    conn, r = bench_mysql(mysql_url()), bench_redis()
    redis_at = redis_url(r)
    settings = Settings.load()
    truncate(conn, TABLES)
    load_config(conn, args.elements // args.pages, args.pages)

    times: dict[str, list[float]] = {"kit": [], "floor": []}
    cpus: dict[str, list[float]] = {"kit": [], "floor": []}
    hour = 0
    for _ in range(args.repeat):
        for phase in ("kit", "floor"):
            window = hour_window_starting(FIRST_HOUR + dt.timedelta(hours=hour), "UTC")
            hour += 1
            task_id = dispatch_fresh(conn, r, settings, window, args.elements)
            if phase == "kit":
                elapsed, cpu = timed_kit(redis_at, args.processes, args.batch)
            else:
                elapsed, cpu = timed_floor(redis_at, args.processes, args.batch, task_id)
            check_drained(conn, r, task_id, args.elements)
            times[phase].append(elapsed)
            cpus[phase].append(cpu)
    truncate(conn, TABLES)
    r.flushdb()

    kit, floor = min(times["kit"]), min(times["floor"])
    kit_cpu, floor_cpu = min(cpus["kit"]), min(cpus["floor"])
    kit_rate, floor_rate = args.elements / kit, args.elements / floor
    per_process_hour = kit_rate / args.processes * 3600
    result = {
        "benchmark": "worker",
        "elements": args.elements,
        "processes": args.processes,
        "batch": args.batch,
        "kit_seconds": round(kit, 3),
        "floor_seconds": round(floor, 3),
        "kit_elements_per_second": round(kit_rate),
        "floor_elements_per_second": round(floor_rate),
        "ratio": round(kit / floor, 2),
        "kit_elements_per_hour_per_process": round(per_process_hour),
        "kit_runs": [round(t, 3) for t in times["kit"]],
        "floor_runs": [round(t, 3) for t in times["floor"]],
        "kit_worker_cpu_seconds": round(kit_cpu, 3),
        "floor_worker_cpu_seconds": round(floor_cpu, 3),
        "cpu_ratio": round(kit_cpu / floor_cpu, 2),
        "kit_cpu_runs": [round(t, 3) for t in cpus["kit"]],
        "floor_cpu_runs": [round(t, 3) for t in cpus["floor"]],
    }
    print(f"worker kit, {args.processes} processes, batch {args.batch}, best of {args.repeat}\n")
    print("| phase | elements | seconds | elements/s | worker CPU s |")
    print("|---|---|---|---|---|")
    print(f"| kit | {args.elements:,} | {kit:.2f} | {kit_rate:,.0f} | {kit_cpu:.2f} |")
    print(f"| floor | {args.elements:,} | {floor:.2f} | {floor_rate:,.0f} | {floor_cpu:.2f} |")
    print(f"\nratio kit/floor {kit / floor:.2f}x (target ≤ 1.5x); worker CPU {kit_cpu / floor_cpu:.2f}x")
    print(f"one process sustains {per_process_hour:,.0f} elements/hour through the kit (no-op fetch)")
    write_result("worker", result)


if __name__ == "__main__":
    main()
