"""Scale benchmark: what one day of the element manifest costs to delete, and what the
queues and tables hold per element (issue 16, items 2 and 4).

    python -m bench.scale_bench                                  # 1M manifest rows, about a minute
    python -m bench.scale_bench --rows 20000000 --also-tenth \
        --redis-elements 1000000 --result-rows 1000000           # make bench-scale, 8-13 minutes

A. Deleting one day of a large manifest. Two copies of ``amazon_task_element`` are filled
   with the same synthetic rows, ``--rows`` spread evenly over ``--days`` days of hourly
   tasks (``search_result_<epoch>_hourly``, seq 1..n, elements in the package's own text
   form and digest), written one task per statement with INSERT ... SELECT from MariaDB's
   ``seq_1_to_N`` table, the two copies alternating day by day:

   - plain: the current schema, exactly (CREATE TABLE ... LIKE the migrated table). A day
     is found the way retention finds it, through the task rows' ``interval_start``, and
     deleted by primary-key range, at most ``--batch`` rows a transaction; a second day is
     deleted by ``task_id IN (...) ORDER BY task_id, seq LIMIT n`` (no seq bookkeeping).
   - partitioned: the same columns plus ``interval_start`` (the task's), RANGE COLUMNS
     partitioned by day. MariaDB wants the partitioning column in every unique key, so the
     primary key becomes (task_id, seq, interval_start) and uq_task_element becomes
     (task_id, element_hash, interval_start). A day goes with ALTER TABLE ... DROP PARTITION.

   Measured in the same run on the same rows: (a) the batched DELETE (seconds, rows/s, the
   longest batch = the longest any lock is held, and how long InnoDB's purge then needs),
   (b) DROP PARTITION, (c) the write path: every day's fill of each copy, and one task's rows
   written as ``record_task`` writes them (executemany batches, one commit), (d) lookups by
   task id as the package makes them, on the plain copy and on the partitioned one with and
   without the task's ``interval_start`` (without it every partition is probed).
   Also timed: splitting the next day's partition off an empty pmax, and the migration's copy
   (two days of the plain copy into a new partitioned table, joined to the task rows for
   interval_start). ``--also-tenth`` first runs A at a tenth of ``--rows``, so the per-day
   figures can be extrapolated to 100M rows, which take 30-45 minutes to fill on a 2-core
   machine (and some 55 GB for the two copies).

B. Capacity. Redis bytes per queued element: ``--redis-elements`` real elements recorded and
   pushed by the package's dispatch (plan_window, record_plan, push_window) into Redis db 6,
   read with MEMORY USAGE (and INFO used_memory before and after). MySQL bytes per row from
   information_schema.TABLES (data_length + index_length, after ANALYZE TABLE): the manifest
   (the plain copy of A, and the real table after that dispatch) and ``amazon_search_result``
   (``--result-rows`` synthetic rows). From those: rows and disk per day at 1M and 10M
   elements a day, and what retention holds (manifest 14 days, results 30 as an example).

Uses only the database ``crawlops_scale`` (``CRAWLOPS_SCALE_MYSQL_URL``) and Redis db 6
(``CRAWLOPS_SCALE_REDIS_DB``); drops its big tables at the end unless ``--keep``. Prints
markdown tables and writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import bench_mysql, bench_redis, write_result
from crawlops import dispatch
from crawlops.db import Connection, batched
from crawlops.model import UTC, element_digest, hour_window_starting
from crawlops.settings import Settings

SCALE_MYSQL_URL = "mysql://crawlops:crawlops@127.0.0.1:3306/crawlops_scale"
SCALE_REDIS_DB = 6
FIRST_DAY = dt.datetime(2026, 10, 1)  # naive UTC, as the DATETIME columns hold it
PAGES = 5  # elements per keyword, as a search_result config row with max_pages 5 gives
TASKS = "scale_task"
PLAIN = "scale_manifest_plain"
PART = "scale_manifest_part"
MIGRATED = "scale_manifest_migrated"  # the migration's copy, measured on MIGRATION_DAYS days
MIGRATION_DAYS = 2
RESULT_TITLE_CHARS = 100  # an Amazon search result title is typically 80-200 characters
MANIFEST_DAYS, RESULTS_DAYS = 14, 30
LOOKUP_TASKS, LOOKUP_PASSES = 30, 3

# One task's manifest rows from a sequence table: the element text is the package's canonical
# JSON of {"keyword", "marketplace", "page"} and element_hash its md5, as planning makes them.
_KEYWORD = f"CONCAT('bench keyword ', LPAD((seq - 1) DIV {PAGES} + 1, 7, '0'))"
_FILL = (
    "INSERT INTO {table} (task_id, seq, element_hash, element, target, marketplace, page, config_id{extra}) "  # noqa: S608 - constant table names
    "SELECT %s, seq, UNHEX(MD5(element)), element, target, 'US', page, config_id{extra_value} FROM ("
    "SELECT seq, " + _KEYWORD + " AS target, (seq - 1) MOD {pages} + 1 AS page, "
    "(seq - 1) DIV {pages} + 1 AS config_id, "
    'CONCAT(\'{{"keyword":"\', ' + _KEYWORD + ', \'","marketplace":"US","page":\', (seq - 1) MOD {pages} + 1, \'}}\') '
    "AS element FROM seq_1_to_{n}) s"
)


def element_text(seq: int) -> str:
    """The element the fill writes at ``seq`` (the same text planning builds)."""
    return (
        f'{{"keyword":"bench keyword {(seq - 1) // PAGES + 1:07d}","marketplace":"US","page":{(seq - 1) % PAGES + 1}}}'
    )


@dataclasses.dataclass(frozen=True)
class Task:
    task_id: str
    start: dt.datetime  # interval_start

    @property
    def day(self) -> int:
        return (self.start - FIRST_DAY).days


def hourly_tasks(days: int) -> list[Task]:
    starts = [FIRST_DAY + dt.timedelta(hours=h) for h in range(days * 24)]
    return [Task(f"search_result_{int(s.replace(tzinfo=UTC).timestamp())}_hourly", s) for s in starts]


def q(conn: Connection, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, tuple(args))
        rows = list(cur.fetchall() or ())
    conn.commit()
    return rows


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def history_length(conn: Connection) -> int:
    return int(q(conn, "SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'")[0][1])


def wait_for_purge(conn: Connection, baseline: int, timeout: float = 60.0) -> tuple[int, float]:
    """InnoDB's purge of what a delete left (delete-marked records, undo): the history list
    length (committed transactions not purged yet) right after, and the seconds until it is
    back to ``baseline`` (capped by ``timeout``; the server is shared, other work can hold it up)."""
    after = history_length(conn)
    started = time.perf_counter()
    while history_length(conn) > baseline + 5 and time.perf_counter() - started < timeout:
        time.sleep(0.5)
    return after, time.perf_counter() - started


def table_bytes(conn: Connection, table: str) -> dict[str, int]:
    q(conn, f"ANALYZE TABLE {table}")
    data, index, free = q(
        conn,
        "SELECT data_length, index_length, data_free FROM information_schema.TABLES "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        (table,),
    )[0]
    return {"data": int(data), "index": int(index), "free": int(free), "total": int(data) + int(index)}


# --- A. one day of the manifest: batched DELETE vs DROP PARTITION --------------------------------


def create_tables(conn: Connection, days: int) -> None:
    for table in (PLAIN, PART, MIGRATED, TASKS):
        q(conn, f"DROP TABLE IF EXISTS {table}")
    q(conn, f"CREATE TABLE {TASKS} LIKE amazon_task_information")
    q(conn, f"CREATE TABLE {PLAIN} LIKE amazon_task_element")  # the current schema, exactly
    q(conn, f"CREATE TABLE {PART} LIKE amazon_task_element")
    bounds = ", ".join(
        f"PARTITION p{(FIRST_DAY + dt.timedelta(days=d)):%Y%m%d} "
        f"VALUES LESS THAN ('{(FIRST_DAY + dt.timedelta(days=d + 1)):%Y-%m-%d}')"
        for d in range(days)
    )
    q(
        conn,
        f"ALTER TABLE {PART} ADD COLUMN interval_start DATETIME NOT NULL AFTER task_id, "
        "DROP PRIMARY KEY, ADD PRIMARY KEY (task_id, seq, interval_start), DROP KEY uq_task_element, "
        "ADD UNIQUE KEY uq_task_element (task_id, element_hash, interval_start) "
        f"PARTITION BY RANGE COLUMNS (interval_start) ({bounds}, PARTITION pmax VALUES LESS THAN (MAXVALUE))",
    )


def fill(conn: Connection, tasks: Sequence[Task], per_task: int) -> dict[str, list[float]]:
    """Every task's rows into both copies, one statement and commit per task (as record_task
    commits a task), the copies alternating day by day; seconds per day and copy."""
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {TASKS} (task_id, task_type, root_task_id, frequency, task_status, element_count, "  # noqa: S608 - constant table names
            "interval_start, interval_end, settled_at) VALUES (%s, 'search_result', %s, 'hourly', 'Completed', "
            "%s, %s, %s, %s)",
            [
                (
                    t.task_id,
                    t.task_id,
                    per_task,
                    t.start,
                    t.start + dt.timedelta(hours=1),
                    t.start + dt.timedelta(hours=2),
                )
                for t in tasks
            ],
        )
    conn.commit()
    plain_sql = _FILL.format(table=PLAIN, extra="", extra_value="", pages=PAGES, n=per_task)
    part_sql = _FILL.format(table=PART, extra=", interval_start", extra_value=", %s", pages=PAGES, n=per_task)
    seconds: dict[str, list[float]] = {PLAIN: [], PART: []}
    days = sorted({t.day for t in tasks})
    for day in days:
        day_tasks = [t for t in tasks if t.day == day]
        for table, sql, with_start in ((PLAIN, plain_sql, False), (PART, part_sql, True)):
            started = time.perf_counter()
            for t in day_tasks:
                q(conn, sql, (t.task_id, t.start) if with_start else (t.task_id,))
            seconds[table].append(time.perf_counter() - started)
        if day % 5 == 4 or day == days[-1]:
            print(f"  filled day {day + 1}/{len(days)}: {len(day_tasks) * per_task:,} rows into each copy", flush=True)
    return seconds


def app_write(conn: Connection, per_task: int, start: dt.datetime, batch_size: int) -> dict[str, float]:
    """One more task's rows written as record_task writes a manifest (executemany batches, one
    commit), into each copy, twice alternating; the best seconds per copy."""
    best: dict[str, float] = {}
    for attempt in range(2):
        task_id = f"search_result_{int(start.replace(tzinfo=UTC).timestamp()) + 60 + attempt}_hourly"
        rows = [
            (
                task_id,
                seq,
                element_digest(text),
                text,
                f"bench keyword {(seq - 1) // PAGES + 1:07d}",
                "US",
                (seq - 1) % PAGES + 1,
                (seq - 1) // PAGES + 1,
            )
            for seq in range(1, per_task + 1)
            for text in (element_text(seq),)
        ]
        for table in (PLAIN, PART):
            extra, value = (", interval_start", ", %s") if table == PART else ("", "")
            sql = (
                f"INSERT INTO {table} (task_id, seq, element_hash, element, target, marketplace, page, config_id"  # noqa: S608 - constant table names
                f"{extra}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s{value})"
            )
            started = time.perf_counter()
            with conn.cursor() as cur:
                for batch in batched(rows, batch_size):
                    cur.executemany(sql, [(*r, start) for r in batch] if table == PART else batch)
            conn.commit()
            best[table] = min(best.get(table, float("inf")), time.perf_counter() - started)
    return best


LOOKUPS = {
    # split_known: is this element in the task's manifest (the unique key)
    "element by (task_id, element_hash)": "SELECT seq FROM {table} WHERE task_id = %s AND element_hash = %s{pruned}",
    # _next_seq, before adding elements to a task
    "next seq: MAX(seq) by task_id": "SELECT COALESCE(MAX(seq), 0) + 1 FROM {table} WHERE task_id = %s{pruned}",
    # stream_elements: a task's manifest in seq order, its first batch
    "first 1,000 elements by task_id, in seq order": (
        "SELECT element FROM {table} WHERE task_id = %s{pruned} ORDER BY seq LIMIT 1000"
    ),
}


def lookups(conn: Connection, tasks: Sequence[Task], per_task: int, rng: random.Random) -> dict[str, dict[str, Any]]:
    """Median milliseconds of each lookup over LOOKUP_TASKS tasks (one warm-up pass, then
    LOOKUP_PASSES timed passes), on the plain copy, on the partitioned one without the task's
    interval_start (every partition probed) and with it (one partition)."""
    sample = rng.sample(list(tasks), min(LOOKUP_TASKS, len(tasks)))
    seqs = [rng.randint(1, per_task) for _ in sample]
    variants = {
        "plain": (PLAIN, ""),
        "partitioned, by task_id only": (PART, ""),
        "partitioned, + interval_start": (PART, " AND interval_start = %s"),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, template in LOOKUPS.items():
        times: dict[str, list[float]] = {v: [] for v in variants}
        partitions: dict[str, int | None] = {}
        for timed_pass in range(LOOKUP_PASSES + 1):
            for task, seq in zip(sample, seqs, strict=True):
                for variant, (table, pruned) in variants.items():
                    sql = template.format(table=table, pruned=pruned)
                    args: list[Any] = [task.task_id]
                    if "element_hash" in sql:
                        args.append(element_digest(element_text(seq)))
                    if pruned:
                        args.append(task.start)
                    started = time.perf_counter()
                    q(conn, sql, args)
                    elapsed = time.perf_counter() - started
                    if timed_pass:
                        times[variant].append(elapsed)
        for variant, (table, pruned) in variants.items():
            sql = template.format(table=table, pruned=pruned)
            args = [sample[0].task_id, *([element_digest(element_text(1))] if "element_hash" in sql else [])]
            with conn.cursor() as cur:
                cur.execute("EXPLAIN PARTITIONS " + sql, (*args, *([sample[0].start] if pruned else [])))
                columns = [d[0] for d in cur.description]
                found = cur.fetchone()
            conn.commit()
            listed = dict(zip(columns, found, strict=True)).get("partitions")
            # None: EXPLAIN names no partition (MAX() "optimized away": read from each partition's index)
            partitions[variant] = len(str(listed).split(",")) if listed else (1 if table == PLAIN else None)
        out[name] = {
            v: {"median_ms": round(statistics.median(t) * 1000, 3), "partitions_read": partitions[v]}
            for v, t in times.items()
        }
    return out


def day_tasks(conn: Connection, day: int) -> list[str]:
    """The day's task ids, as retention finds them: task rows by interval_start (idx_task_interval)."""
    start = FIRST_DAY + dt.timedelta(days=day)
    rows = q(
        conn,
        f"SELECT task_id FROM {TASKS} WHERE interval_start >= %s AND interval_start < %s ORDER BY task_id",  # noqa: S608 - constant table names
        (start, start + dt.timedelta(days=1)),
    )
    return [str(r[0]) for r in rows]


def delete_by_pk_range(conn: Connection, day: int, batch: int) -> list[tuple[int, float]]:
    """The day's manifest rows, task by task, in primary-key ranges of ``batch`` seqs, each
    DELETE its own transaction; (rows, seconds including the commit) per batch."""
    batches = []
    for task_id in day_tasks(conn, day):
        (top,) = q(conn, f"SELECT COALESCE(MAX(seq), 0) FROM {PLAIN} WHERE task_id = %s", (task_id,))[0]  # noqa: S608 - constant table names
        for low in range(0, int(top), batch):
            started = time.perf_counter()
            with conn.cursor() as cur:
                cur.execute(
                    f"DELETE FROM {PLAIN} WHERE task_id = %s AND seq > %s AND seq <= %s",  # noqa: S608 - constants
                    (task_id, low, low + batch),
                )
                rows = cur.rowcount
            conn.commit()
            batches.append((rows, time.perf_counter() - started))
    return batches


def delete_by_limit(conn: Connection, day: int, batch: int) -> list[tuple[int, float]]:
    """The day's manifest rows by ``task_id IN (the day's tasks) ORDER BY task_id, seq LIMIT batch``
    until a batch comes back short."""
    ids = day_tasks(conn, day)
    sql = f"DELETE FROM {PLAIN} WHERE task_id IN ({', '.join(['%s'] * len(ids))}) ORDER BY task_id, seq LIMIT %s"  # noqa: S608 - constant table names
    batches = []
    while True:
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(sql, (*ids, batch))
            rows = cur.rowcount
        conn.commit()
        batches.append((rows, time.perf_counter() - started))
        if rows < batch:
            return batches


def delete_summary(batches: Sequence[tuple[int, float]], purge: tuple[int, float]) -> dict[str, Any]:
    rows, seconds = sum(r for r, _ in batches), sum(s for _, s in batches)
    return {
        "rows": rows,
        "batches": len(batches),
        "seconds": round(seconds, 3),
        "rows_per_second": round(rows / seconds) if seconds else None,
        "longest_batch_seconds": round(max(s for _, s in batches), 4),
        "median_batch_seconds": round(statistics.median(s for _, s in batches), 4),
        "history_length_after": purge[0],
        "purge_seconds": round(purge[1], 1),
    }


def drop_partition(conn: Connection, day: int) -> dict[str, Any]:
    name = f"p{(FIRST_DAY + dt.timedelta(days=day)):%Y%m%d}"
    baseline = history_length(conn)
    seconds = timed(lambda: q(conn, f"ALTER TABLE {PART} DROP PARTITION {name}"))
    return {"partition": name, "seconds": round(seconds, 4), "history_length_after": history_length(conn) - baseline}


def add_partition(conn: Connection, days: int) -> dict[str, Any]:
    """The partition for the next day split off the empty pmax, as a daily maintenance step would."""
    day = FIRST_DAY + dt.timedelta(days=days)
    sql = (
        f"ALTER TABLE {PART} REORGANIZE PARTITION pmax INTO (PARTITION p{day:%Y%m%d} VALUES LESS THAN "
        f"('{day + dt.timedelta(days=1):%Y-%m-%d}'), PARTITION pmax VALUES LESS THAN (MAXVALUE))"
    )
    return {"partition": f"p{day:%Y%m%d}", "seconds": round(timed(lambda: q(conn, sql)), 4)}


_COLUMNS = "task_id, seq, element_hash, element, target, marketplace, page, config_id, empty_at, recrawl_at"


def migration_copy(conn: Connection, tasks: Sequence[Task]) -> dict[str, Any]:
    """What moving an existing manifest to partitions costs per row: ``tasks``' rows copied from
    the plain table into an empty partitioned one, each row given its task's interval_start by
    joining the task rows, one statement and commit per task (so the copy can stop and resume)."""
    q(conn, f"DROP TABLE IF EXISTS {MIGRATED}")
    q(conn, f"CREATE TABLE {MIGRATED} LIKE {PART}")
    e_columns = ", ".join(f"e.{c.strip()}" for c in _COLUMNS.split(","))
    sql = (
        f"INSERT INTO {MIGRATED} ({_COLUMNS}, interval_start) SELECT {e_columns}, t.interval_start "  # noqa: S608 - constants
        f"FROM {PLAIN} e JOIN {TASKS} t ON t.task_id = e.task_id WHERE e.task_id = %s"
    )
    rows = 0
    started = time.perf_counter()
    for task in tasks:
        with conn.cursor() as cur:
            cur.execute(sql, (task.task_id,))
            rows += cur.rowcount
        conn.commit()
    seconds = time.perf_counter() - started
    q(conn, f"DROP TABLE {MIGRATED}")
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds)}


def measure_day_delete(conn: Connection, rows: int, days: int, batch: int, seed: int) -> dict[str, Any]:
    per_task = rows // (days * 24)
    tasks = hourly_tasks(days)
    print(f"A at {per_task * len(tasks):,} rows over {days} days ({per_task:,} per hourly task)", flush=True)
    create_tables(conn, days)
    started = time.perf_counter()
    fill_seconds = fill(conn, tasks, per_task)
    filled_in = time.perf_counter() - started
    settings = Settings.load()
    write = app_write(conn, per_task, tasks[-1].start, settings.dispatch.mysql_batch_size)
    extra_rows = 2 * per_task  # app_write's two tasks, in each copy
    sizes = {table: table_bytes(conn, table) for table in (PLAIN, PART)}
    print("  lookups", flush=True)
    looked = lookups(conn, [t for t in tasks if t.day >= 2], per_task, random.Random(seed))  # noqa: S311 - a sample
    day_rows = per_task * 24
    print("  migration copy", flush=True)
    migration = migration_copy(conn, [t for t in tasks if 2 <= t.day < 2 + MIGRATION_DAYS])
    print("  deletes", flush=True)
    baseline = history_length(conn)
    by_range = delete_by_pk_range(conn, 0, batch)
    by_range_purge = wait_for_purge(conn, baseline)
    baseline = history_length(conn)
    by_limit = delete_by_limit(conn, 1, batch)
    by_limit_purge = wait_for_purge(conn, baseline)
    plain_after = table_bytes(conn, PLAIN)
    drops = [drop_partition(conn, 0), drop_partition(conn, 1)]
    added = add_partition(conn, days)
    part_after = table_bytes(conn, PART)
    for table in (PLAIN, PART):
        (left,) = q(
            conn,
            f"SELECT COUNT(*) FROM {table} WHERE task_id IN ({', '.join(['%s'] * 48)})",  # noqa: S608 - constant table names
            [t.task_id for t in tasks[:48]],
        )[0]
        assert left == 0, (table, left)
    return {
        "rows": per_task * len(tasks) + extra_rows,
        "days": days,
        "rows_per_day": day_rows,
        "rows_per_task": per_task,
        "batch": batch,
        "fill_seconds": round(filled_in, 1),
        "insert_day_seconds": {
            "plain_median": round(statistics.median(fill_seconds[PLAIN]), 3),
            "partitioned_median": round(statistics.median(fill_seconds[PART]), 3),
            "plain_last": round(fill_seconds[PLAIN][-1], 3),
            "partitioned_last": round(fill_seconds[PART][-1], 3),
            "plain_runs": [round(s, 3) for s in fill_seconds[PLAIN]],
            "partitioned_runs": [round(s, 3) for s in fill_seconds[PART]],
        },
        "insert_task_executemany_seconds": {
            "rows": per_task,
            "plain": round(write[PLAIN], 3),
            "partitioned": round(write[PART], 3),
        },
        "bytes": {"plain": sizes[PLAIN], "partitioned": sizes[PART]},
        "bytes_after_delete": {"plain": plain_after, "partitioned": part_after},
        "lookups": looked,
        "delete_by_pk_range": delete_summary(by_range, by_range_purge),
        "delete_by_limit": delete_summary(by_limit, by_limit_purge),
        "drop_partition": drops,
        "add_partition": added,
        "migration_copy": migration,
    }


def drop_tables(conn: Connection) -> None:
    for table in (PLAIN, PART, MIGRATED, TASKS):
        q(conn, f"DROP TABLE IF EXISTS {table}")


# --- B. capacity ----------------------------------------------------------------------------------


def redis_capacity(conn: Connection, elements: int) -> dict[str, Any]:
    """``elements`` real elements through the package's dispatch into MySQL and Redis db 6."""
    r = bench_redis(SCALE_REDIS_DB, "CRAWLOPS_SCALE_REDIS_DB")
    for table in ("amazon_crawl_config", "amazon_task_information", "amazon_task_element"):
        q(conn, f"TRUNCATE TABLE {table}")
    r.flushdb()
    keywords = elements // PAGES
    with conn.cursor() as cur:
        for batch in batched(range(keywords), 10_000):
            cur.executemany(
                "INSERT INTO amazon_crawl_config (crawl_object, target, marketplace, frequency, max_pages) "
                "VALUES ('search_result', %s, 'US', 'hourly', %s)",
                [(f"bench keyword {i:07d}", PAGES) for i in batch],
            )
    conn.commit()
    settings = Settings.load()
    window = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
    plan = dispatch.plan_window(conn, settings, window, "UTC")
    dispatch.record_plan(conn, settings, plan, dag_run_id="scale-bench")
    used_before = int(r.info("memory")["used_memory"])
    pushed = sum(dispatch.push_window(conn, r, settings, window).values())
    used_after = int(r.info("memory")["used_memory"])
    key = f"search_result_{window.epoch}_hourly"
    assert pushed == keywords * PAGES == r.scard(key), (pushed, r.scard(key))
    set_bytes = int(r.memory_usage(key, samples=0))
    member = element_text(1)
    encoding = r.object("encoding", key)
    manifest = table_bytes(conn, "amazon_task_element")
    r.flushdb()
    for table in ("amazon_crawl_config", "amazon_task_information", "amazon_task_element"):
        q(conn, f"TRUNCATE TABLE {table}")
    return {
        "elements": pushed,
        "member_bytes": len(member.encode()),
        "set_memory_usage_bytes": set_bytes,
        "bytes_per_element": round(set_bytes / pushed, 1),
        "used_memory_delta_per_element": round((used_after - used_before) / pushed, 1),
        "encoding": encoding.decode() if isinstance(encoding, bytes) else str(encoding),
        "manifest_bytes": manifest,
        "manifest_bytes_per_row": round(manifest["total"] / pushed, 1),
    }


def results_capacity(conn: Connection, rows: int, per_element: int) -> dict[str, Any]:
    """``rows`` synthetic result rows (``per_element`` a page, spread over hours) in the real
    amazon_search_result table: bytes per row with its four secondary indexes."""
    q(conn, "TRUNCATE TABLE amazon_search_result")
    per_hour = 100_000
    for hour, low in enumerate(range(0, rows, per_hour)):
        n = min(per_hour, rows - low)
        start = FIRST_DAY + dt.timedelta(hours=hour)
        task_id = f"search_result_{int(start.replace(tzinfo=UTC).timestamp())}_hourly"
        element = f"(seq - 1) DIV {per_element}"
        keyword = f"CONCAT('bench keyword ', LPAD(({element}) DIV {PAGES} + 1, 7, '0'))"
        q(
            conn,
            "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, title, price, currency, rating, "  # noqa: S608 - constant table names
            f"review_count, page, position, create_time) SELECT %s, {keyword}, 'US', "
            "CONCAT('B0', UPPER(LEFT(MD5(seq), 8))), "
            f"RPAD(CONCAT({keyword}, ' result ', seq), {RESULT_TITLE_CHARS}, ' lorem ipsum dolor sit amet'), "
            "ROUND(5 + (seq MOD 9000) / 100, 2), 'USD', 3.5 + (seq MOD 15) / 10, seq MOD 50000, "
            f"({element}) MOD {PAGES} + 1, (seq - 1) MOD {per_element} + 1, "
            f"%s + INTERVAL (seq MOD 3600) SECOND FROM seq_1_to_{n}",
            (task_id, start),
        )
    size = table_bytes(conn, "amazon_search_result")
    q(conn, "TRUNCATE TABLE amazon_search_result")
    return {"rows": rows, "bytes": size, "bytes_per_row": round(size["total"] / rows, 1), "per_element": per_element}


def capacity_table(
    redis_per_element: float, manifest_row: float, result_row: float, per_element: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for per_day in (1_000_000, 10_000_000):
        out.append(
            {
                "what": "manifest (amazon_task_element)",
                "elements_per_day": per_day,
                "rows_per_day": per_day,
                "bytes_per_day": per_day * manifest_row,
                "retention_days": MANIFEST_DAYS,
                "held_bytes": per_day * manifest_row * MANIFEST_DAYS,
            }
        )
        rows = per_day * per_element
        out.append(
            {
                "what": f"results (amazon_search_result, {per_element} rows/element)",
                "elements_per_day": per_day,
                "rows_per_day": rows,
                "bytes_per_day": rows * result_row,
                "retention_days": RESULTS_DAYS,
                "held_bytes": rows * result_row * RESULTS_DAYS,
            }
        )
        out.append(
            {
                "what": "Redis: one hour queued / a whole day queued",
                "elements_per_day": per_day,
                "rows_per_day": per_day,
                "bytes_per_day": per_day * redis_per_element,
                "retention_days": None,
                "held_bytes": per_day / 24 * redis_per_element,
            }
        )
    return out


# --- output -----------------------------------------------------------------------------------------


def gb(n: float) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def print_a(a: dict[str, Any]) -> None:
    rng, lim = a["delete_by_pk_range"], a["delete_by_limit"]
    print(
        f"\n### A. One day of the manifest: {a['rows']:,} rows over {a['days']} days, "
        f"{a['rows_per_day']:,} rows a day\n"
    )
    print("| operation (one day) | rows | seconds | rows/s | longest batch (lock hold) | median batch | purge after |")
    print("|---|---|---|---|---|---|---|")
    for label, d in (
        (f"batched DELETE by PK range, {a['batch']:,}/batch", rng),
        (f"batched DELETE ... ORDER BY task_id, seq LIMIT {a['batch']:,}", lim),
    ):
        print(
            f"| {label} | {d['rows']:,} | {d['seconds']:.2f} | {d['rows_per_second']:,} | "
            f"{d['longest_batch_seconds'] * 1000:.0f} ms | {d['median_batch_seconds'] * 1000:.0f} ms | "
            f"{d['purge_seconds']:.0f} s (history {d['history_length_after']:,}) |"
        )
    for drop in a["drop_partition"]:
        print(
            f"| ALTER TABLE ... DROP PARTITION {drop['partition']} | {a['rows_per_day']:,} | {drop['seconds']:.3f} "
            f"| {a['rows_per_day'] / drop['seconds']:,.0f} | {drop['seconds'] * 1000:.0f} ms (whole table, MDL) | | |"
        )
    added, moved = a["add_partition"], a["migration_copy"]
    print(
        f"| ALTER TABLE ... REORGANIZE PARTITION pmax INTO ({added['partition']}, pmax): the next day's, "
        f"pmax empty | 0 | {added['seconds']:.3f} | | {added['seconds'] * 1000:.0f} ms (whole table, MDL) | | |"
    )
    print(
        f"| migration: copy {MIGRATION_DAYS} days into a new partitioned table, joined to the task rows for "
        f"interval_start, a statement per task | {moved['rows']:,} | {moved['seconds']:.2f} | "
        f"{moved['rows_per_second']:,} | | | |"
    )
    ins, app = a["insert_day_seconds"], a["insert_task_executemany_seconds"]
    print("\n| write path | plain | partitioned | partitioned / plain |")
    print("|---|---|---|---|")
    for label, p, r in (
        (
            f"one day, INSERT ... SELECT per task, median of {a['days']} days (s)",
            ins["plain_median"],
            ins["partitioned_median"],
        ),
        ("the last day filled (s)", ins["plain_last"], ins["partitioned_last"]),
        (f"one task of {app['rows']:,} rows, executemany batches + commit (s)", app["plain"], app["partitioned"]),
    ):
        print(f"| {label} | {p:.3f} | {r:.3f} | {r / p:.2f}x |")
    sizes = a["bytes"]
    print(
        f"| bytes per row (data + index) | {sizes['plain']['total'] / a['rows']:.0f} | "
        f"{sizes['partitioned']['total'] / a['rows']:.0f} | "
        f"{sizes['partitioned']['total'] / sizes['plain']['total']:.2f}x |"
    )
    print("\n| lookup (median ms) | plain | partitioned, task_id only | partitioned, + interval_start |")
    print("|---|---|---|---|")
    for name, v in a["lookups"].items():
        cells = [f"{x['median_ms']:.2f} ({x['partitions_read'] or '?'} part.)" for x in v.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    after = a["bytes_after_delete"]
    print(
        f"\nAfter deleting two days: plain data_free {gb(after['plain']['free'])} (space kept in the file, reused "
        f"by later inserts); partitioned {gb(sizes['partitioned']['total'])} -> {gb(after['partitioned']['total'])}"
        " (files removed)."
    )


def print_b(b: dict[str, Any]) -> None:
    redis, res = b["redis"], b["results"]
    print("\n### B. Capacity per element and per row\n")
    print("| figure | value | from |")
    print("|---|---|---|")
    print(
        f"| Redis bytes per queued element (MEMORY USAGE of the set / members) | {redis['bytes_per_element']} | "
        f"{redis['elements']:,} elements pushed by dispatch, member {redis['member_bytes']} bytes, "
        f"encoding {redis['encoding']} |"
    )
    print(f"| Redis used_memory growth per element | {redis['used_memory_delta_per_element']} | the same push |")
    print(
        f"| manifest bytes per row, plain (current schema) | {b['manifest_bytes_per_row']} | "
        f"{b['manifest_rows']:,} rows of A |"
    )
    print(
        f"| manifest bytes per row, partitioned | {b['manifest_part_bytes_per_row']} | "
        f"{b['manifest_rows']:,} rows of A |"
    )
    print(
        f"| manifest bytes per row, written by dispatch | {redis['manifest_bytes_per_row']} | "
        f"{redis['elements']:,} rows of one task |"
    )
    print(
        f"| result bytes per row | {res['bytes_per_row']} | {res['rows']:,} rows, title {RESULT_TITLE_CHARS} chars, "
        "4 secondary indexes |"
    )
    print("\n| table | elements/day | rows/day | disk/day | retention | held |")
    print("|---|---|---|---|---|---|")
    for row in b["per_day"]:
        kept = f"{row['retention_days']} days" if row["retention_days"] else "1 hour / 1 day"
        held = (
            gb(row["held_bytes"]) if row["retention_days"] else f"{gb(row['held_bytes'])} / {gb(row['bytes_per_day'])}"
        )
        print(
            f"| {row['what']} | {row['elements_per_day']:,} | {row['rows_per_day']:,} | {gb(row['bytes_per_day'])} "
            f"| {kept} | {held} |"
        )


def print_scaling(small: dict[str, Any], large: dict[str, Any]) -> dict[str, Any]:
    """How the per-day figures grew from the tenth to the full size, and what that gives at 100M rows."""
    target_rows_per_day = 100_000_000 // large["days"]
    factor = target_rows_per_day / large["rows_per_day"]
    rng_s, rng_l = small["delete_by_pk_range"], large["delete_by_pk_range"]
    drop_s = min(d["seconds"] for d in small["drop_partition"])
    drop_l = min(d["seconds"] for d in large["drop_partition"])
    extrapolated = {
        "rows_per_day": target_rows_per_day,
        "delete_seconds": round(rng_l["seconds"] * factor, 1),
        "delete_seconds_at_small_rate": round(target_rows_per_day / rng_s["rows_per_second"], 1),
        "drop_seconds": drop_l,
    }
    scaling = {
        "rows_per_day": [small["rows_per_day"], large["rows_per_day"]],
        "delete_seconds": [rng_s["seconds"], rng_l["seconds"]],
        "delete_rows_per_second": [rng_s["rows_per_second"], rng_l["rows_per_second"]],
        "longest_batch_seconds": [rng_s["longest_batch_seconds"], rng_l["longest_batch_seconds"]],
        "drop_seconds": [drop_s, drop_l],
        "extrapolated_100m": extrapolated,
    }
    print(
        f"\n### Scaling: {small['rows']:,} -> {large['rows']:,} rows (one day: {small['rows_per_day']:,} -> "
        f"{large['rows_per_day']:,} rows)\n"
    )
    print(f"| one day | at {small['rows']:,} | at {large['rows']:,} | growth | at 100,000,000 (extrapolated) |")
    print("|---|---|---|---|---|")
    ext = extrapolated
    print(
        f"| batched DELETE by PK range (s) | {rng_s['seconds']:.2f} | {rng_l['seconds']:.2f} | "
        f"{rng_l['seconds'] / rng_s['seconds']:.1f}x for {large['rows_per_day'] / small['rows_per_day']:.0f}x rows | "
        f"~{ext['delete_seconds']:.0f} s for {target_rows_per_day:,} rows |"
    )
    print(
        f"| DELETE rows/s | {rng_s['rows_per_second']:,} | {rng_l['rows_per_second']:,} | "
        f"{rng_l['rows_per_second'] / rng_s['rows_per_second']:.2f}x | |"
    )
    print(
        f"| longest DELETE batch (ms) | {rng_s['longest_batch_seconds'] * 1000:.0f} | "
        f"{rng_l['longest_batch_seconds'] * 1000:.0f} | | |"
    )
    print(f"| DROP PARTITION (s) | {drop_s:.3f} | {drop_l:.3f} | {drop_l / drop_s:.1f}x | ~{drop_l:.2f} s |")
    return scaling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="manifest rows in each copy")
    parser.add_argument("--days", type=int, default=30, help="days the rows are spread over (one partition each)")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per DELETE transaction")
    parser.add_argument("--also-tenth", action="store_true", help="first measure A at rows/10, to show the scaling")
    parser.add_argument("--redis-elements", type=int, default=100_000, help="elements pushed by dispatch for B")
    parser.add_argument("--result-rows", type=int, default=500_000, help="synthetic amazon_search_result rows for B")
    parser.add_argument("--results-per-element", type=int, default=16, help="result rows a crawled element gives")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the big tables afterwards")
    args = parser.parse_args()
    assert args.days >= 4 and args.rows >= args.days * 24 * 10, "at least 4 days and 10 rows a task"

    started = time.perf_counter()
    conn = bench_mysql(os.environ.get("CRAWLOPS_SCALE_MYSQL_URL", SCALE_MYSQL_URL))
    (pool,) = q(conn, "SELECT @@innodb_buffer_pool_size")[0]
    (version,) = q(conn, "SELECT VERSION()")[0]
    server = {"version": str(version), "innodb_buffer_pool_size": int(pool)}
    print(f"MariaDB {version}, innodb_buffer_pool_size {int(pool) / 2**20:.0f} MB", flush=True)
    small = None
    if args.also_tenth:
        small = measure_day_delete(conn, args.rows // 10, args.days, args.batch, args.seed)
        drop_tables(conn)
    large = measure_day_delete(conn, args.rows, args.days, args.batch, args.seed)
    print("B: capacity", flush=True)
    redis = redis_capacity(conn, args.redis_elements)
    results = results_capacity(conn, args.result_rows, args.results_per_element)
    manifest_row = large["bytes"]["plain"]["total"] / large["rows"]
    capacity = {
        "redis": redis,
        "results": results,
        "manifest_rows": large["rows"],
        "manifest_bytes_per_row": round(manifest_row, 1),
        "manifest_part_bytes_per_row": round(large["bytes"]["partitioned"]["total"] / large["rows"], 1),
        "per_day": capacity_table(
            redis["bytes_per_element"], manifest_row, results["bytes_per_row"], args.results_per_element
        ),
    }
    if not args.keep:
        drop_tables(conn)
    if small:
        print_a(small)
    print_a(large)
    scaling = print_scaling(small, large) if small else None
    print_b(capacity)
    elapsed = time.perf_counter() - started
    print(f"\nwhole run {elapsed / 60:.1f} min")
    path = write_result(
        "scale",
        {
            "benchmark": "scale",
            "server": server,
            "args": vars(args),
            "day_delete": {"tenth": small, "full": large, "scaling": scaling},
            "capacity": capacity,
            "seconds": round(elapsed, 1),
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
