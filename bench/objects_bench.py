"""Per-object hourly checks: does one crawl object's check cost stay flat as objects are added?

    python -m bench.objects_bench [--rows 40000] [--repeat 3]

Each crawl object's results table gets ``--rows`` rows in the checked hour (and as many in
each of the 14 history hours the volume check reads), all valid. Then the hourly checks the
supervision DAG maps over the objects in use (volume against history, schema drift, the
quality score, the trace of incomplete rows, the quarantine scan; the GE suite is left out:
``bench.validation_bench`` measures it) run for 1, 2 and 3 objects. The floor of the k-object
run is the sum of each of its objects' checks run alone, measured in the same process: a ratio
near 1.0x means an object's checks cost the same whatever else is crawled. Writes bench/results/objects.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

from bench.common import bench_mysql, write_result
from crawlops import objects, quality, validation
from crawlops.model import UTC, Window
from crawlops.settings import Settings
from crawlops.store import results

HOUR = Window(dt.datetime(2026, 3, 2, 10, tzinfo=UTC), dt.datetime(2026, 3, 2, 11, tzinfo=UTC))
ORDER = ("search_result", "product_detail", "product_review")


def _value(kind: str, column: str, i: int, rng: random.Random) -> object:
    if column == "marketplace":
        return "US"
    if column == "currency":
        return "USD"
    if column == "availability":
        return "in_stock"
    if column in ("asin", "keyword"):
        return f"B0{i % 99_999_999:08d}"
    if column == "rating":
        return rng.randint(1, 5)
    if column == "review_date":
        return "2026-03-01"
    if column == "review_id":
        return f"R{i:012d}"
    return {"text": f"t{i}", "int": i % 30 + 1, "decimal": 10.5, "bool": 1, "datetime": "2026-03-01"}[kind]


def fill(conn, name: str, rows: int) -> None:
    entry = objects.get(name)
    rng = random.Random(7)  # noqa: S311 - test data
    with conn.cursor() as cur:
        cur.execute(f"TRUNCATE TABLE {entry.results_table}")
        cur.execute(f"TRUNCATE TABLE {entry.quarantine_table}")
    hours = [HOUR.start - dt.timedelta(days=d) for d in range(15)]
    for hour in hours:
        batch = []
        for i in range(rows):
            row = [f"{name}_{int(hour.timestamp())}_hourly"]
            row += [_value(kind, column, i, rng) for column, kind in entry.columns.items()]
            batch.append(tuple(row))
        stamp = hour.replace(tzinfo=None) + dt.timedelta(minutes=30)
        for start in range(0, len(batch), 5000):
            results.insert_rows(conn, entry.results_table, batch[start : start + 5000], lambda at=stamp: at)


def check_object(conn, settings: Settings, name: str) -> None:
    entry = objects.get(name)
    own = settings.for_object(name, entry.quality_defaults)
    suite = validation.load_suite(validation.suite_path_for(entry))
    table = entry.results_table
    quality.check_volume(conn, table, HOUR, own)
    quality.suite_schema_check(conn, table, entry.suite_file)
    quality.quality_score(conn, table, HOUR, own, validation.required_columns(suite))
    quality.trace_incomplete_rows(conn, table, HOUR, validation.required_columns(suite))
    quality.find_invalid_rows(conn, table, HOUR, own)
    conn.rollback()  # the scan's row locks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    conn, settings = bench_mysql(), Settings.load()
    for name in ORDER:
        fill(conn, name, args.rows)

    def best(names: tuple[str, ...]) -> float:
        times = []
        for _ in range(args.repeat + 1):  # the first is a warm-up
            started = time.perf_counter()
            for name in names:
                check_object(conn, settings, name)
            times.append(time.perf_counter() - started)
        return min(times[1:])

    alone = {name: best((name,)) for name in ORDER}
    rows = []
    for count in (1, 2, 3):
        together, floor = best(ORDER[:count]), sum(alone[n] for n in ORDER[:count])
        rows.append({"objects": count, "names": list(ORDER[:count]), "seconds": round(together, 3),
                     "floor_seconds": round(floor, 3), "ratio": round(together / floor, 2)})  # fmt: skip
    print(f"hourly checks per crawl object, {args.rows:,} rows an hour each, best of {args.repeat}")
    print("alone: " + ", ".join(f"{n} {t * 1000:.0f} ms" for n, t in alone.items()))
    print("| objects | seconds | floor (each alone, summed) | ratio |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['objects']} | {row['seconds']:.3f} | {row['floor_seconds']:.3f} | {row['ratio']:.2f}x |")
    write_result("objects", {"benchmark": "objects", "rows_per_hour": args.rows, "alone_seconds": alone, "runs": rows})


if __name__ == "__main__":
    main()
