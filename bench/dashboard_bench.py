"""Crawl Ops page benchmark: every endpoint over HTTP on 1M task rows and 10M result rows, against its floor.

    python -m bench.dashboard_bench             # loads what is missing, then measures (minutes the first time)
    python -m bench.dashboard_bench --reload    # reload the task rows and the small tables even if present

Requirement: with 1M task rows and 10M result rows the page's endpoints answer in under 1 s each.

Ours: each endpoint through the FastAPI app (``crawlops_airflow.dashboard.create_app`` with the
login swapped for ``lambda: None``) over ``TestClient``: the request's MySQL connection (Airflow
connection ``crawl_mysql``) and Redis client, the queries, pydantic validation and JSON. Median
and max of ``--repeat`` requests after one warm-up, for the 24 hours ending at the newest hour of
the result data and for the 7 days ending there. Floor, measured in the same run: the bare SQL an
endpoint cannot avoid, on a plain MySQLdb connection that is already open (tasks: one GROUP BY
over the range, without the retry join; volume: the rollup SELECT plus the live count of the hours
the rollup lacks; alerts: the by-level GROUP BY and the LIMIT query; ...). Also measured: volume
counted live for the whole range (the rollup rows deleted inside a transaction that is rolled
back), the cost the rollup saves. Every endpoint statement is EXPLAINed; full scans are reported.

Data, in database ``crawlops_bench`` (Redis db ``CRAWLOPS_BENCH_DASHBOARD_REDIS_DB``, default 12):

- amazon_search_result: validation_bench's 10M rows (40k an hour over 250 hours), reused if present;
- amazon_task_information: 1M rows, ~114 an hour over the 365 days ending at the newest result
  hour, by INSERT ... SELECT from a number series: 4% Failed each with its ``<task_id>_fail``
  retry row (a quarter of those retries Dead), 0.1% Failed awaiting their retry, the rest
  Completed, and the newest hours' tasks Pending / In Progress (some with Redis sets);
- per result hour: a suite run (10% failed), check rows (volume_anomaly, schema_drift,
  completeness, quarantine_invalid, twelve 5-minute task_health), a volume rollup row (all but
  the newest 3 hours), 20 alerts; one daily report per complete day.

dispatch_bench and health_bench empty amazon_task_information, so under ``make bench`` the task
rows are reloaded each time (about a minute); the 10M result rows are validation_bench's and stay.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bench.common import BENCH_MYSQL_URL, bench_mysql, bench_redis, write_result
from bench.validation_bench import CHUNK, FIRST_HOUR, PER_HOUR, _series, hours_for
from bench.validation_bench import TABLE as RESULTS_TABLE
from bench.validation_bench import load as load_results
from bench.validation_bench import loaded as results_loaded
from crawlops import dashboard
from crawlops.model import UTC
from crawlops.report import model as rm

ROOT = Path(__file__).resolve().parents[1]
RESULT_ROWS = 10_000_000
RESULT_HOURS = hours_for(RESULT_ROWS)
NEWEST_HOUR = FIRST_HOUR + dt.timedelta(hours=RESULT_HOURS - 1)  # naive UTC, as stored
TASK_ROWS = 1_000_000
TASK_HOURS = 365 * 24
FIRST_TASK_HOUR = NEWEST_HOUR - dt.timedelta(hours=TASK_HOURS - 1)
TASK_MARKER = "bench-dashboard-v3"  # redis_epoch of every loaded task row doubles as the data-set marker
SEED_MARKER = "bench-dashboard-seed-v2"  # alert fingerprints are SHA1(<marker>-<n>): a new marker reseeds
UNJUDGED_HOURS = 3  # the newest hours without a rollup row: the volume endpoint counts them live
ALERTS_PER_HOUR = 20
HOURLY_CHECKS = ("volume_anomaly", "completeness", "schema_drift", "quarantine_invalid")
HEALTH_CHECKS_PER_HOUR = 12
SUITE = "amazon_search_result"
QUEUED_TASKS, QUEUED_MEMBERS, FAILED_TASKS, FAILED_MEMBERS = 20, 50, 5, 3
RANGES = {"24 h": dt.timedelta(hours=24), "7 d": dt.timedelta(days=7)}
ENDPOINTS = (  # (path, takes a range)
    ("/api/overview", True),
    ("/api/tasks/hourly", True),
    ("/api/quality/hourly", True),
    ("/api/volume/hourly", True),
    ("/api/alerts", True),
    ("/api/report/latest", False),
    ("/", False),
)
BIG_TABLES = ("amazon_task_information", "amazon_search_result")


def _dag_run_id(column: str) -> str:
    """SQL for a scheduled run id of the hour in ``column``: scheduled__2026-11-12T09:00:00+00:00."""
    return f"CONCAT('scheduled__', REPLACE(CAST({column} AS CHAR), ' ', 'T'), '+00:00')"


# ---------------------------------------------------------------------------------------
# Loading


def tasks_loaded(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*), SUM(redis_epoch = %s), MIN(interval_start), MAX(interval_start) "
            "FROM amazon_task_information",
            (TASK_MARKER,),
        )
        count, marked, first, last = cur.fetchone()
    return count == TASK_ROWS and int(marked or 0) == TASK_ROWS and (first, last) == (FIRST_TASK_HOUR, NEWEST_HOUR)


def load_tasks(conn) -> float:
    """1M task rows from a number series; returns the seconds it took.

    Row n belongs to pair base b (b = n - 1 for a retry row, n MOD 25 = 24, else n) and its hour is
    b * TASK_HOURS DIV TASK_ROWS, so a retry row shares its source's window (as record_retry_task
    writes it). Within an hour the b are consecutive (at most 115), so ``b MOD 200`` names a task
    uniquely there: ids look like ``search_result_1794474000_hourly_042`` and ``..._042_fail``.
    """
    started = time.perf_counter()
    newest = TASK_HOURS - 1
    status = (
        "CASE WHEN kind = 'source' THEN 'Failed' "
        f"WHEN h = {newest} THEN IF(n MOD 2 = 0, 'Pending', 'In Progress') "
        f"WHEN h = {newest - 2} AND n MOD 4 = 0 THEN 'In Progress' "
        "WHEN kind = 'retry' THEN IF(n MOD 100 = 99, 'Dead', 'Completed') "
        "WHEN n MOD 1000 = 510 THEN 'Failed' ELSE 'Completed' END"
    )
    with conn.cursor() as cur:
        cur.execute("TRUNCATE TABLE amazon_task_information")
        cur.execute("SET SESSION unique_checks = 0")
        for offset in range(0, TASK_ROWS, CHUNK):
            size = min(CHUNK, TASK_ROWS - offset)
            cur.execute(
                "INSERT INTO amazon_task_information (task_id, task_type, task_source, root_task_id, frequency, "  # noqa: S608 - constants
                "task_status, element_count, remaining_count, failed_count, retry_count, interval_start, "
                "interval_end, redis_epoch, push_count, pushed_at, started_at, progress_at, finished_at, settled_at, "
                "last_error, dag_run_id, created_at) "
                "SELECT IF(kind = 'retry', CONCAT(base_id, '_fail'), base_id), task_type, "
                "IF(kind = 'retry', base_id, NULL), base_id, 'hourly', status, elements, "
                "IF(status IN ('Pending', 'In Progress'), elements DIV 2, 0), "
                "IF(status IN ('Failed', 'Dead'), 1 + n MOD 9, 0), kind = 'retry', hour, hour + INTERVAL 1 HOUR, %s, "
                "1, hour + INTERVAL 1 MINUTE, hour + INTERVAL 2 MINUTE, hour + INTERVAL 20 MINUTE, "
                "IF(status IN ('Pending', 'In Progress'), NULL, "
                "hour + INTERVAL (IF(kind = 'retry', 45, 30) + n MOD 10) MINUTE), "
                # settled by the next supervision run, as every finished task is
                "IF(status IN ('Pending', 'In Progress'), NULL, "
                "hour + INTERVAL (IF(kind = 'retry', 50, 35) + n MOD 10) MINUTE), "
                "IF(status IN ('Failed', 'Dead'), CONCAT(1 + n MOD 9, ' elements failed'), NULL), "
                f"{_dag_run_id('hour')}, hour + INTERVAL IF(kind = 'retry', 41, 0) MINUTE "
                "FROM (SELECT n, kind, hour, task_type, elements, "
                "CONCAT(task_type, '_', UNIX_TIMESTAMP(hour), '_hourly_', LPAD(b MOD 200, 3, '0')) AS base_id, "
                f"{status} AS status "
                "FROM (SELECT n, b, kind, b * %s DIV %s AS h, %s + INTERVAL (b * %s DIV %s) HOUR AS hour, "
                "ELT(1 + b MOD 4, 'search_result', 'product_detail', 'product_review', 'offer_listing') AS task_type, "
                "IF(kind = 'retry', 5 + n MOD 20, 200 + b MOD 300) AS elements "
                "FROM (SELECT m AS n, IF(m MOD 25 = 24, m - 1, m) AS b, "
                "CASE m MOD 25 WHEN 24 THEN 'retry' WHEN 23 THEN 'source' ELSE 'plain' END AS kind "
                f"FROM (SELECT n + %s AS m FROM {_series(CHUNK)} AS s WHERE n < %s) AS t) AS p) AS q) AS r",
                (TASK_MARKER, TASK_HOURS, TASK_ROWS, FIRST_TASK_HOUR, TASK_HOURS, TASK_ROWS, offset, size),
            )
            conn.commit()
        cur.execute("SET SESSION unique_checks = 1")
        cur.execute("ANALYZE TABLE amazon_task_information")
        cur.fetchall()
    return time.perf_counter() - started


def _suite_results(failed: bool) -> str:
    """A results document shaped like ValidationReport.to_json (the page reads the failed outcome names)."""
    suite = json.loads((ROOT / "include" / "expectations" / f"{SUITE}.json").read_text("utf-8"))
    outcomes = [
        {
            "name": e["meta"]["name"],
            "expectation_type": e["type"],
            "column": e["kwargs"].get("column"),
            "success": not (failed and e["meta"]["name"] == "price_non_negative"),
            "unexpected_count": 0,
        }
        for e in suite["expectations"]
    ]
    return json.dumps({"suite_name": SUITE, "table": RESULTS_TABLE, "outcomes": outcomes}, sort_keys=True)


def _expectation_count() -> int:
    return len(json.loads(_suite_results(False))["outcomes"])


def report_days() -> list[dt.date]:
    """Every day of the result data that has closed (the newest, partial day has no report yet)."""
    first, end = FIRST_HOUR.date(), (NEWEST_HOUR + dt.timedelta(hours=1)).date()
    return [first + dt.timedelta(days=k) for k in range((end - first).days)]


def expected_small_rows() -> dict[str, int]:
    return {
        "amazon_validation_run": RESULT_HOURS,
        "amazon_check_run": RESULT_HOURS * (len(HOURLY_CHECKS) + HEALTH_CHECKS_PER_HOUR),
        "amazon_volume_hourly": RESULT_HOURS - UNJUDGED_HOURS,
        "amazon_alert": RESULT_HOURS * ALERTS_PER_HOUR,
        "amazon_daily_report": len(report_days()),
    }


def seeded(conn) -> bool:
    with conn.cursor() as cur:
        counts = {}
        for table in expected_small_rows():
            cur.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - constant table names
            counts[table] = cur.fetchone()[0]
        cur.execute("SELECT MAX(hour), SUM(row_count) FROM amazon_volume_hourly")
        newest, rows = cur.fetchone()
        cur.execute("SELECT COUNT(*) FROM amazon_alert WHERE fingerprint = SHA1(CONCAT(%s, '-0'))", (SEED_MARKER,))
        marked = cur.fetchone()[0]
    judged = RESULT_HOURS - UNJUDGED_HOURS
    return (
        marked == 1
        and counts == expected_small_rows()
        and newest == NEWEST_HOUR - dt.timedelta(hours=UNJUDGED_HOURS)
        and rows == judged * PER_HOUR
    )


def seed(conn) -> float:
    """The per-hour tables the page reads besides tasks and results; returns the seconds it took."""
    started = time.perf_counter()
    hours, first = RESULT_HOURS, FIRST_HOUR
    with conn.cursor() as cur:
        for table in expected_small_rows():
            cur.execute(f"TRUNCATE TABLE {table}")
        # One suite run per hour, every tenth failed on price_non_negative.
        cur.execute(
            "INSERT INTO amazon_validation_run (suite_name, table_name, window_start, window_end, success, "  # noqa: S608
            "evaluated, failed, row_count, results, dag_run_id, validated_at) "
            "SELECT %s, %s, hour, hour + INTERVAL 1 HOUR, ok, %s, 1 - ok, %s, IF(ok, %s, %s), "
            f"{_dag_run_id('hour + INTERVAL 1 HOUR')}, hour + INTERVAL 65 MINUTE "
            f"FROM (SELECT %s + INTERVAL n HOUR AS hour, n MOD 10 <> 3 AS ok FROM {_series(1000)} AS s "
            "WHERE n < %s) AS t",
            (
                SUITE,
                RESULTS_TABLE,
                _expectation_count(),
                PER_HOUR,
                _suite_results(False),
                _suite_results(True),
                first,
                hours,
            ),
        )
        # Per hour w: the four hourly checks of [w, w+1), check j failing when (w + j) MOD 6 = 0 (its
        # alert is raised in hour w + 1, see below), and twelve 5-minute task_health windows.
        per_hour = len(HOURLY_CHECKS) + HEALTH_CHECKS_PER_HOUR
        checks = ", ".join(f"'{c}'" for c in HOURLY_CHECKS)
        cur.execute(
            "INSERT INTO amazon_check_run (check_name, window_start, window_end, status, findings, details, "  # noqa: S608
            "dag_run_id, checked_at) "
            "SELECT name, ws, we, status, IF(status = 'fail', 1, 0), CONCAT('{\"bench\": ', n, '}'), "
            f"{_dag_run_id('we')}, we + INTERVAL 1 MINUTE "
            "FROM (SELECT n, "
            f"IF(c < {len(HOURLY_CHECKS)}, ELT(1 + c, {checks}), 'task_health') AS name, "
            f"IF(c < {len(HOURLY_CHECKS)}, hour, hour + INTERVAL ((c - {len(HOURLY_CHECKS)}) * 5) MINUTE) AS ws, "
            f"IF(c < {len(HOURLY_CHECKS)}, hour + INTERVAL 1 HOUR, "
            f"hour + INTERVAL ((c - {len(HOURLY_CHECKS)} + 1) * 5) MINUTE) AS we, "
            f"CASE WHEN c >= {len(HOURLY_CHECKS)} THEN IF(c - {len(HOURLY_CHECKS)} <= 4, 'fail', 'pass') "
            "WHEN (w + c) MOD 6 = 0 AND w < %s THEN 'fail' WHEN c = 3 AND w MOD 5 = 0 THEN 'repaired' "
            "ELSE 'pass' END AS status "
            "FROM (SELECT n, n DIV %s AS w, n MOD %s AS c, %s + INTERVAL (n DIV %s) HOUR AS hour "
            f"FROM {_series(10_000)} AS s WHERE n < %s) AS t) AS u",
            (hours - 1, per_hour, per_hour, first, per_hour, hours * per_hour),
        )
        # The rollup the volume check writes at each hour's close: the real counts, all but the newest hours.
        cur.execute(
            "INSERT INTO amazon_volume_hourly (table_name, hour, row_count, history_points, mean, std, band_low, "  # noqa: S608
            "band_high, anomalous, direction, dag_run_id, checked_at) "
            "SELECT %s, create_hour, COUNT(*), 2, 40100, 300, 39200, 41000, "
            "IF(HOUR(create_hour) = 3 AND DAYOFMONTH(create_hour) MOD 4 = 0, 1, 0), "
            "IF(HOUR(create_hour) = 3 AND DAYOFMONTH(create_hour) MOD 4 = 0, 'drop', NULL), "
            f"{_dag_run_id('create_hour + INTERVAL 1 HOUR')}, create_hour + INTERVAL 61 MINUTE "
            f"FROM {RESULTS_TABLE} WHERE create_hour >= %s AND create_hour < %s GROUP BY create_hour",
            (RESULTS_TABLE, first, NEWEST_HOUR - dt.timedelta(hours=UNJUDGED_HOURS - 1)),
        )
        # a check's findings carry their own check name (completeness: missing_data, ...), as the DAG stores them
        finding_checks = ", ".join(f"'{dashboard.FINDINGS_OF_CHECK.get(c, (c,))[0]}'" for c in HOURLY_CHECKS)
        # 20 alerts an hour, created every 3 minutes: 8 from task health (5-minute windows), 8 skipped
        # config rows from dispatch (INFO), and 4 that are the findings of the previous hour's hourly
        # checks when those failed (else INFO system findings, now and then a CRITICAL dead task).
        cur.execute(
            "INSERT INTO amazon_alert (level, source, check_name, subject, title, details, action_taken, "  # noqa: S608
            "fingerprint, window_start, window_end, dag_run_id, created_at, delivery_status, delivery_attempts, "
            "delivered_at) "
            "SELECT level, source, check_name, subject, CONCAT(subject, ': ', check_name, ' finding ', n), "
            "CONCAT('{\"bench\": ', n, '}'), NULL, SHA1(CONCAT(%s, '-', n)), ws, we, "
            f"{_dag_run_id('hour')}, created_at, IF(level = 'INFO', 'stored', 'delivered'), level <> 'INFO', "
            "IF(level = 'INFO', NULL, created_at + INTERVAL 2 SECOND) "
            "FROM (SELECT n, hour, created_at, "
            "CASE WHEN k < 8 THEN IF(k MOD 3 = 1, 'ERROR', 'WARNING') WHEN k < 16 THEN 'INFO' "
            "WHEN on_check THEN ELT(k - 15, 'ERROR', 'WARNING', 'ERROR', 'WARNING') "
            "WHEN n MOD 97 = 0 THEN 'CRITICAL' ELSE 'INFO' END AS level, "
            "IF(k >= 8 AND k < 16, 'amazon_task_dispatch', 'amazon_data_supervision') AS source, "
            "CASE WHEN k < 8 THEN ELT(1 + k MOD 3, 'task_stalled', 'task_timeout', 'success_rate') "
            "WHEN k < 16 THEN 'config_invalid' "
            f"WHEN on_check THEN ELT(k - 15, {finding_checks}) "
            "WHEN n MOD 97 = 0 THEN 'task_dead' ELSE 'redis_memory' END AS check_name, "
            "CASE WHEN k < 8 THEN CONCAT('search_result_', UNIX_TIMESTAMP(hour), '_hourly_', LPAD(k, 3, '0')) "
            "WHEN k < 16 THEN CONCAT('config row ', n) WHEN on_check THEN %s ELSE 'redis' END AS subject, "
            "CASE WHEN k < 8 THEN created_at - INTERVAL MINUTE(created_at) MOD 5 MINUTE "
            "- INTERVAL SECOND(created_at) SECOND "
            "WHEN on_check THEN hour - INTERVAL 1 HOUR ELSE hour END AS ws, "
            "CASE WHEN k < 8 THEN created_at - INTERVAL MINUTE(created_at) MOD 5 MINUTE "
            "- INTERVAL SECOND(created_at) SECOND + INTERVAL 5 MINUTE "
            "WHEN on_check THEN hour ELSE hour + INTERVAL 1 HOUR END AS we "
            "FROM (SELECT n, k, hour, hour + INTERVAL (k * 180 + (n * 37) MOD 170) SECOND AS created_at, "
            "(k >= 16 AND h > 0 AND (h - 1 + k - 16) MOD 6 = 0) AS on_check "
            "FROM (SELECT n, n DIV %s AS h, n MOD %s AS k, %s + INTERVAL (n DIV %s) HOUR AS hour "
            f"FROM {_series(10_000)} AS s WHERE n < %s) AS t) AS u) AS v",
            (
                SEED_MARKER,
                RESULTS_TABLE,
                ALERTS_PER_HOUR,
                ALERTS_PER_HOUR,
                first,
                ALERTS_PER_HOUR,
                hours * ALERTS_PER_HOUR,
            ),
        )
        # One small report per closed day.
        rows = []
        for day in report_days():
            # A slimmed summary, as report.summary_json stores a long one.
            entry = rm.TaskCounts(tasks=685, dispatched=685, completed=630, failed=27, retried=27, dead=1)
            total = rm.TaskCounts(tasks=2740, dispatched=2740, completed=2520, failed=108, retried=108, dead=4)
            data = rm.ReportData(
                title=f"Crawl daily report {day}",
                day=day.isoformat(),
                timezone="UTC",
                window=rm.Span(f"{day}T00:00:00+00:00", f"{day + dt.timedelta(days=1)}T00:00:00+00:00"),
                generated_at=f"{day + dt.timedelta(days=1)}T00:05:00+00:00",
                hours=[f"{h:02d}:00" for h in range(24)],
                tasks=rm.TaskStatistics(
                    {t: entry for t in ("offer_listing", "product_detail", "product_review", "search_result")}, total
                ),
                quality=rm.Quality({SUITE: rm.SuiteQuality(SUITE, SUITE, passed=22, failed=2)}, passed=22, failed=2),
                volume=rm.Volume(RESULTS_TABLE, 3.0, total_rows=24 * PER_HOUR),
                alerts=rm.Alerts(480, {"CRITICAL": 0, "ERROR": 60, "WARNING": 110, "INFO": 310}),
                system=rm.SystemHealth(),
                truncated=True,
            )
            summary = data.to_json()
            markdown = f"# {summary['title']}\n\n- tasks: 2740\n- rows: {24 * PER_HOUR:,}\n"
            html = f"<!doctype html><title>{summary['title']}</title><h1>{summary['title']}</h1><p>2740 tasks</p>"
            run = f"scheduled__{day + dt.timedelta(days=1)}T00:00:00+00:00"
            created = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 5))
            rows.append((day, markdown, html, json.dumps(summary, sort_keys=True), run, created))
        cur.executemany(
            "INSERT INTO amazon_daily_report (report_date, markdown, html, summary, dag_run_id, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )
        for table in expected_small_rows():
            cur.execute(f"ANALYZE TABLE {table}")
            cur.fetchall()
    conn.commit()
    return time.perf_counter() - started


def fill_redis(conn, r) -> tuple[int, int]:
    """Sets for a few open tasks (members queued, failed members waiting); returns their member counts."""
    r.flushdb()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_id FROM amazon_task_information WHERE task_status IN ('Pending', 'In Progress') "
            "ORDER BY task_id LIMIT %s",
            (QUEUED_TASKS,),
        )
        open_ids = [row[0] for row in cur.fetchall()]

    def members(prefix: str, count: int) -> list[str]:
        return [json.dumps({"keyword": f"{prefix} {j}", "marketplace": "US", "page": 1}) for j in range(count)]

    pipe = r.pipeline(transaction=False)
    for i, task_id in enumerate(open_ids):
        pipe.sadd(task_id, *members(task_id, QUEUED_MEMBERS))
        if i < FAILED_TASKS:
            pipe.sadd(task_id + "_fail", *members(task_id + " failed", FAILED_MEMBERS))
    pipe.execute()
    return len(open_ids) * QUEUED_MEMBERS, min(FAILED_TASKS, len(open_ids)) * FAILED_MEMBERS


# ---------------------------------------------------------------------------------------
# Floors: the bare SQL each endpoint cannot avoid, on an open connection


def _fetch(cur, sql: str, params: tuple = ()) -> list[tuple]:
    cur.execute(sql, params)
    return list(cur.fetchall())


def floor_overview(conn, r, span: dashboard.HourRange) -> Any:
    start, end = span.naive()
    with conn.cursor() as cur:
        by_status = _fetch(
            cur,
            "SELECT task_status, COUNT(*) FROM amazon_task_information "
            "WHERE interval_start >= %s AND interval_start < %s GROUP BY task_status",
            (start, end),
        )
        open_tasks = _fetch(
            cur,
            "SELECT task_id, task_type FROM amazon_task_information WHERE task_status IN ('Pending', 'In Progress')",
        )
    pipe = r.pipeline(transaction=False)
    for task_id, _ in open_tasks:
        pipe.scard(task_id)
        pipe.scard(task_id + "_fail")
    return by_status, open_tasks, pipe.execute()


def floor_tasks(conn, r, span: dashboard.HourRange) -> Any:
    with conn.cursor() as cur:
        return _fetch(
            cur,
            "SELECT interval_start, task_status, COUNT(*) FROM amazon_task_information "
            "WHERE interval_start >= %s AND interval_start < %s GROUP BY interval_start, task_status",
            span.naive(),
        )


def floor_quality(conn, r, span: dashboard.HourRange) -> Any:
    start, end = span.naive()
    with conn.cursor() as cur:
        runs = _fetch(
            cur,
            "SELECT suite_name, table_name, window_start, success, evaluated, failed, row_count, results, dag_run_id "
            "FROM amazon_validation_run WHERE window_start >= %s AND window_start < %s",
            (start, end),
        )
        checks = _fetch(
            cur,
            "SELECT check_name, window_start, status, findings, dag_run_id FROM amazon_check_run "
            "WHERE window_end > %s AND window_end <= %s AND window_end = window_start + INTERVAL 1 HOUR",
            (start, end),
        )
    return runs, checks


def floor_volume(conn, r, span: dashboard.HourRange) -> Any:
    start, end = span.naive()
    with conn.cursor() as cur:
        judged = _fetch(
            cur,
            "SELECT hour, row_count, history_points, mean, band_low, band_high, anomalous, direction "
            "FROM amazon_volume_hourly WHERE table_name = %s AND hour >= %s AND hour < %s",
            (RESULTS_TABLE, start, end),
        )
        have = {row[0] for row in judged}
        missing = [h.replace(tzinfo=None) for h in span.hours if h.replace(tzinfo=None) not in have]
        live = _fetch(
            cur,
            f"SELECT create_hour, COUNT(*) FROM {RESULTS_TABLE} WHERE create_hour IN ("  # noqa: S608
            + ", ".join(["%s"] * len(missing))
            + ") GROUP BY create_hour",
            tuple(missing),
        )
    return judged, live


def floor_alerts(conn, r, span: dashboard.HourRange) -> Any:
    start, end = span.naive()
    with conn.cursor() as cur:
        by_level = _fetch(
            cur,
            "SELECT level, COUNT(*) FROM amazon_alert WHERE created_at >= %s AND created_at < %s GROUP BY level",
            (start, end),
        )
        newest = _fetch(
            cur,
            "SELECT id, level, source, check_name, subject, title, window_start, window_end, created_at, "
            "dag_run_id, delivery_status FROM amazon_alert WHERE created_at >= %s AND created_at < %s "
            "ORDER BY created_at DESC, id DESC LIMIT %s",
            (start, end, dashboard.ALERT_LIMIT),
        )
    return by_level, newest


def floor_report(conn, r, span: dashboard.HourRange) -> Any:
    with conn.cursor() as cur:
        return _fetch(
            cur,
            "SELECT report_date, created_at, dag_run_id, summary FROM amazon_daily_report "
            "ORDER BY report_date DESC LIMIT 1",
        )


def floor_page(conn, r, span: dashboard.HourRange) -> Any:
    from crawlops_airflow.dashboard import PAGE

    return PAGE.read_text("utf-8")


FLOORS = {
    "/api/overview": (floor_overview, "status GROUP BY + open tasks SELECT + SCARD pipeline"),
    "/api/tasks/hourly": (floor_tasks, "one GROUP BY over the range (no retry join)"),
    "/api/quality/hourly": (floor_quality, "suite runs + check rows SELECTs (no alert titles)"),
    "/api/volume/hourly": (floor_volume, "rollup SELECT + live count of the unjudged hours"),
    "/api/alerts": (floor_alerts, "by-level GROUP BY + LIMIT query"),
    "/api/report/latest": (floor_report, "newest report row"),
    "/": (floor_page, "read the HTML file"),
}


# ---------------------------------------------------------------------------------------
# Measuring


def timed(fn, repeat: int) -> tuple[list[float], Any]:
    """``repeat`` timed calls after one warm-up; returns the times and the last result."""
    result = fn()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return runs, result


class _RecordingCursor:
    """A cursor that keeps the text of every statement it executes (MySQLdb's ``_executed``)."""

    def __init__(self, cur, statements: list[str]):
        self._cur, self._statements = cur, statements

    def execute(self, query, args=None):
        result = self._cur.execute(query, args)
        executed = self._cur._executed
        self._statements.append(executed.decode() if isinstance(executed, bytes) else str(executed))
        return result

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._cur.close()

    def __getattr__(self, name):
        return getattr(self._cur, name)


class _Recorder:
    def __init__(self, conn):
        self._conn, self.statements = conn, []

    def cursor(self):
        return _RecordingCursor(self._conn.cursor(), self.statements)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def endpoint_statements(conn, r, path: str, span: dashboard.HourRange) -> list[str]:
    recorder = _Recorder(conn)
    calls = {
        "/api/overview": lambda: dashboard.overview(recorder, r, span),
        "/api/tasks/hourly": lambda: dashboard.tasks_by_hour(recorder, span),
        "/api/quality/hourly": lambda: dashboard.quality_by_hour(recorder, span),
        "/api/volume/hourly": lambda: dashboard.volume_by_hour(recorder, span),
        "/api/alerts": lambda: dashboard.alerts(recorder, span),
        "/api/report/latest": lambda: dashboard.latest_report(recorder),
    }
    if path in calls:
        calls[path]()
    return recorder.statements


def explain(conn, statement: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + statement)
        names = [d[0] for d in cur.description]
        plan = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    return [
        {
            "select_type": p.get("select_type"),
            "table": p.get("table"),
            "type": p.get("type"),
            "key": p.get("key"),
            "rows": None if p.get("rows") is None else int(str(p["rows"]).split()[0]),  # MariaDB: "1 (0%)" too
            "extra": p.get("Extra"),
        }
        for p in plan
    ]


def _real_table(statement: str, alias: str | None) -> str | None:
    """The table an EXPLAIN row's alias stands for in ``statement`` (``amazon_x t`` or ``amazon_x``)."""
    if alias is None:
        return None
    for table in (*BIG_TABLES, "amazon_alert", "amazon_check_run", "amazon_validation_run", "amazon_volume_hourly",
                  "amazon_daily_report"):  # fmt: skip
        if alias == table or f"{table} {alias} " in statement + " ":
            return table
    return alias


def full_scans(statement: str, plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plan rows that read a whole table (ALL) or a whole index (index)."""
    return [{**p, "real_table": _real_table(statement, p["table"])} for p in plan if p["type"] in ("ALL", "index")]


def count_live(conn, span: dashboard.HourRange, repeat: int) -> tuple[list[float], dict[str, Any], list[str]]:
    """volume_by_hour with the range's rollup rows deleted (rolled back afterwards): every hour counted live.

    The page counts at most ``dashboard.LIVE_HOURS_MAX`` hours live; lifted here to show the cost of the
    whole range, the cost the rollup (and the cap) save.
    """
    start, end = span.naive()
    cap, dashboard.LIVE_HOURS_MAX = dashboard.LIVE_HOURS_MAX, len(span.hours)
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM amazon_volume_hourly WHERE table_name = %s AND hour >= %s AND hour < %s",
            (RESULTS_TABLE, start, end),
        )
    try:
        recorder = _Recorder(conn)
        runs, result = timed(lambda: dashboard.volume_by_hour(recorder, span), repeat)
    finally:
        conn.rollback()
        dashboard.LIVE_HOURS_MAX = cap
    return runs, result, recorder.statements[-1:]


def span_for(length: dt.timedelta) -> dashboard.HourRange:
    end = (NEWEST_HOUR + dt.timedelta(hours=1)).replace(tzinfo=UTC)
    return dashboard.HourRange.of(end - length, end)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


# ---------------------------------------------------------------------------------------


def configure_airflow(mysql_url: str, redis_db: int) -> None:
    """Point the app's Airflow connections at the bench database and Redis db (overriding the Makefile's)."""
    parts = urlsplit(mysql_url)
    os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
    os.environ["AIRFLOW_CONN_CRAWL_MYSQL"] = json.dumps(
        {
            "conn_type": "mysql",
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 3306,
            "login": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "schema": parts.path.lstrip("/"),
            "extra": {"charset": "utf8mb4"},
        }
    )
    os.environ["AIRFLOW_CONN_CRAWL_REDIS"] = json.dumps(
        {"conn_type": "redis", "host": "127.0.0.1", "port": 6379, "extra": {"db": redis_db}}
    )


def check_results(conn, span: dashboard.HourRange, responses: dict[str, Any], queued: tuple[int, int]) -> None:
    """The endpoints' numbers against independent queries."""
    start, end = span.naive()
    hours = len(span.hours)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_status, COUNT(*) FROM amazon_task_information "
            "WHERE interval_start >= %s AND interval_start < %s GROUP BY task_status",
            (start, end),
        )
        by_status = {str(s): int(n) for s, n in cur.fetchall()}
        cur.execute(
            "SELECT COUNT(*) FROM amazon_task_information t WHERE interval_start >= %s AND interval_start < %s "
            "AND task_status = 'Failed' AND EXISTS (SELECT 1 FROM amazon_task_information r "
            "WHERE r.task_id = CONCAT(t.task_id, '_fail'))",
            (start, end),
        )
        retried = int(cur.fetchone()[0])
        cur.execute("SELECT COUNT(*) FROM amazon_task_information WHERE task_status IN ('Pending', 'In Progress')")
        open_now = int(cur.fetchone()[0])
        cur.execute(
            "SELECT COUNT(*), SUM(success = 0) FROM amazon_validation_run "
            "WHERE window_start >= %s AND window_start < %s",
            (start, end),
        )
        runs, failed_runs = (int(v or 0) for v in cur.fetchone())
        cur.execute("SELECT COUNT(*) FROM amazon_alert WHERE created_at >= %s AND created_at < %s", (start, end))
        alert_count = int(cur.fetchone()[0])
        cur.execute("SELECT MAX(report_date) FROM amazon_daily_report")
        newest_report = cur.fetchone()[0]
    total = sum(by_status.values())

    overview = responses["/api/overview"]
    assert overview["tasks_total"] == total and {k: v for k, v in overview["status_counts"].items() if v} == by_status
    assert sum(q["open_tasks"] for q in overview["queues"].values()) == open_now > 0, overview["queues"]
    assert overview["queued_total"] == queued[0] and overview["redis_error"] is None, overview
    assert sum(q["failed_waiting"] for q in overview["queues"].values()) == queued[1]

    tasks = responses["/api/tasks/hourly"]
    assert sum(tasks["totals"].values()) == total, (tasks["totals"], total)
    assert tasks["totals"]["completed"] == by_status.get("Completed", 0)
    assert tasks["totals"]["dead"] == by_status.get("Dead", 0)
    assert tasks["totals"]["retried"] == retried and tasks["totals"]["failed"] == by_status.get("Failed", 0) - retried
    per_hour = [sum(tasks["series"][o][i] for o in tasks["outcomes"]) for i in range(hours)]
    # 114 or 115 pair bases an hour; a retry row follows its source across an hour boundary: 113 to 116 rows.
    assert TASK_ROWS // TASK_HOURS - 1 <= min(per_hour) <= max(per_hour) <= TASK_ROWS // TASK_HOURS + 2, per_hour

    quality = responses["/api/quality/hourly"]
    names = {s["name"] for s in quality["strips"]}
    assert names == {SUITE, *HOURLY_CHECKS}, names
    suite = next(s for s in quality["strips"] if s["kind"] == "suite")
    assert suite["failed"] == failed_runs and suite["passed"] == runs - failed_runs, suite
    for strip in quality["strips"]:
        assert strip["passed"] + strip["failed"] + strip["not_run"] == hours and strip["not_run"] == 0, strip["name"]
    failing = [c for s in quality["strips"] if s["kind"] == "check" for c in s["cells"] if c["status"] == "fail"]
    assert failing and all(c["failures"] for c in failing), "a failed check cell lists its alerts' titles"

    volume = responses["/api/volume/hourly"]
    assert volume["total_rows"] == hours * PER_HOUR, volume["total_rows"]
    assert [e["source"] for e in volume["hours"]].count("live") == UNJUDGED_HOURS

    alerts = responses["/api/alerts"]
    assert alerts["total"] == alert_count == hours * ALERTS_PER_HOUR, (alerts["total"], alert_count)
    assert len(alerts["alerts"]) == min(alert_count, dashboard.ALERT_LIMIT) and alerts["truncated"]

    assert responses["/api/report/latest"]["report_date"] == newest_report.isoformat()


def measure_scrape(conn, r, repeat: int) -> dict[str, Any]:
    """One Prometheus scrape's reads (``crawlops.metrics.collect``) against the bare SQL it runs."""
    from crawlops import metrics

    recorder = _Recorder(conn)
    metrics.collect(recorder, r)
    statements = list(recorder.statements)
    runs, families = timed(lambda: metrics.collect(conn, r), repeat)

    def bare() -> None:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
                cur.fetchall()
        conn.rollback()

    floor_runs, _ = timed(bare, repeat)
    big = [s for st in statements for s in full_scans(st, explain(conn, st)) if s["real_table"] in BIG_TABLES]
    median, floor = statistics.median(runs), statistics.median(floor_runs)
    return {
        "median_seconds": round(median, 4),
        "max_seconds": round(max(runs), 4),
        "floor_seconds": round(floor, 4),
        "ratio": round(median / floor, 2),
        "statements": len(statements),
        "families": len(families),
        "samples": sum(len(f.samples) for f in families),
        "full_scans_of_big_tables": len(big),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="timed requests per endpoint after one warm-up")
    parser.add_argument("--live-repeat", type=int, default=3, help="timed live volume counts after one warm-up")
    parser.add_argument("--reload", action="store_true", help="reload the task rows and the small tables")
    args = parser.parse_args()
    began = time.perf_counter()

    mysql_url = os.environ.get("CRAWLOPS_BENCH_MYSQL_URL", BENCH_MYSQL_URL)
    redis_db = int(os.environ.get("CRAWLOPS_BENCH_DASHBOARD_REDIS_DB", "12"))
    conn, r = bench_mysql(mysql_url), bench_redis(redis_db, "CRAWLOPS_BENCH_DASHBOARD_REDIS_DB")

    loads: dict[str, float | None] = {"results": None, "tasks": None, "seed": None}
    started = time.perf_counter()
    if not results_loaded(conn, RESULT_ROWS):
        loads["results"] = load_results(conn, RESULT_ROWS)
    check_seconds = time.perf_counter() - started - (loads["results"] or 0)
    if args.reload or not tasks_loaded(conn):
        loads["tasks"] = load_tasks(conn)
    if args.reload or loads["results"] is not None or not seeded(conn):
        loads["seed"] = seed(conn)
    queued = fill_redis(conn, r)
    conn.commit()
    load_seconds = time.perf_counter() - started
    done = {k: "reused" if v is None else f"loaded in {v:.1f} s" for k, v in loads.items()}
    print(
        f"data: {RESULT_ROWS:,} result rows ({done['results']}), {TASK_ROWS:,} task rows ({done['tasks']}), "
        f"small tables ({done['seed']}); checking what was there took {check_seconds:.1f} s",
        flush=True,
    )

    configure_airflow(mysql_url, redis_db)
    from fastapi.testclient import TestClient

    from crawlops_airflow.dashboard import create_app

    client = TestClient(create_app(reader=lambda: None))
    spans = {name: span_for(length) for name, length in RANGES.items()}

    rows: list[dict[str, Any]] = []
    responses: dict[str, dict[str, Any]] = {name: {} for name in spans}
    for path, ranged in ENDPOINTS:
        for name, span in spans.items() if ranged else [("-", spans["24 h"])]:
            params = {"start": span.start.isoformat(), "end": span.end.isoformat()} if ranged else {}

            def request(path=path, params=params):
                response = client.get(path, params=params)
                assert response.status_code == 200, (path, response.status_code, response.text[:300])
                return response

            runs, response = timed(request, args.repeat)
            fn, what = FLOORS[path]
            floor_runs, _ = timed(lambda fn=fn, span=span: fn(conn, r, span), args.repeat)
            if path.startswith("/api/"):
                for target in spans if not ranged else [name]:
                    responses[target][path] = response.json()
            median, floor = statistics.median(runs), statistics.median(floor_runs)
            rows.append(
                {
                    "endpoint": path,
                    "range": name,
                    "median_seconds": round(median, 4),
                    "max_seconds": round(max(runs), 4),
                    "runs": [round(t, 4) for t in runs],
                    "floor_seconds": round(floor, 4),
                    "floor_max_seconds": round(max(floor_runs), 4),
                    "floor": what,
                    "ratio": round(median / floor, 2),
                    "under_1s": max(runs) < 1.0,
                }
            )
    for name, span in spans.items():
        check_results(conn, span, responses[name], queued)

    live = []
    for name, span in spans.items():
        runs, result, statement = count_live(conn, span, args.live_repeat)
        assert all(e["source"] == "live" for e in result["hours"])
        assert result["total_rows"] == responses[name]["/api/volume/hourly"]["total_rows"], "rollup = live count"
        live.append(
            {
                "range": name,
                "hours": len(span.hours),
                "rows_counted": result["total_rows"],
                "median_seconds": round(statistics.median(runs), 4),
                "max_seconds": round(max(runs), 4),
                "runs": [round(t, 4) for t in runs],
                "statement": statement[0][:200] + " ..." if statement else None,
                "explain": explain(conn, statement[0]) if statement else None,
            }
        )

    scrape = measure_scrape(conn, r, args.repeat)

    plans: dict[str, dict[str, Any]] = {}
    scans = []
    for path, ranged in ENDPOINTS:
        for name, span in spans.items() if ranged else [("-", spans["24 h"])]:
            for i, statement in enumerate(endpoint_statements(conn, r, path, span)):
                plan = explain(conn, statement)
                plans.setdefault(f"{path} {name}", {})[f"statement {i + 1}"] = {"sql": statement[:240], "plan": plan}
                scans += [
                    {"endpoint": path, "range": name, "statement": i + 1, **s} for s in full_scans(statement, plan)
                ]
    conn.commit()

    print()
    print("| endpoint | range | median | max | floor | ratio | under 1 s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['endpoint']} | {row['range']} | {_ms(row['median_seconds'])} | {_ms(row['max_seconds'])} | "
            f"{_ms(row['floor_seconds'])} | {row['ratio']:.1f}x | {'yes' if row['under_1s'] else 'NO'} |"
        )
    for entry in live:
        rollup = next(row for row in rows if row["endpoint"] == "/api/volume/hourly" and row["range"] == entry["range"])
        print(
            f"| /api/volume/hourly, no rollup (counted live) | {entry['range']} | {_ms(entry['median_seconds'])} | "
            f"{_ms(entry['max_seconds'])} | with rollup: {_ms(rollup['median_seconds'])} | "
            f"{entry['median_seconds'] / rollup['median_seconds']:.1f}x | "
            f"{'yes' if entry['max_seconds'] < 1 else 'NO'} |"
        )
    print()
    print("EXPLAIN (table: access type, key, estimated rows) of every statement the endpoints run:")
    for key, statements in plans.items():
        for label, item in statements.items():
            steps = "; ".join(
                f"{p['table']}: {p['type']} {p['key'] or '-'} ~{p['rows']}"
                + (" [" + p["extra"] + "]" if p["extra"] else "")
                for p in item["plan"]
            )
            print(f"  {key:26} {label}: {steps}")
    for entry in live:
        steps = "; ".join(f"{p['table']}: {p['type']} {p['key'] or '-'} ~{p['rows']}" for p in entry["explain"] or [])
        print(f"  {'volume counted live ' + entry['range']:26} {steps}")
    big = [s for s in scans if s["real_table"] in BIG_TABLES]
    print()
    print(f"full scans of {' / '.join(BIG_TABLES)}: {len(big) or 'none'}")
    for s in scans:
        print(
            f"  full {'table' if s['type'] == 'ALL' else 'index'} scan: {s['endpoint']} {s['range']} statement "
            f"{s['statement']}, {s['real_table']} ({s['select_type']}, ~{s['rows']} rows)"
        )

    print(
        f"one Prometheus scrape (crawlops.metrics.collect): {_ms(scrape['median_seconds'])}, floor (its "
        f"{scrape['statements']} statements bare) {_ms(scrape['floor_seconds'])}, {scrape['ratio']:.2f}x; "
        f"full scans of big tables: {scrape['full_scans_of_big_tables'] or 'none'}"
    )
    total_seconds = time.perf_counter() - began
    all_under = all(row["under_1s"] for row in rows)
    print()
    print(
        f"all endpoints under 1 s: {'yes' if all_under else 'NO'}; "
        f"setup {load_seconds:.1f} s, total {total_seconds:.1f} s"
    )
    result = {
        "benchmark": "dashboard",
        "task_rows": TASK_ROWS,
        "result_rows": RESULT_ROWS,
        "alert_rows": RESULT_HOURS * ALERTS_PER_HOUR,
        "ranges": {name: {"start": s.start.isoformat(), "end": s.end.isoformat()} for name, s in spans.items()},
        "repeat": args.repeat,
        "endpoints": rows,
        "all_under_1s": all_under,
        "slowest": max(rows, key=lambda row: row["max_seconds"]),
        "count_live": live,
        "scrape": scrape,
        "full_scans": scans,
        "full_scans_of_big_tables": len(big),
        "explain": plans,
        "load_seconds": {k: None if v is None else round(v, 1) for k, v in loads.items()},
        "setup_seconds": round(load_seconds, 1),
        "total_seconds": round(total_seconds, 1),
    }
    write_result("dashboard", result)
    client.close()
    r.close()
    conn.close()


if __name__ == "__main__":
    main()
