"""What the hourly checks concluded: suite verdicts (``amazon_validation_run``) and the
volume rollup (``amazon_volume_hourly``). Only this module holds their SQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crawlops.db import Connection, Expiry


def upsert_validation(conn: Connection, row: tuple[Any, ...]) -> None:
    """One row per (suite, table, window): (suite, table, window_start, window_end, success,
    evaluated, failed, rows, results JSON, dag_run_id, quality score, success). Re-validating a window
    overwrites its counts, results, run id and time, never its history: ``first_success``
    keeps the first verdict, ``verdict`` reads passed, failed, or repaired (failed first, then
    passed)."""
    suite, table, start, end, success, evaluated, failed, rows, results, dag_run_id, score = row
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_validation_run (suite_name, table_name, window_start, window_end, success, "
            "evaluated, failed, row_count, results, dag_run_id, validated_at, first_success, verdict, quality_score) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(), %s, IF(%s, 'passed', 'failed'), %s) "
            "ON DUPLICATE KEY UPDATE "
            "verdict = IF(NOT VALUES(success), 'failed', IF(COALESCE(first_success, success), 'passed', 'repaired')), "
            "first_success = COALESCE(first_success, success), "
            "success = VALUES(success), evaluated = VALUES(evaluated), "
            "failed = VALUES(failed), row_count = VALUES(row_count), results = VALUES(results), "
            "dag_run_id = VALUES(dag_run_id), validated_at = VALUES(validated_at), "
            "quality_score = VALUES(quality_score)",
            (suite, table, start, end, success, evaluated, failed, rows, results, dag_run_id, success, success, score),
        )
    conn.commit()


def verdict(conn: Connection, suite: str, table: str, start: dt.datetime, end: dt.datetime) -> str | None:
    """The stored verdict (passed, repaired, failed) of one suite's window, ``None`` if never validated."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT verdict FROM amazon_validation_run WHERE suite_name = %s AND table_name = %s "
            "AND window_start = %s AND window_end = %s",
            (suite, table, start, end),
        )
        row = cur.fetchone()
    return None if row is None else str(row[0])


def upsert_volume(conn: Connection, row: tuple[Any, ...]) -> None:
    """The hour's rollup row: (table, hour, rows, history points, mean, std, band low, band
    high, anomalous, direction, dag_run_id); re-running the hour rewrites it."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_volume_hourly (table_name, hour, row_count, history_points, mean, std, "
            "band_low, band_high, anomalous, direction, dag_run_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
            "row_count = VALUES(row_count), history_points = VALUES(history_points), mean = VALUES(mean), "
            "std = VALUES(std), band_low = VALUES(band_low), band_high = VALUES(band_high), "
            "anomalous = VALUES(anomalous), direction = VALUES(direction), dag_run_id = VALUES(dag_run_id)",
            row,
        )
    conn.commit()


def volume_rows(conn: Connection, table: str, start: dt.datetime, end: dt.datetime) -> list[tuple[Any, ...]]:
    """Rollup rows of hours in [start, end): (hour, rows, history points, mean, band low, band high,
    anomalous, direction)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT hour, row_count, history_points, mean, band_low, band_high, anomalous, direction "
            "FROM amazon_volume_hourly WHERE table_name = %s AND hour >= %s AND hour < %s",
            (table, start, end),
        )
        return list(cur.fetchall())


def validation_rows(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[tuple[Any, ...]]:
    """Suite runs of windows starting in [start, end): (suite, table, window_start, verdict,
    evaluated, failed, rows, results JSON, dag_run_id, quality score, success)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT suite_name, table_name, window_start, COALESCE(verdict, IF(success, 'passed', 'failed')), "
            "evaluated, failed, row_count, results, dag_run_id, quality_score, success "
            "FROM amazon_validation_run WHERE window_start >= %s AND window_start < %s "
            "ORDER BY suite_name, table_name, window_start, window_end",
            (start, end),
        )
        return list(cur.fetchall())


# --- retention ---------------------------------------------------------------------------------

#: How each table's rows expire: by idx_validation_time, and by the rollup's primary key
#: (table_name, hour), read one results table at a time.
EXPIRY = {
    "amazon_validation_run": Expiry("amazon_validation_run", "window_start"),
    "amazon_volume_hourly": Expiry("amazon_volume_hourly", "hour", per="table_name"),
}
