"""Task-health benchmark: the 5-minute health check on 100k task rows, against its floor.

    python -m bench.health_bench [--tasks 100000] [--open 200] [--repeat 5] [--progress 0]
    python -m bench.health_bench --sizes 100000:200 1000000:2000

Ours: ``crawlops.health.check_tasks``, what the supervision DAG's task_health runs (status
sync through the dispatch core, timeouts, stalls, success rate, queue depth). Floor,
measured in the same run: the single indexed query that returns the open tasks (and, printed
beside it, the same query with its DATETIMEs parsed in C as ours parses its own). Most task
rows are closed, as in production; the open ones have Redis sets. ``--sizes`` runs several
sizes (task rows : open tasks) one after the other and prints the ratio for each. By default
nothing changed since the previous check (the sync writes nothing); ``--progress 1`` has a
worker take an element from every open task before each check, as in an active crawl, so
the sync records every task's progress.

Then where the time goes, from traced runs of the same check: every SQL statement (its
``execute``, which includes fetching and converting the rows, and commits) and every Redis
round trip (a command, or a pipeline), timed; Python is the rest. With more than one size,
the last column is how each part grew from the first size to the last: a part that stays
near 1x is per-run cost, one that grows with the open tasks is work per open task.
Two sizes also give a straight line per open task for ours and for the floor. Writes JSON
to bench/results/health-<tasks>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import time
from typing import Any

from bench.common import bench_mysql, bench_redis, write_result
from crawlops import health, queue
from crawlops.db import batched
from crawlops.model import UTC
from crawlops.settings import Settings
from crawlops.store.tasks import TASK_COLUMNS

SET_SIZE = 40  # elements still queued in each open task's set


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
                SET_SIZE if is_open else 0,
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
        pipe.sadd(row[0], *[f'{{"keyword":"k{j}","marketplace":"US","page":1}}' for j in range(SET_SIZE)])
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


def floor_text(conn) -> float:
    """The floor's query with its two DATETIMEs read as text and parsed by ``datetime.fromisoformat``
    (C), as ours reads its own: the floor without MySQLdb's Python DATETIME converter."""
    parse = dt.datetime.fromisoformat
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, task_type, task_status, element_count, remaining_count, CAST(started_at AS CHAR), "
            "CAST(progress_at AS CHAR) FROM amazon_task_information WHERE task_status IN ('Pending', 'In Progress')"
        )
        [(*head, s and parse(s), p and parse(p)) for *head, s, p in cur.fetchall()]
    return time.perf_counter() - started


def take(r, task_ids: list[str]) -> None:
    """Workers took one element from each of these tasks since the last check (not timed)."""
    if task_ids:
        pipe = r.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.spop(task_id)
        pipe.execute()


def ours(conn, r, settings, progressed: list[str] | None = None) -> float:
    take(r, progressed or [])
    started = time.perf_counter()
    report = health.check_tasks(conn, r, settings, dt.datetime.now(UTC))
    elapsed = time.perf_counter() - started
    assert report.open_tasks > 0 and not report.timed_out
    return elapsed


# --- tracing: every SQL statement and every Redis round trip of one check, timed ---------------

Calls = list[tuple[str, str, float]]  # (kind, label, seconds)


_TASKS_SELECT = "SELECT " + TASK_COLUMNS + " FROM amazon_task_information WHERE "  # noqa: S608 (matched, never run)
_HELPERS = ("/crawlops/queue.py", "/crawlops/db.py", "/crawlops/store/", "/bench/")


def _caller() -> str:
    """The step that made the call: the innermost frame of the package that is not a helper."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if "/crawlops/" in path and not any(h in path for h in _HELPERS):
            module = path.rsplit("/crawlops/", 1)[1].removesuffix(".py").replace("/", ".")
            return f"{module}.{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


def _sql_label(query: str) -> str:
    text = re.sub(r"\s+", " ", query).strip()
    if text.startswith(_TASKS_SELECT):
        text = "tasks WHERE " + text.removeprefix(_TASKS_SELECT)
    elif "GET_LOCK" in text or "RELEASE_LOCK" in text:
        text = text.split("(", 1)[0] + "(dispatch lock)"
    return f"{_caller()}: {text}"


class _TracedCursor:
    def __init__(self, cursor: Any, calls: Calls):
        self._cursor, self._calls = cursor, calls

    def __enter__(self) -> _TracedCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cursor.close()

    def execute(self, query: str, args: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return self._cursor.execute(query, args)
        finally:
            self._calls.append(("sql", _sql_label(query), time.perf_counter() - started))

    def executemany(self, query: str, args: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._cursor.executemany(query, args)
        finally:
            self._calls.append(("sql", _sql_label(query), time.perf_counter() - started))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Any:
        return iter(self._cursor)


class TracedConnection:
    """The connection, with each statement's ``execute`` (server, transfer, row conversion) and commit timed."""

    def __init__(self, conn: Any, calls: Calls):
        self._conn, self._calls = conn, calls

    def cursor(self, *args: Any) -> _TracedCursor:
        return _TracedCursor(self._conn.cursor(*args), self._calls)

    def commit(self) -> None:
        started = time.perf_counter()
        self._conn.commit()
        self._calls.append(("sql", f"{_caller()}: COMMIT", time.perf_counter() - started))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _redis_command(args: tuple[Any, ...]) -> str:
    name = str(args[0]).upper()
    if name in ("EVAL", "EVALSHA"):
        called = dict.fromkeys(re.findall(r"redis\.call\('(\w+)'", str(args[1])))
        return "EVAL " + (" of each key, ".join(called) if "SCARD" in called else "script: " + ", ".join(called))
    return name + (f" {args[1]}" if name == "INFO" and len(args) > 1 else "")


def traced_redis(calls: Calls) -> Any:
    """A client of the benchmark's Redis with each round trip (a command, or a pipeline's execute)
    timed into ``calls``; connected before it is handed out."""
    r = bench_redis()
    r.ping()
    command, pipeline = r.execute_command, r.pipeline

    def execute_command(*args: Any, **options: Any) -> Any:
        started = time.perf_counter()
        try:
            return command(*args, **options)
        finally:
            calls.append(("redis", f"{_caller()}: {_redis_command(args)}", time.perf_counter() - started))

    def make_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute

        def timed(*a: Any, **kw: Any) -> Any:
            names = "+".join(_redis_command(c[0]) for c in pipe.command_stack)
            started = time.perf_counter()
            try:
                return execute(*a, **kw)
            finally:
                calls.append(("redis", f"{_caller()}: pipeline {names}", time.perf_counter() - started))

        pipe.execute = timed
        return pipe

    r.execute_command, r.pipeline = execute_command, make_pipeline
    return r


def traced(conn, settings, repeat: int, progressed: list[str]) -> list[tuple[float, Calls]]:
    """``repeat`` traced checks: the total of each and its calls."""
    calls: Calls = []
    tconn, tr, plain = TracedConnection(conn, calls), traced_redis(calls), bench_redis()
    runs = []
    for _ in range(repeat):
        take(plain, progressed)
        calls.clear()
        runs.append((ours(tconn, tr, settings), list(calls)))
    return runs


def parts(runs: list[tuple[float, Calls]]) -> dict[tuple[str, str], tuple[int, float]]:
    """(kind, label) -> (calls a run, median seconds a run), plus ("python", "the rest"): the
    total less every traced call."""
    per_run: list[dict[tuple[str, str], tuple[int, float]]] = []
    for total, calls in runs:
        summed: dict[tuple[str, str], tuple[int, float]] = {}
        for kind, label, seconds in calls:
            count, before = summed.get((kind, label), (0, 0.0))
            summed[(kind, label)] = (count + 1, before + seconds)
        summed[("python", "the rest")] = (1, total - sum(seconds for _, _, seconds in calls))
        per_run.append(summed)
    keys = list(dict.fromkeys(key for run in per_run for key in run))
    return {
        key: (
            max(run.get(key, (0, 0.0))[0] for run in per_run),
            statistics.median(run.get(key, (0, 0.0))[1] for run in per_run),
        )
        for key in keys
    }


# --- one size, then the tables ------------------------------------------------------------------


def run_size(tasks: int, open_tasks: int, repeat: int, settings: Settings, progress: float = 0.0) -> dict[str, Any]:
    conn, r = bench_mysql(), bench_redis()
    started = time.perf_counter()
    load(conn, r, tasks, open_tasks)
    loaded = time.perf_counter() - started
    with conn.cursor() as cur:
        cur.execute("SELECT task_id FROM amazon_task_information WHERE task_status = 'In Progress' ORDER BY task_id")
        progressed = [task_id for (task_id,) in cur.fetchall()][: round(open_tasks * progress)]
    ours(conn, r, settings)  # warm-up: the first sync records the sets' sizes
    ours_times = [ours(conn, r, settings, progressed) for _ in range(repeat)]
    floor_times = [floor(conn) for _ in range(repeat)]
    text_times = [floor_text(conn) for _ in range(repeat)]
    runs = traced(conn, settings, repeat, progressed)
    best_ours, best_floor = min(ours_times), min(floor_times)
    result = {
        "benchmark": "health",
        "tasks": tasks,
        "open_tasks": open_tasks,
        "progressed_tasks": len(progressed),
        "repeat": repeat,
        "ours_seconds": round(best_ours, 5),
        "floor_seconds": round(best_floor, 5),
        "ratio": round(best_ours / best_floor, 2),
        "floor_text_seconds": round(min(text_times), 5),
        "ratio_to_floor_text": round(best_ours / min(text_times), 2),
        "ours_median_seconds": round(statistics.median(ours_times), 5),
        "floor_median_seconds": round(statistics.median(floor_times), 5),
        "traced_median_seconds": round(statistics.median(total for total, _ in runs), 5),
        "sql_statements": max(sum(1 for c in calls if c[0] == "sql") for _, calls in runs),
        "redis_round_trips": max(sum(1 for c in calls if c[0] == "redis") for _, calls in runs),
        "breakdown": [
            {"kind": kind, "part": label, "count": count, "median_seconds": round(seconds, 6)}
            for (kind, label), (count, seconds) in parts(runs).items()
        ],
        "load_seconds": round(loaded, 1),
    }
    print(
        f"health {tasks:>11,} tasks ({open_tasks:,} open{f', {len(progressed):,} progressed' if progressed else ''}): "
        f"ours {best_ours * 1000:7.1f} ms   floor {best_floor * 1000:7.1f} ms   ratio {result['ratio']:.2f}x   "
        f"(floor with DATETIMEs parsed in C {min(text_times) * 1000:.1f} ms: {result['ratio_to_floor_text']:.2f}x)",
        flush=True,
    )
    write_result(f"health-{tasks}" + (f"-progress-{len(progressed)}" if progressed else ""), result)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE TABLE amazon_task_information")
    conn.commit()
    r.flushdb()
    conn.close()
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def print_tables(results: list[dict[str, Any]]) -> None:
    sizes = [f"{r['tasks']:,}/{r['open_tasks']:,}" for r in results]
    width = max(10, *(len(s) for s in sizes))
    grows = len(results) > 1
    print("\nratio as the tasks grow (best of each; ours - floor: what the check adds to the query)")
    print(f"{'tasks/open':>{width}}  {'ours ms':>8}  {'floor ms':>8}  {'ratio':>6}  {'ours-floor':>10}")
    for size, r in zip(sizes, results, strict=True):
        ours_ms, floor_ms, over = (
            _ms(r["ours_seconds"]),
            _ms(r["floor_seconds"]),
            _ms(r["ours_seconds"] - r["floor_seconds"]),
        )
        print(f"{size:>{width}}  {ours_ms:>8}  {floor_ms:>8}  {r['ratio']:5.2f}x  {over:>10}")

    table: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for i, r in enumerate(results):
        for entry in r["breakdown"]:
            row = table.setdefault((entry["kind"], entry["part"]), [(0, 0.0)] * len(results))
            row[i] = (entry["count"], entry["median_seconds"])
    print(
        f"\nwhere the time goes, ms: median of {results[0]['repeat']} traced checks (SQL: each statement's execute, "
        "which fetches and converts its rows, and commits; Redis: each round trip; Python: the rest)"
    )
    header = "".join(f"  {s:>{width}}" for s in sizes) + ("  growth" if grows else "")
    print(f"{'kind':6} {'part (the step that made it: the call)':72} {'n':>3}{header}")

    def line(kind: str, label: str, count: str, values: list[float]) -> None:
        growth = f"  {values[-1] / values[0]:5.1f}x" if grows and values[0] > 0 else ""
        cells = "".join(f"  {_ms(v):>{width}}" for v in values)
        print(f"{kind:6} {label[:72]:72} {count:>3}{cells}{growth}")

    order = {"sql": 0, "redis": 1, "python": 2}
    for (kind, label), row in sorted(table.items(), key=lambda item: order[item[0][0]]):
        line(kind, label, "/".join(sorted({str(c) for c, _ in row})), [s for _, s in row])
    print("-" * (83 + len(header)))
    for kind, name in (("sql", "SQL statements"), ("redis", "Redis round trips")):
        values = [sum(e["median_seconds"] for e in r["breakdown"] if e["kind"] == kind) for r in results]
        counts = {str(r["sql_statements" if kind == "sql" else "redis_round_trips"]) for r in results}
        line(kind, f"all {name}", "/".join(sorted(counts)), values)
    line("total", "traced check (the tracing adds a little)", "", [r["traced_median_seconds"] for r in results])
    line("total", "untraced check", "", [r["ours_median_seconds"] for r in results])
    line("floor", "the open-tasks query alone", "", [r["floor_median_seconds"] for r in results])
    if grows:
        first, last = results[0], results[-1]
        per_run = [k for k in table if table[k][-1][1] < 2 * table[k][0][1]]
        fixed = [sum(table[k][i][1] for k in per_run) for i in (0, -1)]
        growing = [sum(row[i][1] for k, row in table.items() if k not in per_run) for i in (0, -1)]
        print(
            f"\nfrom {sizes[0]} to {sizes[-1]}, the {len(per_run)} parts that grew less than 2x (per-run cost): "
            f"{_ms(fixed[0])} -> {_ms(fixed[1])} ms; the {len(table) - len(per_run)} that grew with the open tasks: "
            f"{_ms(growing[0])} -> {_ms(growing[1])} ms"
        )
        print("a straight line through the two sizes (best of each), in the open tasks n:")
        opened = last["open_tasks"] - first["open_tasks"]
        for name, key in (("ours ", "ours_seconds"), ("floor", "floor_seconds")):
            per_task = (last[key] - first[key]) / opened
            fixed_part = first[key] - per_task * first["open_tasks"]
            print(f"  {name} = {fixed_part * 1000:6.2f} ms + {per_task * 1e6:5.2f} us x n")
        slope = (last["ours_seconds"] - first["ours_seconds"]) / (last["floor_seconds"] - first["floor_seconds"])
        print(f"  the ratio tends to {slope:.2f}x as the open tasks grow (the ratio of the per-task terms)")


def _size(text: str) -> tuple[int, int]:
    tasks, _, open_tasks = text.partition(":")
    return int(tasks), int(open_tasks or max(1, int(tasks) // 500))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--open", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--progress",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="this share of the open tasks had an element taken by a worker before each check, so the sync "
        "records their progress (default 0: nothing changed since the last check)",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=_size,
        metavar="TASKS[:OPEN]",
        help="several sizes in one run, e.g. 100000:200 1000000:2000 (instead of --tasks/--open; OPEN defaults "
        "to TASKS/500)",
    )
    args = parser.parse_args()
    settings = Settings.load()
    sizes = args.sizes or [(args.tasks, args.open)]
    if args.progress and 2 * args.repeat + 1 >= SET_SIZE:
        parser.error(f"--progress takes an element a check: at most {(SET_SIZE - 2) // 2} repeats")
    results = [run_size(tasks, open_tasks, args.repeat, settings, args.progress) for tasks, open_tasks in sizes]
    print_tables(results)


if __name__ == "__main__":
    main()
