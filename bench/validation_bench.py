"""Validation benchmark: the hourly GE suite on one hour of a big results table, against its floor.

    python -m bench.validation_bench                  # 1,000,000 rows, ~40k in the validated hour
    python -m bench.validation_bench --rows 10000000  # slower to load (minutes)

Ours: ``crawlops.validation.validate_window``, the function the supervision DAG calls: GE 1.x
with SQL pushdown on MariaDB, a TABLE asset partitioned on the indexed ``create_hour`` column
(and, reported alongside, the QUERY-asset fallback). Floor, measured in the same run on the
same window: ``floor_counts`` (bench/validation_floor.py), ONE plain SQL statement computing the
same counts over the ``create_time`` index. Both read the same rows; the bench checks that they agree.

The table in database ``crawlops_bench`` is filled with ``--rows`` rows spread over
``rows / 40,000`` hours by INSERT ... SELECT from a generated number series (no Python rows).
A table already holding exactly the same data (same row count and bench marker) is reused;
``--reload`` forces a fresh load. Prints one line; writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import time

from bench.common import BENCH_MYSQL_URL, bench_mysql, write_result
from bench.validation_floor import floor_counts, outcome_counts
from crawlops import validation
from crawlops.model import UTC, Window
from crawlops.settings import Settings

TABLE = "amazon_search_result"
PER_HOUR = 40_000
FIRST_HOUR = dt.datetime(2026, 11, 2, 0)  # naive UTC, as stored
CHUNK = 1_000_000
MARKER = "bench-v1"  # currency of every loaded row doubles as the data-set marker

# Number series from cross-joined digit tables: works on MariaDB and MySQL 8 alike.
_DIGITS = (
    "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL "
    "SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
)


def _series(size: int) -> str:
    """SQL for a derived table ``s(n)`` with n = 0 .. size-1 (size a power of ten)."""
    digits = len(str(size)) - 1
    joins = " CROSS JOIN ".join(f"{_DIGITS} d{i}" for i in range(digits))
    expr = " + ".join(f"d{i}.d * {10**i}" for i in range(digits))
    return f"(SELECT {expr} AS n FROM {joins})"  # noqa: S608 - generated from constants


def hours_for(rows: int) -> int:
    return max(1, rows // PER_HOUR)


def window_for(rows: int) -> Window:
    start = (FIRST_HOUR + dt.timedelta(hours=hours_for(rows) // 2)).replace(tzinfo=UTC)
    return Window(start, start + dt.timedelta(hours=1))


def loaded(conn, rows: int) -> bool:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*), SUM(currency = %s) FROM {TABLE}", (MARKER,))  # noqa: S608
        count, marked = cur.fetchone()
    return count == rows and int(marked or 0) == rows


def load(conn, rows: int) -> float:
    """Fill the table with ``rows`` generated rows; returns the seconds it took.

    Row n lies in hour n * hours / rows, so each hour holds ~PER_HOUR rows. Defects at rates
    under the suite's thresholds keep the counts non-trivial: 0.1% negative prices, 0.1%
    lower-case ASINs, 0.1% unknown marketplaces, 0.1% null titles, 0.1% ratings of 7, 1% null ratings.
    """
    started = time.perf_counter()
    hours = hours_for(rows)
    seconds = hours * 3600
    with conn.cursor() as cur:
        cur.execute(f"TRUNCATE TABLE {TABLE}")
        cur.execute("SET SESSION unique_checks = 0")
        for offset in range(0, rows, CHUNK):
            size = min(CHUNK, rows - offset)
            cur.execute(
                f"INSERT INTO {TABLE} (task_id, keyword, marketplace, asin, title, price, currency, rating, "  # noqa: S608
                "review_count, page, position, create_time) "
                "SELECT CONCAT('search_result_', UNIX_TIMESTAMP(%s + INTERVAL (m * %s DIV %s) DIV 3600 * 3600 SECOND), "
                "'_hourly'), "
                "CONCAT('bench keyword ', m DIV 100), "
                "IF(m MOD 1000 = 5, 'XX', ELT(1 + m MOD 5, 'US', 'DE', 'JP', 'UK', 'FR')), "
                "IF(m MOD 1000 = 3, CONCAT('b0', LPAD(m MOD 100000000, 8, '0')), "
                "CONCAT('B0', LPAD(m MOD 100000000, 8, '0'))), "
                "IF(m MOD 1000 = 9, NULL, CONCAT('Bench product ', m, ', a search result title of a typical length')), "
                "IF(m MOD 1000 = 7, -1.00, (m MOD 10000) / 100), %s, "
                "IF(m MOD 100 = 11, NULL, IF(m MOD 1000 = 1, 7, (m MOD 51) / 10)), m MOD 5000, "
                "(m DIV 10) MOD 10 + 1, m MOD 10 + 1, "
                "%s + INTERVAL (m * %s DIV %s) SECOND "
                f"FROM (SELECT n + %s AS m FROM {_series(CHUNK)} AS s WHERE n < %s) AS t",
                (FIRST_HOUR, seconds, rows, MARKER, FIRST_HOUR, seconds, rows, offset, size),
            )
            conn.commit()
        cur.execute("SET SESSION unique_checks = 1")
        cur.execute(f"ANALYZE TABLE {TABLE}")
        cur.fetchall()
    return time.perf_counter() - started


def rss_mb() -> float:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeat: int) -> tuple[float, list[float], object]:
    runs, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - started)
    return min(runs), runs, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    parser.add_argument("--reload", action="store_true", help="reload the table even if it holds this data set")
    args = parser.parse_args()

    mysql_url = os.environ.get("CRAWLOPS_BENCH_MYSQL_URL", BENCH_MYSQL_URL)
    conn = bench_mysql(mysql_url)
    load_seconds = None
    if args.reload or not loaded(conn, args.rows):
        load_seconds = load(conn, args.rows)
    window = window_for(args.rows)
    settings = Settings.load()
    params = validation.suite_parameters(settings, window)
    url = "mysql+pymysql://" + mysql_url.split("://", 1)[1]
    suite = validation.DEFAULT_SUITE_PATH

    def ours(partition_column: str | None = "create_hour") -> validation.ValidationReport:
        return validation.validate_window(url, TABLE, suite, window, params, partition_column=partition_column)

    rss_start, peak_start = rss_mb(), peak_rss_mb()
    started = time.perf_counter()
    validation.import_gx()
    import_seconds = time.perf_counter() - started
    rss_after_import = rss_mb()
    started = time.perf_counter()
    ours()  # warm-up: GE context, data source, engine, suite, SQLAlchemy statement cache
    warmup_seconds = time.perf_counter() - started
    rss_before = rss_mb()
    best_ours, ours_runs, report = timed(ours, args.repeat)
    rss_after = rss_mb()
    best_query, query_runs, query_report = timed(lambda: ours(None), args.repeat)
    best_floor, floor_runs, floor = timed(
        lambda: floor_counts(conn, TABLE, window, marketplaces=settings.dispatch.marketplaces),
        args.repeat,
    )
    measured = outcome_counts(report)
    agree = measured == floor == outcome_counts(query_report)
    if not agree:
        raise SystemExit(f"GE and floor disagree:\n ours  {measured}\n floor {floor}")
    assert report.strategy == "partition" and query_report.strategy == "query", (report.strategy, query_report.strategy)
    per_hour = args.rows / hours_for(args.rows)
    assert report.row_count and abs(report.row_count - per_hour) <= per_hour / 100, (report.row_count, per_hour)

    result = {
        "benchmark": "validation",
        "rows": args.rows,
        "window_rows": report.row_count,
        "window": str(window),
        "ours_seconds": round(best_ours, 3),
        "floor_seconds": round(best_floor, 3),
        "ratio": round(best_ours / best_floor, 2),
        "query_asset_seconds": round(best_query, 3),
        "query_asset_ratio": round(best_query / best_floor, 2),
        "ours_runs": [round(t, 3) for t in ours_runs],
        "query_asset_runs": [round(t, 3) for t in query_runs],
        "floor_runs": [round(t, 3) for t in floor_runs],
        "gx_import_seconds": round(import_seconds, 2),
        "warmup_seconds": round(warmup_seconds, 3),
        "verdict": "passed" if report.success else f"failed {[o.name for o in report.failed_outcomes()]}",
        "counts_agree": agree,
        "counts": {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in floor.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_mb_at_start": round(peak_start, 1),
        "rss_mb_at_start": round(rss_start, 1),
        "rss_mb_after_gx_import": round(rss_after_import, 1),
        "rss_growth_mb_during_validation": round(rss_after - rss_before, 1),
        "load_seconds": None if load_seconds is None else round(load_seconds, 1),
    }
    print(
        f"validation {args.rows:>11,} rows ({report.row_count:,} in window): ours {best_ours:7.3f} s   "
        f"floor {best_floor:7.3f} s   ratio {result['ratio']:.2f}x   query-asset {best_query:.3f} s   "
        f"peak RSS {result['peak_rss_mb']:.0f} MB (+{result['rss_growth_mb_during_validation']:.1f} MB validating)   "
        f"GE import {import_seconds:.1f} s"
    )
    write_result(f"validation-{args.rows}", result)


if __name__ == "__main__":
    main()
