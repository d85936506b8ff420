"""History benchmark: do the 5-minute and hourly checks stay flat as closed history grows?

    python -m bench.history_bench                                   # 1,000,000 elements a day; 1, 7, 30 days
    python -m bench.history_bench --elements-per-day 300000         # the same at 3/10 of the size (~5 minutes)
    python -m bench.history_bench --elements-per-day 24000 --days 1,7   # a quick run (seconds)

The full size seeds 30M manifest rows and 30M result rows: 9.6 minutes of seeding, 11.3 in all,
on the 2-core development machine when it was otherwise quiet; about twice that while other
work loads it.

The question: as days of closed history pile up in the manifest, the results table and the
small per-hour tables, does any check the DAGs run every 5 minutes or every hour (or the
Crawl Ops page, or the daily retention) get slower? Each figure is measured at every history
size in the same run, so the ratio between the largest and the smallest size is the answer
("flat": close to 1.0x). Every statement a figure runs is EXPLAINed at the largest size, and
scans of whole tables are reported.

Data, in database ``crawlops_history`` (``CRAWLOPS_HISTORY_MYSQL_URL``) and Redis db 5
(``CRAWLOPS_HISTORY_REDIS_DB``), emptied at the start (and at the end, unless ``--keep``):

- one hourly ``search_result`` task an hour of E/24 elements (keywords of 5 pages over five
  marketplaces), the history ending at the hour before the current one; each closed task is
  settled ``Completed`` with its counts, every 4th hour's ``Failed`` with 0.2% of its elements
  handed to a ``<task>_fail`` retry task that answered them. Manifest rows as dispatch writes
  them (``amazon_task_element``: the canonical element JSON, its MD5, target, marketplace,
  page, config id); ONE result row per element in ``amazon_search_result`` (a real crawler
  writes a row per product on the page, 16-48 of them: the table here is that much smaller);
- per closed hour: a suite run, 16 check rows (4 hourly checks, 12 five-minute ``task_health``),
  a volume rollup row, 4 alerts; a small daily report per day;
- the current hour: config rows for the same keywords, dispatched by the package
  (``dispatch.plan_window``, ``record_plan``, ``push_window``) into Redis, half of its
  elements taken by "workers" (removed from the set, one result row each): one open task,
  ``In Progress``;
- one expired day, older than the manifest's retention (``retention.manifest_days`` is set to
  the largest history + 1 days, so the history itself is kept): its task rows and manifest,
  no result rows. ``retention.purge`` deletes it at each size and it is seeded again after.

History grows in steps (``--days 1,7,30``: one day, then six more, then 23 more; never
reloaded). Rows are generated in SQL with INSERT ... SELECT from MariaDB's ``seq_M_to_N``
sequence tables (MariaDB only). Tables are ANALYZEd after each step.

Figures, best of ``--repeat`` (15 for figures under 50 ms) after one warm-up at each size:

- ``health.check_tasks`` (task_health, every 5 minutes): with nothing to settle, and at the
  turn of the hour, settling the last hour's task (its E/24 elements checked for answers;
  the task row is reset before each run and restored after);
- ``quality.check_freshness`` (every 5 minutes), ``quality.check_completeness`` and
  ``quality.check_volume`` (hourly) on the last closed hour;
- the Crawl Ops page's data functions (``crawlops.dashboard``) for 24 hours and 7 days;
- ``retention.purge`` of one expired day (dry_run False): seconds, rows/s, and the longest
  single DELETE batch (one transaction: the longest time a purge holds row locks).

Prints a markdown table (figure x history size; ratios largest / smallest and, with three sizes,
largest / second: a 7-day range only holds a full range of data from 7 days of history on; full
scans found by EXPLAIN), the plans of the statements reading the manifest or the results, and
writes JSON (plans included) to bench/results/history.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from bench.common import bench_mysql, bench_redis, write_result
from bench.dashboard_bench import explain
from crawlops import dashboard, dispatch, health, quality, queue, retention
from crawlops.db import Connection
from crawlops.model import UTC, Window
from crawlops.queue import RedisClient
from crawlops.settings import Settings
from crawlops.store import alerts as store_alerts
from crawlops.store import manifest as store_manifest
from crawlops.store import reports as store_reports
from crawlops.store import results as store_results
from crawlops.store import tasks as store_tasks
from crawlops.store import verdicts as store_verdicts

HISTORY_MYSQL_URL = "mysql://crawlops:crawlops@127.0.0.1:3306/crawlops_history"
REDIS_DB = 5
FULL_ELEMENTS_PER_DAY = 1_000_000  # the size the question is about, and the default
PAGES = 5
MARKETS = ("US", "DE", "JP", "UK", "FR")
RETRY_EVERY = 4  # every 4th hour's task failed a few elements, retried and answered
RETRY_SHARE = 500  # ... 1 in 500 of its elements
MARKER = "history-bench"
RESULTS = "amazon_search_result"
CHUNK_ROWS = 250_000  # rows per INSERT ... SELECT statement (each its own transaction)
HOURLY_CHECKS = ("volume_anomaly", "completeness", "schema_drift", "quarantine_invalid")
HEALTH_WINDOWS = 12
ALERTS_PER_HOUR = 4
QUICK_SECONDS, QUICK_REPEAT = 0.05, 15
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
GROWING = (
    "amazon_task_element",
    RESULTS,
    "amazon_task_information",
    "amazon_alert",
    "amazon_check_run",
    "amazon_validation_run",
    "amazon_volume_hourly",
    "amazon_daily_report",
)
EMPTIED = (*GROWING, "amazon_crawl_config", "amazon_search_result_quarantine", "amazon_alert_delivery")


# ---------------------------------------------------------------------------------------
# The timeline: the current hour H; block d (d >= 1) is the 24 hours [H - 24d h, H - 24(d-1) h)


class Timeline:
    def __init__(self, current: dt.datetime, elements_per_day: int, max_days: int) -> None:
        self.current = current  # naive UTC, on the hour
        self.keywords = max(1, -(-elements_per_day // (24 * PAGES)))  # at least elements_per_day a day
        self.per_task = self.keywords * PAGES  # elements of one hourly task
        self.retried = max(1, self.per_task // RETRY_SHARE)  # elements of a retry task
        self.expired_block = max_days + 3  # settled before now - (max_days + 1) days

    def block_start(self, d: int) -> dt.datetime:
        return self.current - 24 * d * HOUR

    @staticmethod
    def task_id(hour: dt.datetime) -> str:
        return f"search_result_{int(hour.replace(tzinfo=UTC).timestamp())}_hourly"

    @property
    def last_hour(self) -> dt.datetime:
        return self.current - HOUR

    def window(self, hour: dt.datetime) -> Window:
        start = hour.replace(tzinfo=UTC)
        return Window(start, start + HOUR)


# ---------------------------------------------------------------------------------------
# Seeding (SQL only; every statement commits)


def _task_id_sql(hour: str) -> str:
    return f"CONCAT('search_result_', UNIX_TIMESTAMP({hour}), '_hourly')"


def _hours_sql(count: int) -> str:
    """A derived table ``h(hr, id, failed)`` of ``count`` hours and their task ids. Parameters:
    the current hour (a task ``failed`` when it lies 2, 6, 10... hours before it, so the last
    closed hour's task never is), then the first hour."""
    return (
        f"(SELECT hr, {_task_id_sql('hr')} AS id, MOD(TIMESTAMPDIFF(HOUR, hr, %s), {RETRY_EVERY}) = 2 AS failed "  # noqa: S608
        f"FROM (SELECT %s + INTERVAL seq HOUR AS hr FROM seq_0_to_{count - 1}) x) h"
    )


def _elements_sql(per_task: int) -> str:
    """A derived table of one task's elements as dispatch plans them: keyword k, pages 1..5."""
    markets = ", ".join(f"'{m}'" for m in MARKETS)
    return (
        f"(SELECT seq, kw, mp, pg, cfg, {ELEMENT_JSON} AS el "  # noqa: S608 - constants
        f"FROM (SELECT seq, CONCAT('history keyword ', LPAD((seq - 1) DIV {PAGES}, 7, '0')) AS kw, "
        f"ELT(1 + ((seq - 1) DIV {PAGES}) MOD {len(MARKETS)}, {markets}) AS mp, "
        f"(seq - 1) MOD {PAGES} + 1 AS pg, (seq - 1) DIV {PAGES} + 1 AS cfg FROM seq_1_to_{per_task}) s) e"
    )


# The element's canonical JSON (sorted keys, no spaces), as planning builds it.
ELEMENT_JSON = """CONCAT('{"keyword":"', kw, '","marketplace":"', mp, '","page":', pg, '}')"""


def _hour_chunks(first: dt.datetime, hours: int, per_hour: int) -> Iterator[tuple[dt.datetime, int]]:
    step = max(1, CHUNK_ROWS // max(1, per_hour))
    for offset in range(0, hours, step):
        yield first + offset * HOUR, min(step, hours - offset)


def seed_tasks(conn: Connection, t: Timeline, first: dt.datetime, hours: int) -> None:
    """Task rows of closed hours: roots settled Completed (or Failed with a settled retry)."""
    n, k = t.per_task, t.retried
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_task_information (task_id, task_type, task_source, root_task_id, frequency, "  # noqa: S608
            "task_status, element_count, remaining_count, failed_count, retry_count, interval_start, interval_end, "
            "redis_epoch, push_count, pushed_at, started_at, progress_at, finished_at, settled_at, answered_count, "
            "empty_count, lost_count, last_error, dag_run_id, created_at) "
            f"SELECT id, 'search_result', NULL, id, 'hourly', IF(failed, 'Failed', 'Completed'), {n}, 0, "
            f"IF(failed, {k}, 0), 0, hr, hr + INTERVAL 1 HOUR, '{MARKER}', 1, hr + INTERVAL 1 MINUTE, "
            "hr + INTERVAL 2 MINUTE, hr + INTERVAL 48 MINUTE, hr + INTERVAL 50 MINUTE, hr + INTERVAL 55 MINUTE, "
            f"{n} - IF(failed, {k}, 0), 0, 0, IF(failed, '{k} elements failed', NULL), "
            "CONCAT('scheduled__', REPLACE(CAST(hr AS CHAR), ' ', 'T'), '+00:00'), hr "
            f"FROM {_hours_sql(hours)}",
            (t.current, first),
        )
        cur.execute(
            "INSERT INTO amazon_task_information (task_id, task_type, task_source, root_task_id, frequency, "  # noqa: S608
            "task_status, element_count, remaining_count, failed_count, retry_count, interval_start, interval_end, "
            "redis_epoch, push_count, pushed_at, started_at, progress_at, finished_at, settled_at, answered_count, "
            "empty_count, lost_count, created_at) "
            f"SELECT CONCAT(id, '_fail'), 'search_result', id, id, 'hourly', 'Completed', {k}, 0, 0, 1, hr, "
            f"hr + INTERVAL 1 HOUR, '{MARKER}', 1, hr + INTERVAL 55 MINUTE, hr + INTERVAL 56 MINUTE, "
            "hr + INTERVAL 57 MINUTE, hr + INTERVAL 58 MINUTE, hr + INTERVAL 59 MINUTE, "
            f"{k}, 0, 0, hr + INTERVAL 55 MINUTE FROM {_hours_sql(hours)} WHERE failed",
            (t.current, first),
        )
    conn.commit()


def seed_manifest(conn: Connection, t: Timeline, first: dt.datetime, hours: int) -> None:
    """Manifest rows of those hours' tasks (and of their retry tasks), as dispatch writes them."""
    with conn.cursor() as cur:
        for start, count in _hour_chunks(first, hours, t.per_task):
            cur.execute(
                "INSERT INTO amazon_task_element (task_id, seq, element_hash, element, target, marketplace, page, "  # noqa: S608
                "config_id) SELECT STRAIGHT_JOIN h.id, e.seq, UNHEX(MD5(e.el)), e.el, e.kw, e.mp, e.pg, e.cfg "
                f"FROM {_hours_sql(count)} CROSS JOIN {_elements_sql(t.per_task)}",
                (t.current, start),
            )
            conn.commit()
        cur.execute(
            "INSERT INTO amazon_task_element (task_id, seq, element_hash, element, target, marketplace, page, "  # noqa: S608
            "config_id) SELECT STRAIGHT_JOIN CONCAT(h.id, '_fail'), e.seq, UNHEX(MD5(e.el)), e.el, e.kw, e.mp, "
            f"e.pg, e.cfg FROM {_hours_sql(hours)} CROSS JOIN {_elements_sql(t.retried)} WHERE h.failed",
            (t.current, first),
        )
    conn.commit()


def seed_results(conn: Connection, t: Timeline, first: dt.datetime, hours: int) -> None:
    """One result row per element of those hours, created while the task ran (a retried
    element's row by the retry task, at 57 minutes past)."""
    n, k = t.per_task, t.retried
    with conn.cursor() as cur:
        for start, count in _hour_chunks(first, hours, n):
            cur.execute(
                f"INSERT INTO {RESULTS} (task_id, keyword, marketplace, asin, title, price, currency, rating, "  # noqa: S608
                "review_count, page, position, create_time) "
                f"SELECT STRAIGHT_JOIN IF(h.failed AND e.seq <= {k}, CONCAT(h.id, '_fail'), h.id), e.kw, e.mp, "
                "CONCAT('B0', LPAD((e.seq * 7919 + UNIX_TIMESTAMP(h.hr) DIV 3600) MOD 100000000, 8, '0')), "
                "CONCAT('History product ', e.seq, ', a search result title of a typical length'), "
                "(e.seq MOD 10000) / 100, 'USD', (e.seq MOD 51) / 10, e.seq MOD 5000, e.pg, 1, "
                f"IF(h.failed AND e.seq <= {k}, h.hr + INTERVAL 57 MINUTE, "
                f"h.hr + INTERVAL (120 + (e.seq - 1) * 2760 DIV {n}) SECOND) "
                f"FROM {_hours_sql(count)} CROSS JOIN {_elements_sql(n)}",
                (t.current, start),
            )
            conn.commit()


def seed_small(conn: Connection, t: Timeline, first: dt.datetime, hours: int) -> None:
    """Per hour: a suite run, 16 check rows, a volume rollup row, 4 alerts; a report for the day."""
    checks = ", ".join(f"'{c}'" for c in HOURLY_CHECKS)
    per_hour = len(HOURLY_CHECKS) + HEALTH_WINDOWS
    run_id = "CONCAT('scheduled__', REPLACE(CAST(hr + INTERVAL 1 HOUR AS CHAR), ' ', 'T'), '+00:00')"
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_validation_run (suite_name, table_name, window_start, window_end, success, "  # noqa: S608
            "evaluated, failed, row_count, results, dag_run_id, validated_at, first_success, verdict, quality_score) "
            f"SELECT '{RESULTS}', '{RESULTS}', hr, hr + INTERVAL 1 HOUR, 1, 12, 0, {t.per_task}, "
            f"'{{\"outcomes\": []}}', {run_id}, hr + INTERVAL 65 MINUTE, 1, 'passed', 0.998 FROM {_hours_sql(hours)}",
            (t.current, first),
        )
        cur.execute(
            "INSERT INTO amazon_volume_hourly (table_name, hour, row_count, history_points, mean, std, band_low, "  # noqa: S608
            "band_high, anomalous, direction, dag_run_id, checked_at) "
            f"SELECT '{RESULTS}', hr, {t.per_task}, 14, {t.per_task}, 200, {t.per_task - 600}, {t.per_task + 600}, "
            f"0, NULL, {run_id}, hr + INTERVAL 61 MINUTE FROM {_hours_sql(hours)}",
            (t.current, first),
        )
        cur.execute(
            "INSERT INTO amazon_check_run (check_name, window_start, window_end, status, findings, details, "  # noqa: S608
            "dag_run_id, checked_at) "
            "SELECT name, ws, we, IF(name = 'completeness' AND failed, 'fail', 'pass'), "
            "IF(name = 'completeness' AND failed, 1, 0), '{}', "
            "CONCAT('scheduled__', REPLACE(CAST(we AS CHAR), ' ', 'T'), '+00:00'), we + INTERVAL 1 MINUTE "
            f"FROM (SELECT failed, IF(c < {len(HOURLY_CHECKS)}, ELT(1 + c, {checks}), 'task_health') AS name, "
            f"IF(c < {len(HOURLY_CHECKS)}, hr, hr + INTERVAL (c - {len(HOURLY_CHECKS)}) * 5 MINUTE) AS ws, "
            f"IF(c < {len(HOURLY_CHECKS)}, hr + INTERVAL 1 HOUR, "
            f"hr + INTERVAL (c - {len(HOURLY_CHECKS)} + 1) * 5 MINUTE) AS we "
            f"FROM {_hours_sql(hours)} CROSS JOIN (SELECT seq AS c FROM seq_0_to_{per_hour - 1}) c) u",
            (t.current, first),
        )
        # 4 alerts an hour: a skipped config row (dispatch, INFO), a stalled task (5-minute
        # window, WARNING), Redis memory (INFO), and the completeness finding of a failed hour
        # (WARNING missing_data, on the hour's window; else INFO volume).
        cur.execute(
            "INSERT INTO amazon_alert (level, source, check_name, subject, title, details, fingerprint, "  # noqa: S608
            "window_start, window_end, dag_run_id, created_at, delivery_status, delivery_attempts, delivered_at) "
            "SELECT level, source, check_name, subject, CONCAT(subject, ': ', check_name), '{}', "
            f"SHA1(CONCAT('{MARKER}-', check_name, '-', subject)), ws, we, {run_id}, created, "
            "IF(level = 'INFO', 'stored', 'delivered'), level <> 'INFO', IF(level = 'INFO', NULL, created) "
            "FROM (SELECT hr, "
            "ELT(a + 1, 'INFO', 'WARNING', 'INFO', IF(failed, 'WARNING', 'INFO')) AS level, "
            "IF(a = 0, 'amazon_task_dispatch', 'amazon_data_supervision') AS source, "
            "ELT(a + 1, 'config_invalid', 'task_stalled', 'redis_memory', "
            "IF(failed, 'missing_data', 'volume_anomaly')) AS check_name, "
            "ELT(a + 1, CONCAT('config row ', UNIX_TIMESTAMP(hr) DIV 3600), id, 'redis', "
            f"IF(failed, id, '{RESULTS}')) AS subject, "
            "IF(a = 1, hr + INTERVAL 30 MINUTE, hr) AS ws, "
            "IF(a = 1, hr + INTERVAL 35 MINUTE, hr + INTERVAL 1 HOUR) AS we, "
            "hr + INTERVAL (a * 15 + 3) MINUTE AS created "
            f"FROM {_hours_sql(hours)} CROSS JOIN (SELECT seq AS a FROM seq_0_to_{ALERTS_PER_HOUR - 1}) a) u",
            (t.current, first),
        )
        day = (first + hours * HOUR - HOUR).date()
        cur.execute(
            "INSERT IGNORE INTO amazon_daily_report (report_date, markdown, html, summary, dag_run_id, created_at) "
            "VALUES (%s, %s, %s, NULL, %s, %s)",
            (
                day,
                f"# Crawl daily report {day}\n",
                f"<!doctype html><title>Crawl daily report {day}</title>",
                f"scheduled__{day + dt.timedelta(days=1)}T00:00:00+00:00",
                dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 5)),
            ),
        )
    conn.commit()


def seed_block(conn: Connection, t: Timeline, d: int) -> None:
    first = t.block_start(d)
    seed_tasks(conn, t, first, 24)
    seed_manifest(conn, t, first, 24)
    seed_results(conn, t, first, 24)
    seed_small(conn, t, first, 24)


def seed_expired(conn: Connection, t: Timeline, *, tasks: bool) -> None:
    """The expired day: task rows (once: purging the manifest leaves them) and its manifest."""
    first = t.block_start(t.expired_block)
    if tasks:
        seed_tasks(conn, t, first, 24)
    seed_manifest(conn, t, first, 24)


def seed_current(conn: Connection, r: RedisClient, settings: Settings, t: Timeline) -> str:
    """The current hour's task, dispatched by the package from config rows naming the history's
    keywords; then "workers" take half of it (removed from the set, a result row each)."""
    markets = [MARKETS[k % len(MARKETS)] for k in range(t.keywords)]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_crawl_config (id, crawl_object, target, marketplace, frequency, max_pages) "
            "VALUES (%s, 'search_result', %s, %s, 'hourly', %s)",
            [(k + 1, f"history keyword {k:07d}", markets[k], PAGES) for k in range(t.keywords)],
        )
    conn.commit()
    window = t.window(t.current)
    plan = dispatch.plan_window(conn, settings, window, "UTC")
    dispatch.record_plan(conn, settings, plan, dag_run_id="history-bench")
    pushed = dispatch.push_window(conn, r, settings, window)
    task_id = t.task_id(t.current)
    assert pushed == {task_id: t.per_task}, pushed
    half = t.per_task // 2
    with conn.cursor() as cur:
        cur.execute("SELECT element FROM amazon_task_element WHERE task_id = %s AND seq <= %s", (task_id, half))
        taken = [str(row[0]) for row in cur.fetchall()]
        span = max(60, int((dt.datetime.now(UTC).replace(tzinfo=None) - t.current).total_seconds()) - 30)
        cur.execute(
            f"INSERT INTO {RESULTS} (task_id, keyword, marketplace, asin, title, price, currency, rating, "  # noqa: S608
            "review_count, page, position, create_time) "
            "SELECT task_id, target, marketplace, CONCAT('B0', LPAD(seq * 7919 MOD 100000000, 8, '0')), "
            "CONCAT('History product ', seq, ', a search result title of a typical length'), (seq MOD 10000) / 100, "
            "'USD', (seq MOD 51) / 10, seq MOD 5000, page, 1, %s + INTERVAL ((seq - 1) * %s DIV %s) SECOND "
            "FROM amazon_task_element WHERE task_id = %s AND seq <= %s",
            (t.current, span, half, task_id, half),
        )
    conn.commit()
    queue.remove_members(r, task_id, taken)
    return task_id


def check_alike(conn: Connection, t: Timeline) -> None:
    """The seeded manifest holds what dispatch builds from the same config rows: the last
    hour's task (seeded) row for row like the current one (dispatched)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM amazon_task_element c JOIN amazon_task_element p ON p.task_id = %s "
            "AND p.seq = c.seq AND p.element_hash = c.element_hash AND p.element = c.element "
            "AND p.target = c.target AND p.marketplace = c.marketplace AND p.page = c.page "
            "AND p.config_id = c.config_id WHERE c.task_id = %s",
            (t.task_id(t.last_hour), t.task_id(t.current)),
        )
        same = int(cur.fetchone()[0])
    conn.commit()
    assert same == t.per_task, f"seeded manifest differs from dispatch's: {same} of {t.per_task} rows alike"


def keep_current(conn: Connection, task_id: str) -> None:
    """The current task stays inside its timeout and stall limits however long seeding took
    (``pushed_at`` stays: freshness counts from it, at a fixed reference after the push)."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE amazon_task_information SET started_at = UTC_TIMESTAMP() - INTERVAL 5 MINUTE, "
            "progress_at = UTC_TIMESTAMP() - INTERVAL 1 MINUTE WHERE task_id = %s",
            (task_id,),
        )
    conn.commit()


def analyze(conn: Connection) -> None:
    with conn.cursor() as cur:
        for table in GROWING:
            cur.execute(f"ANALYZE TABLE {table}")
            cur.fetchall()


def table_facts(conn: Connection) -> dict[str, dict[str, float]]:
    facts = {}
    with conn.cursor() as cur:
        for table in GROWING:
            cur.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - constant table names
            rows = int(cur.fetchone()[0])
            cur.execute(
                "SELECT (data_length + index_length) / 1048576 FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = %s",
                (table,),
            )
            facts[table] = {"rows": rows, "mb": round(float(cur.fetchone()[0] or 0), 1)}
    return facts


# ---------------------------------------------------------------------------------------
# Statements: recorded while a figure runs, EXPLAINed, scans of whole tables reported


class _RecordingCursor:
    def __init__(self, cur: Any, statements: list[str]) -> None:
        self._cur, self._statements = cur, statements

    def execute(self, query: str, args: Any = None) -> Any:
        result = self._cur.execute(query, args)
        executed = self._cur._executed
        self._statements.append(executed.decode(errors="replace") if isinstance(executed, bytes) else str(executed))
        return result

    def __enter__(self) -> _RecordingCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cur.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


class Recorder:
    """A connection that keeps the text of every statement (also through server-side cursors)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.statements: list[str] = []

    def cursor(self, *args: Any) -> _RecordingCursor:
        return _RecordingCursor(self._conn.cursor(*args), self.statements)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


_STRING = re.compile(r"(?:_binary)?'(?:[^'\\]|\\.)*'", re.S)
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")
_LIST = re.compile(r"\?(?:\s*,\s*\?)+")
_TABLES = re.compile(
    r"\b(?:FROM|JOIN|UPDATE)\s+(amazon_\w+)(?:\s+(?:AS\s+)?(?!(?:WHERE|JOIN|ON|LEFT|FORCE|USE|GROUP|ORDER|SET|LIMIT)\b)(\w+))?",
    re.I,
)


def shape(statement: str) -> str:
    """The statement with its values replaced by ``?`` (an IN list by ``?...``)."""
    return _LIST.sub("?...", _NUMBER.sub("?", _STRING.sub("?", statement)))


def scans(conn: Connection, statements: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """EXPLAIN each distinct statement shape that reads a table: the plan rows reading a whole
    table (``ALL``) or a whole index (``index``), with the table they stand for; and every plan."""
    seen: set[str] = set()
    found: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    for statement in statements:
        verb = statement.lstrip().split(None, 1)[0].upper()
        key = shape(statement)
        if verb not in ("SELECT", "UPDATE", "DELETE") or (" FROM " not in statement.upper() and verb != "UPDATE"):
            continue
        if key in seen:
            continue
        seen.add(key)
        aliases: dict[str, str] = {}
        for table, alias in _TABLES.findall(statement):
            aliases[table] = table
            if alias:
                aliases[alias] = table
        plan = explain(conn, statement)
        plans.append({"statement": key[:400], "plan": plan})
        for step in plan:
            if step["type"] in ("ALL", "index") and step["table"] in aliases:
                found.append({**step, "real_table": aliases[step["table"]], "statement": key[:300]})
    return found, plans


# ---------------------------------------------------------------------------------------
# Figures


def best_of(fn: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None) -> tuple[float, list[float]]:
    """One warm-up, then ``repeat`` timed calls (``QUICK_REPEAT`` when the warm-up took under
    ``QUICK_SECONDS``: a few ms vary by more than themselves on a shared machine); ``before``
    runs untimed ahead of each. Returns the best and all timed runs."""
    runs: list[float] = []
    count, warm_up = repeat, True
    while warm_up or len(runs) < count:
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - started
        if warm_up:
            warm_up = False
            count = max(repeat, QUICK_REPEAT) if elapsed < QUICK_SECONDS else repeat
        else:
            runs.append(elapsed)
    return min(runs), runs


class Bench:
    def __init__(self, conn: Connection, r: RedisClient, settings: Settings, t: Timeline, repeat: int) -> None:
        self.conn, self.r, self.settings, self.t, self.repeat = conn, r, settings, t, repeat
        self.freshness_reference = dt.datetime.now(UTC)  # fixed: which tasks count as recent must not drift
        end = (t.current + HOUR).replace(tzinfo=UTC)
        self.spans = {"24 h": dashboard.HourRange.of(end - DAY, end), "7 d": dashboard.HourRange.of(end - 7 * DAY, end)}

    # the last hour's task, finished and not settled yet: what the health check meets at the hour's turn
    def unsettle(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                "UPDATE amazon_task_information SET task_status = 'Completed', settled_at = NULL, "
                "answered_count = NULL, empty_count = NULL, lost_count = NULL, remaining_count = 0, "
                "finished_at = UTC_TIMESTAMP() - INTERVAL 2 MINUTE WHERE task_id = %s",
                (self.t.task_id(self.t.last_hour),),
            )
        self.conn.commit()

    def restore_settled(self) -> None:
        hour = self.t.last_hour
        with self.conn.cursor() as cur:
            cur.execute(
                "UPDATE amazon_task_information SET task_status = 'Completed', settled_at = %s, finished_at = %s, "
                "answered_count = element_count, empty_count = 0, lost_count = 0, last_error = NULL "
                "WHERE task_id = %s",
                (hour + 55 * dt.timedelta(minutes=1), hour + 50 * dt.timedelta(minutes=1), self.t.task_id(hour)),
            )
        self.conn.commit()

    def health_steady(self, conn: Connection) -> None:
        report = health.check_tasks(conn, self.r, self.settings, dt.datetime.now(UTC))
        assert report.open_tasks == 1 and not report.timed_out, report.to_json()

    def health_settling(self, conn: Connection) -> None:
        report = health.check_tasks(conn, self.r, self.settings, dt.datetime.now(UTC))
        settled = report.tracking.get("settled") or []
        assert report.open_tasks == 1 and len(settled) == 1, report.tracking
        assert not report.tracking.get("retries"), report.tracking

    def freshness(self, conn: Connection) -> None:
        details, findings = quality.check_freshness(conn, self.settings, self.freshness_reference)
        assert not findings, [f.title for f in findings]
        assert f"search_result/{MARKETS[0]}" in details["scopes"], details

    def completeness(self, conn: Connection) -> None:
        summary, _ = quality.check_completeness(conn, self.r, self.settings, self.t.window(self.t.last_hour))
        assert summary["settled_tasks"] == 1 and not summary["missing"], summary

    def volume(self, conn: Connection) -> None:
        verdict, _ = quality.check_volume(conn, RESULTS, self.t.window(self.t.last_hour), self.settings)
        assert verdict.observed == self.t.per_task, verdict

    def figures(self) -> dict[str, tuple[Callable[[Connection], Any], Callable[[], Any] | None]]:
        """name -> (the call, what runs untimed before each call; the seeded state is restored after)."""
        out: dict[str, tuple[Callable[[Connection], Any], Callable[[], Any] | None]] = {
            "health.check_tasks (5 min), nothing to settle": (self.health_steady, None),
            "health.check_tasks (5 min), settling the last hour's task": (self.health_settling, self.unsettle),
            "quality.check_freshness (5 min)": (self.freshness, None),
            "quality.check_completeness (hourly)": (self.completeness, None),
            "quality.check_volume (hourly)": (self.volume, None),
        }
        for name, span in self.spans.items():
            out |= {
                f"dashboard.overview {name}": (partial(dashboard.overview, r=self.r, span=span), None),
                f"dashboard.tasks_by_hour {name}": (partial(dashboard.tasks_by_hour, span=span), None),
                f"dashboard.quality_by_hour {name}": (partial(dashboard.quality_by_hour, span=span), None),
                f"dashboard.volume_by_hour {name}": (partial(dashboard.volume_by_hour, span=span), None),
                f"dashboard.alerts {name}": (partial(dashboard.alerts, span=span), None),
            }
        out["dashboard.latest_report"] = (dashboard.latest_report, None)
        return out

    def measure(self, explain_plans: bool) -> dict[str, dict[str, Any]]:
        measured: dict[str, dict[str, Any]] = {}
        for name, (fn, before) in self.figures().items():
            best, runs = best_of(partial(fn, self.conn), self.repeat, before)
            entry: dict[str, Any] = {"seconds": round(best, 5), "runs": [round(x, 5) for x in runs]}
            if explain_plans:
                if before is not None:
                    before()
                recorder = Recorder(self.conn)
                fn(recorder)
                entry["scans"], entry["plans"] = scans(self.conn, recorder.statements)
            if before is not None:
                self.restore_settled()
            measured[name] = entry
        return measured

    def purge(self, explain_plans: bool) -> dict[str, Any]:
        """retention.purge with the expired day in place: the whole call timed, each DELETE batch timed."""
        batches: list[tuple[str, float, int]] = []
        modules = (store_alerts, store_manifest, store_reports, store_results, store_tasks, store_verdicts)
        recorder = Recorder(self.conn)
        with _timed_batches(modules, batches):
            started = time.perf_counter()
            summary = retention.purge(recorder, self.settings, dt.datetime.now(UTC))
            seconds = time.perf_counter() - started
        manifest = summary["tables"]["amazon_task_element"]
        expected = 24 * self.t.per_task + 24 // RETRY_EVERY * self.t.retried
        assert summary["finished"] and manifest["rows"] == expected == summary["rows"], (summary, expected)
        longest = max(batches, key=lambda b: b[1])
        entry: dict[str, Any] = {
            "seconds": round(seconds, 3),
            "rows": summary["rows"],
            "rows_per_second": round(summary["rows"] / seconds),
            "batches": len(batches),
            "longest_batch_seconds": round(longest[1], 4),
            "longest_batch_rows": longest[2],
            "median_batch_seconds": round(statistics.median(b[1] for b in batches), 4),
            "manifest_seconds": manifest["seconds"],
            "tables": {k: v for k, v in summary["tables"].items() if v["rows"] or v["seconds"] > 0.05},
        }
        if explain_plans:
            entry["scans"], entry["plans"] = scans(self.conn, recorder.statements)
        return entry


@contextmanager
def _timed_batches(modules: tuple[Any, ...], batches: list[tuple[str, float, int]]) -> Iterator[None]:
    """Time every ``delete_batch`` (one DELETE, one transaction) the store modules run."""
    originals = {m: m.delete_batch for m in modules}

    def make(original: Callable[..., int], module: str) -> Callable[..., int]:
        def timed(conn: Connection, sql: str, params: Any) -> int:
            started = time.perf_counter()
            rows = original(conn, sql, params)
            batches.append((module, time.perf_counter() - started, rows))
            return rows

        return timed

    for module, original in originals.items():
        module.delete_batch = make(original, module.__name__)
    try:
        yield
    finally:
        for module, original in originals.items():
            module.delete_batch = original


# ---------------------------------------------------------------------------------------


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _scan_text(entry: dict[str, Any]) -> str:
    if "scans" not in entry:
        return "-"
    found = {f"{s['real_table']} {s['type']} ~{s['rows']}" for s in entry["scans"]}
    return "none" if not found else "; ".join(sorted(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--elements-per-day", type=int, default=FULL_ELEMENTS_PER_DAY)
    parser.add_argument("--days", default="1,7,30", help="history sizes in days, growing (comma-separated)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure after one warm-up")
    parser.add_argument("--keep", action="store_true", help="leave the data in place at the end")
    args = parser.parse_args()
    sizes = sorted({int(d) for d in args.days.split(",")})
    assert sizes[0] >= 1, "history sizes are at least one day"
    began = time.perf_counter()

    url = os.environ.get("CRAWLOPS_HISTORY_MYSQL_URL", HISTORY_MYSQL_URL)
    conn, r = bench_mysql(url), bench_redis(REDIS_DB, "CRAWLOPS_HISTORY_REDIS_DB")
    keep_days = sizes[-1] + 1
    settings = Settings.load(
        overrides={"retention": {"manifest_days": keep_days, "quarantine_days": max(30, keep_days)}}
    )
    now = dt.datetime.now(UTC).replace(tzinfo=None)
    t = Timeline(now.replace(minute=0, second=0, microsecond=0), args.elements_per_day, sizes[-1])
    print(
        f"history: {t.per_task * 24:,} elements a day ({t.per_task:,} a task, {t.keywords:,} keywords x {PAGES} "
        f"pages); sizes {sizes} days; current hour {t.current:%Y-%m-%d %H}:00 UTC; manifest kept {keep_days} days",
        flush=True,
    )

    started = time.perf_counter()
    with conn.cursor() as cur:
        for table in EMPTIED:
            cur.execute(f"TRUNCATE TABLE {table}")
    conn.commit()
    r.flushdb()
    current = seed_current(conn, r, settings, t)
    seed_expired(conn, t, tasks=True)
    setup_seconds = time.perf_counter() - started
    print(f"current hour dispatched and expired day seeded in {setup_seconds:.1f} s", flush=True)

    bench = Bench(conn, r, settings, t, args.repeat)
    steps: list[dict[str, Any]] = []
    seeded = 0
    seed_total = setup_seconds
    for size in sizes:
        started = time.perf_counter()
        for d in range(seeded + 1, size + 1):
            seed_block(conn, t, d)
        seeded = size
        analyze(conn)
        check_alike(conn, t)
        seed_seconds = time.perf_counter() - started
        seed_total += seed_seconds
        facts = table_facts(conn)
        print(
            f"{size:>3} days: seeded in {seed_seconds:.1f} s; manifest {facts['amazon_task_element']['rows']:,} rows "
            f"({facts['amazon_task_element']['mb']:,.0f} MB), results {facts[RESULTS]['rows']:,} "
            f"({facts[RESULTS]['mb']:,.0f} MB), tasks {facts['amazon_task_information']['rows']:,}",
            flush=True,
        )
        last = size == sizes[-1]
        keep_current(conn, current)
        started = time.perf_counter()
        figures = bench.measure(explain_plans=last)
        purge = bench.purge(explain_plans=last)
        measure_seconds = time.perf_counter() - started
        reseed_seconds, reseeded = 0.0, ""
        if not last:
            started = time.perf_counter()
            seed_expired(conn, t, tasks=False)
            reseed_seconds = time.perf_counter() - started
            reseeded = f"; expired day seeded again in {reseed_seconds:.1f} s"
        print(
            f"{size:>3} days: measured in {measure_seconds:.1f} s (purge {purge['seconds']:.1f} s, "
            f"{purge['rows']:,} rows){reseeded}",
            flush=True,
        )
        steps.append(
            {
                "days": size,
                "seed_seconds": round(seed_seconds, 1),
                "measure_seconds": round(measure_seconds, 1),
                "reseed_expired_seconds": round(reseed_seconds, 1),
                "tables": facts,
                "figures": figures,
                "purge": purge,
            }
        )

    first, final = steps[0], steps[-1]
    # largest / smallest; with three sizes or more also largest / second (a 7-day range is full from 7 days on)
    pairs = [(0, len(sizes) - 1)] + ([(1, len(sizes) - 1)] if len(sizes) > 2 else [])
    ratio_heads = "".join(f" {sizes[b]} d / {sizes[a]} d |" for a, b in pairs)
    print()
    print(
        f"History of {t.per_task * 24:,} elements a day; best of {args.repeat} after a warm-up "
        f"({QUICK_REPEAT} for figures under {QUICK_SECONDS * 1000:.0f} ms)."
    )
    print()
    print(
        "| figure | " + " | ".join(f"{s} d" for s in sizes) + f" |{ratio_heads} full scans (EXPLAIN, {sizes[-1]} d) |"
    )
    print("|---|" + "---|" * (len(sizes) + len(pairs)) + "---|")
    rows = []
    series = {name: [s["figures"][name]["seconds"] for s in steps] for name in first["figures"]}
    series["retention.purge, one expired day"] = [s["purge"]["seconds"] for s in steps]
    for name, times in series.items():
        ratios = [times[b] / times[a] for a, b in pairs]
        entry = final["figures"].get(name, final["purge"])
        rows.append({"figure": name, "seconds": dict(zip(sizes, times, strict=True)),
                     "ratios": {f"{sizes[b]}/{sizes[a]}": round(x, 2) for (a, b), x in zip(pairs, ratios, strict=True)},
                     "scans": entry.get("scans", [])})  # fmt: skip
        print(
            f"| {name} | "
            + " | ".join(_fmt(x) for x in times)
            + " | "
            + " | ".join(f"{x:.2f}x" for x in ratios)
            + f" | {_scan_text(entry)} |"
        )
    print()
    print("| retention.purge of one day | " + " | ".join(f"{s} d" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for label, key, fmt in (
        ("seconds", "seconds", lambda v: f"{v:.2f} s"),
        ("rows/s", "rows_per_second", lambda v: f"{v:,}"),
        ("DELETE batches", "batches", lambda v: f"{v:,}"),
        ("median batch", "median_batch_seconds", lambda v: f"{v * 1000:.0f} ms"),
        ("longest batch (longest lock hold)", "longest_batch_seconds", lambda v: f"{v * 1000:.0f} ms"),
    ):
        print(f"| {label} | " + " | ".join(fmt(s["purge"][key]) for s in steps) + " |")
    print()
    print("| table | " + " | ".join(f"{s} d" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for table in GROWING:
        print(
            f"| {table} | "
            + " | ".join(f"{s['tables'][table]['rows']:,} rows, {s['tables'][table]['mb']:,.0f} MB" for s in steps)
            + " |"
        )
    print()
    print(f"EXPLAIN at {sizes[-1]} days of each statement reading the manifest or the results (access, key, ~rows):")
    for name, entry in [*final["figures"].items(), ("retention.purge", final["purge"])]:
        for item in entry.get("plans", []):
            if not any(w in item["statement"] for w in ("amazon_task_element", RESULTS)):
                continue
            text = "; ".join(
                f"{p['table']}: {p['type']} {p['key'] or '-'} ~{p['rows']}" if p["table"] else str(p["extra"])
                for p in item["plan"]
            )
            print(f"  {name}: {item['statement'][:90]}...\n      {text}")
    total = time.perf_counter() - began
    print()
    per_step = ", ".join(f"{s['days']} d: {s['seed_seconds']} s" for s in steps)
    print(f"seeding {seed_total:.1f} s in all (setup {setup_seconds:.1f} s; {per_step}); total {total:.1f} s")
    if args.elements_per_day < FULL_ELEMENTS_PER_DAY:
        print(f"note: {t.per_task * 24:,} elements a day, not the full size ({FULL_ELEMENTS_PER_DAY:,}, the default)")
    path = write_result(
        "history",
        {
            "benchmark": "history",
            "elements_per_day": t.per_task * 24,
            "elements_per_task": t.per_task,
            "result_rows_per_element": 1,
            "sizes_days": sizes,
            "repeat": args.repeat,
            "current_hour": t.current.isoformat(),
            "manifest_days": keep_days,
            "figures": rows,
            "purge": {s["days"]: s["purge"] for s in steps},
            "steps": steps,
            "seed_seconds": round(seed_total, 1),
            "total_seconds": round(total, 1),
        },
    )
    print(f"wrote {path}")
    if not args.keep:
        with conn.cursor() as cur:
            for table in EMPTIED:
                cur.execute(f"TRUNCATE TABLE {table}")
        conn.commit()
        r.flushdb()
    r.close()
    conn.close()


if __name__ == "__main__":
    main()
