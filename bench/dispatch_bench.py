"""Dispatch benchmark: config rows -> MySQL task + manifest rows -> Redis set, against its floor.

    python -m bench.dispatch_bench --keywords 20000 --pages 5     # 100k elements

Ours: the functions the DAG's record_tasks and push_tasks call (plan_window, record_plan,
push_window) on the real local MariaDB and Redis. Floor, measured in the same run on the
same rows: a plain batched executemany of the manifest rows into the same table plus a
plain batched SADD of the same members. Prints both times and the ratio; writes JSON to
bench/results/.

Memory: the process's resident set is sampled every 20 ms during ours (a thread reading
/proc/self/statm), from a baseline taken after the config rows are in MySQL (they are
streamed there, so loading them leaves no peak behind). Planning holds the config rows;
what record and push add beyond the planned config is what must not grow with the element
count. Both are printed, per element and per config row, so runs of 1M and 10M elements
can be compared:

    python -m bench.dispatch_bench --keywords 2000000 --pages 5 --repeat 1   # 10M, make bench-dispatch-10m

The floor's rows are prepared beforehand in chunks of 500,000 written to a temporary file
(at 10M elements, all of them in memory would take several GB), and only the writes are timed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import marshal
import os
import tempfile
import threading
import time
from collections.abc import Iterator

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


def config_row(i: int, pages: int, mixed: bool) -> tuple[str, str, str, str, int]:
    """A config row; ``mixed``: the three crawl objects in turn (a product page is one element)."""
    kind = i % 3 if mixed else 0
    if kind == 1:
        return ("product_detail", f"B0{i:08d}", "US", "hourly", 1)
    if kind == 2:
        return ("product_review", f"B0{i:08d}", "US", "hourly", pages)
    return ("search_result", f"bench keyword {i:07d}", "US", "hourly", pages)


def expected_elements(keywords: int, pages: int, mixed: bool) -> int:
    return sum(config_row(i, pages, mixed)[4] for i in range(keywords))


def load_config(conn, keywords: int, pages: int, mixed: bool = False) -> None:
    rows = (config_row(i, pages, mixed) for i in range(keywords))
    with conn.cursor() as cur:
        for batch in batched(rows, 10_000):
            cur.executemany(
                "INSERT INTO amazon_crawl_config (crawl_object, target, marketplace, frequency, max_pages) "
                "VALUES (%s, %s, %s, %s, %s)",
                batch,
            )
    conn.commit()


_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


class RssPeak:
    """The highest resident set seen while the block runs, sampled every 20 ms by a thread."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def ours(conn, r, settings: Settings) -> tuple[float, int, dict[str, int]]:
    """Our time, the elements pushed, and memory: the baseline, after planning, and the peak."""
    baseline = rss_bytes()
    with RssPeak() as peak:
        started = time.perf_counter()
        plan = dispatch.plan_window(conn, settings, WINDOW, "UTC")
        planned = rss_bytes()
        dispatch.record_plan(conn, settings, plan, dag_run_id="bench")
        pushed = dispatch.push_window(conn, r, settings, WINDOW)
        elapsed = time.perf_counter() - started
    return elapsed, sum(pushed.values()), {"baseline": baseline, "planned": planned, "peak": peak.peak}


_FLOOR_CHUNK = 500_000


def _manifest_chunks(conn) -> Iterator[list[tuple]]:
    """The manifest as the floor writes it, read in primary-key order, one chunk at a time."""
    last: tuple[str, int] = ("", 0)
    while True:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT task_id, seq, element, target, marketplace, page, config_id FROM amazon_task_element "
                "WHERE task_id > %s OR (task_id = %s AND seq > %s) ORDER BY task_id, seq LIMIT %s",
                (last[0], *last, _FLOOR_CHUNK),
            )
            rows = [(t, n, element_digest(e), e, tg, mp, p, c) for t, n, e, tg, mp, p, c in cur.fetchall()]
        if not rows:
            return
        last = (rows[-1][0], rows[-1][1])
        yield rows


def floor(conn, r, settings: Settings) -> float:
    """The same manifest rows and members, prepared beforehand, written with no logic around them."""
    with tempfile.TemporaryFile() as prepared:
        for chunk in _manifest_chunks(conn):
            marshal.dump(chunk, prepared)
        with conn.cursor() as cur:
            cur.execute("TRUNCATE TABLE amazon_task_element")
        conn.commit()
        r.flushdb()
        prepared.seek(0)
        elapsed = 0.0
        while True:
            try:
                rows = marshal.load(prepared)  # noqa: S302 (a file this run just wrote); not timed: prepared beforehand
            except EOFError:
                break
            by_task: dict[str, list[str]] = {}  # a chunk may span tasks (--mixed): each set gets its own members
            for row in rows:
                by_task.setdefault(row[0], []).append(row[3])
            started = time.perf_counter()
            with conn.cursor() as cur:
                for batch in batched(rows, settings.dispatch.mysql_batch_size):
                    cur.executemany(
                        "INSERT INTO amazon_task_element (task_id, seq, element_hash, element, target, marketplace, "
                        "page, config_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        batch,
                    )
            conn.commit()
            pipe = r.pipeline(transaction=False)
            for key, members in by_task.items():
                for batch in batched(members, settings.dispatch.redis_batch_size):
                    pipe.sadd(key, *batch)
            pipe.execute()
            elapsed += time.perf_counter() - started
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keywords", type=int, default=20_000)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    parser.add_argument("--mixed", action="store_true", help="config rows of the three crawl objects in turn")
    args = parser.parse_args()

    conn, r = bench_mysql(), bench_redis()
    settings = Settings.load()
    ours_times, floor_times = [], []
    memory: dict[str, int] | None = None
    for _ in range(args.repeat):
        reset(conn, r)
        load_config(conn, args.keywords, args.pages, args.mixed)
        elapsed, pushed, rss = ours(conn, r, settings)
        memory = memory or rss  # the first run, before the floor's prepared rows have been in memory
        ours_times.append(elapsed)
        assert pushed == expected_elements(args.keywords, args.pages, args.mixed), pushed
        objects = ("search_result", "product_detail", "product_review") if args.mixed else ("search_result",)
        assert sum(r.scard(f"{o}_{WINDOW.epoch}_hourly") for o in objects) == pushed
        floor_times.append(floor(conn, r, settings))
    reset(conn, r)
    best_ours, best_floor = min(ours_times), min(floor_times)
    assert memory is not None
    elements = expected_elements(args.keywords, args.pages, args.mixed)
    mb = 1024 * 1024
    growth, planning = memory["peak"] - memory["baseline"], memory["planned"] - memory["baseline"]
    beyond = memory["peak"] - memory["planned"]  # what record and push add beyond the planned config
    result = {
        "benchmark": "dispatch",
        "mixed_objects": args.mixed,
        "elements": elements,
        "config_rows": args.keywords,
        "ours_seconds": round(best_ours, 3),
        "floor_seconds": round(best_floor, 3),
        "ratio": round(best_ours / best_floor, 2),
        "ours_runs": [round(t, 3) for t in ours_times],
        "floor_runs": [round(t, 3) for t in floor_times],
        "peak_rss_growth_mb_during_ours": round(growth / mb, 1),
        "rss_growth_mb_planning": round(planning / mb, 1),
        "rss_growth_mb_beyond_planning": round(beyond / mb, 1),
        "rss_growth_bytes_per_element": round(growth / elements, 1),
        "rss_growth_bytes_per_config_row": round(growth / args.keywords, 1),
        "baseline_rss_mb": round(memory["baseline"] / mb, 1),
    }
    print(
        f"dispatch {elements:>9,} elements: ours {best_ours:7.2f} s   floor {best_floor:7.2f} s   "
        f"ratio {result['ratio']:.2f}x   peak RSS growth {result['peak_rss_growth_mb_during_ours']} MB\n"
        f"  RSS: {result['rss_growth_mb_planning']} MB after planning {args.keywords:,} config rows "
        f"({planning / args.keywords:.0f} bytes a row), {result['rss_growth_mb_beyond_planning']} MB more at the "
        f"peak of record and push; {growth / elements:.1f} bytes an element in all "
        f"(baseline {result['baseline_rss_mb']} MB)"
    )
    write_result(f"dispatch-{'mixed-' if args.mixed else ''}{result['elements']}", result)


if __name__ == "__main__":
    main()
