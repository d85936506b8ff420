"""The table of the latest benchmark results (bench/results/*.json): rendered into
docs/performance.md at build time (tools/docs_hooks.py), and printed by ``python -m bench.report``."""

from __future__ import annotations

import json

from bench.common import RESULTS


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def rows() -> list[tuple[str, str, str, str, str]]:
    table = []
    mixed = [
        (f"dispatch-mixed-{p.stem.rsplit('-', 1)[1]}", "three crawl objects") for p in RESULTS.glob("dispatch-mixed-*")
    ]
    for name, label in [*((f"dispatch-{n}", "") for n in (100_000, 1_000_000)), *sorted(mixed)]:
        if r := _load(f"{name}.json"):
            elements = r["elements"]
            table.append(
                (
                    f"dispatch {elements:,} elements" + (f", {label}" if label else ""),
                    f"{r['ours_seconds']:.2f} s",
                    f"{r['floor_seconds']:.2f} s",
                    f"{r['ratio']:.2f}x",
                    f"RSS +{r['peak_rss_growth_mb_during_ours']} MB",
                )
            )
    for size in (1_000_000, 10_000_000):
        if r := _load(f"validation-{size}.json"):
            table.append(
                (
                    f"validation, 40k-row hour of {size:,}",
                    f"{r['ours_seconds']:.2f} s",
                    f"{r['floor_seconds']:.2f} s",
                    f"{r['ratio']:.2f}x",
                    f"peak RSS {r['peak_rss_mb']:.0f} MB",
                )
            )
    for tasks in (100_000, 1_000_000):
        if r := _load(f"health-{tasks}.json"):
            table.append(
                (
                    f"health check, {r['tasks']:,} tasks",
                    f"{r['ours_seconds'] * 1000:.1f} ms",
                    f"{r['floor_seconds'] * 1000:.1f} ms",
                    f"{r['ratio']:.2f}x",
                    f"{r['open_tasks']:,} open",
                )
            )
    if r := _load("dashboard.json"):
        for span in r["ranges"]:
            rows = [e for e in r["endpoints"] if e["range"] in (span, "-")]
            slowest = max(rows, key=lambda e: e["median_seconds"])
            worst = max(e["max_seconds"] for e in rows)
            under = "all under 1 s" if all(e["under_1s"] for e in rows) else "NOT all under 1 s"
            table.append(
                (
                    f"dashboard {span}, slowest of {len(rows)} endpoints: {slowest['endpoint']}",
                    f"{slowest['median_seconds'] * 1000:.1f} ms",
                    f"{slowest['floor_seconds'] * 1000:.1f} ms",
                    f"{slowest['ratio']:.2f}x",
                    f"{under} (max {worst * 1000:.0f} ms), {r['task_rows']:,} tasks, {r['result_rows']:,} results",
                )
            )
        if scrape := r.get("scrape"):
            table.append(
                (
                    "one Prometheus scrape (/crawl-ops-metrics/metrics' reads)",
                    f"{scrape['median_seconds'] * 1000:.1f} ms",
                    f"{scrape['floor_seconds'] * 1000:.1f} ms",
                    f"{scrape['ratio']:.2f}x",
                    f"{scrape['statements']} statements, {scrape['samples']} samples; {r['task_rows']:,} tasks, "
                    f"{r['result_rows']:,} results; full scans of big tables: {scrape['full_scans_of_big_tables']}",
                )
            )
        for live in r["count_live"]:
            volume = [e for e in r["endpoints"] if e["endpoint"] == "/api/volume/hourly"]
            rollup = next(e for e in volume if e["range"] == live["range"])
            table.append(
                (
                    f"dashboard volume {live['range']} counted live (no rollup)",
                    f"{live['median_seconds'] * 1000:.1f} ms",
                    f"{rollup['median_seconds'] * 1000:.1f} ms",
                    f"{live['median_seconds'] / rollup['median_seconds']:.2f}x",
                    f"floor: the endpoint with the rollup; {live['rows_counted']:,} rows counted",
                )
            )
    if r := _load("worker.json"):
        table.append(
            (
                f"worker kit, {r['elements']:,} elements, {r['processes']} processes, no-op fetch",
                f"{r['kit_seconds']:.2f} s",
                f"{r['floor_seconds']:.2f} s",
                f"{r['ratio']:.2f}x",
                f"{r['kit_elements_per_second']:,} elements/s; worker CPU {r['cpu_ratio']:.2f}x",
            )
        )
    if r := _load("objects.json"):
        for run in r["runs"]:
            table.append(
                (
                    f"hourly checks of {run['objects']} crawl object(s), {r['rows_per_hour']:,} rows an hour each",
                    f"{run['seconds'] * 1000:.0f} ms",
                    f"{run['floor_seconds'] * 1000:.0f} ms",
                    f"{run['ratio']:.2f}x",
                    "floor: each object's checks run alone, summed",
                )
            )
    if r := _load("parse.json"):
        for name, d in r["dags"].items():
            table.append(
                (
                    f"parse {name}",
                    f"{d['seconds']:.2f} s",
                    f"{r['floor_seconds']:.2f} s",
                    f"+{d['over_floor_seconds']:.2f} s",
                    "",
                )
            )
    return table


def main() -> None:
    print("| figure | ours | floor | ratio | note |")
    print("|---|---|---|---|---|")
    for row in rows():
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
