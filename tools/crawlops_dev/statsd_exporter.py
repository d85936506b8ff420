"""A small StatsD-to-Prometheus exporter for `make cluster` (Debian has no statsd_exporter
package, and this machine reaches no other download): Airflow's StatsD lines in on UDP, the
Prometheus text format out on HTTP, names and labels from ``deploy/prometheus/statsd-mapping.yml``
(statsd_exporter's format, the subset the file uses: ``*`` globs and ``$n`` labels), so the
series are the ones ``prom/statsd-exporter`` gives the compose deployment.

    python -m crawlops_dev.statsd_exporter --statsd-port 9125 --web-port 9102

Tags become labels, in InfluxDB style (``ti.finish,dag_id=d,task_id=t,state=success:1|c``:
Airflow's ``[metrics] statsd_influxdb_enabled``) or DogStatsD style (``|#k:v``); a mapping
rule's labels add to them. Counters add up (exposed as ``<name>_total``), gauges keep the last
value (``+n``/``-n`` move it), timers and histograms become a summary in seconds (``_sum``,
``_count``); a sample rate (``|@0.1``) scales counters. Series of one name with different label
sets share the family, a label a series lacks being empty (Prometheus' "absent"). Malformed
lines are counted in ``statsd_exporter_lines_invalid``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs in the lock

MAPPING = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "statsd-mapping.yml"
UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


@dataclasses.dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    name: str
    labels: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, mapping: dict[str, Any]) -> Rule:
        glob = (
            "^"
            + r"\.".join("([^.]+)" if part == "*" else re.escape(part) for part in mapping["match"].split("."))
            + "$"
        )
        return cls(re.compile(glob), mapping["name"], tuple((mapping.get("labels") or {}).items()))

    def apply(self, metric: str) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        found = self.pattern.match(metric)
        if not found:
            return None

        def fill(template: str) -> str:
            return re.sub(r"\$(\d+)", lambda m: found.group(int(m.group(1))), template)

        return sanitize(fill(self.name)), tuple((key, fill(value)) for key, value in self.labels)


def sanitize(name: str) -> str:
    return UNSAFE.sub("_", name)


def load_rules(path: Path = MAPPING) -> list[Rule]:
    return [Rule.of(m) for m in (yaml.safe_load(path.read_text()) or {}).get("mappings", [])]


class Store:
    """Every series seen: counters, gauges and timers (sum, count), by (name, labels)."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.lock = threading.Lock()
        self.counters: dict[tuple[str, tuple], float] = {}
        self.gauges: dict[tuple[str, tuple], float] = {}
        self.timers: dict[tuple[str, tuple], list[float]] = {}
        self.invalid = 0

    def key(self, metric: str, tags: tuple[tuple[str, str], ...] = ()) -> tuple[str, tuple]:
        name, *influx = metric.split(",")
        tags += tuple(tuple(t.split("=", 1)) for t in influx if "=" in t)  # type: ignore[misc]
        labels: tuple[tuple[str, str], ...] = ()
        for rule in self.rules:
            if (mapped := rule.apply(name)) is not None:
                name, labels = mapped
                break
        else:
            name = sanitize(name)
        merged = dict((sanitize(k), v) for k, v in tags)
        merged.update(labels)
        return name, tuple(sorted(merged.items()))

    def feed(self, packet: str) -> None:
        for line in filter(None, packet.splitlines()):
            try:
                self._line(line)
            except (ValueError, IndexError):
                with self.lock:
                    self.invalid += 1

    def _line(self, line: str) -> None:
        metric, _, rest = line.partition(":")
        parts = rest.split("|")
        value_text, kind = parts[0], parts[1]
        rate = next((float(p[1:]) for p in parts[2:] if p.startswith("@")), 1.0)
        dog = next((p[1:] for p in parts[2:] if p.startswith("#")), "")
        tags = tuple(tuple(t.split(":", 1)) for t in dog.split(",") if ":" in t)
        value = float(value_text)
        key = self.key(metric, tags)  # type: ignore[arg-type]
        with self.lock:
            if kind == "c":
                self.counters[key] = self.counters.get(key, 0.0) + value / (rate or 1.0)
            elif kind == "g":
                relative = value_text[:1] in "+-"
                self.gauges[key] = self.gauges.get(key, 0.0) + value if relative else value
            elif kind in ("ms", "h", "d"):
                seconds = value / 1000.0 if kind == "ms" else value
                total = self.timers.setdefault(key, [0.0, 0.0])
                total[0] += seconds
                total[1] += 1
            else:
                raise ValueError(kind)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

        with self.lock:
            counters, gauges, timers = dict(self.counters), dict(self.gauges), dict(self.timers)
            invalid = self.invalid
        yield from _families(counters, lambda n, ls: CounterMetricFamily(n, "StatsD counter " + n, labels=ls),
                             lambda f, ls, v: f.add_metric(ls, v))  # fmt: skip
        yield from _families(gauges, lambda n, ls: GaugeMetricFamily(n, "StatsD gauge " + n, labels=ls),
                             lambda f, ls, v: f.add_metric(ls, v))  # fmt: skip
        yield from _families(timers, lambda n, ls: SummaryMetricFamily(n, "StatsD timer " + n + " (s)", labels=ls),
                             lambda f, ls, v: f.add_metric(ls, count_value=v[1], sum_value=v[0]))  # fmt: skip
        bad = GaugeMetricFamily("statsd_exporter_lines_invalid", "StatsD lines that could not be read")
        bad.add_metric([], invalid)
        yield bad


def _families(series: dict[tuple[str, tuple], Any], make: Any, add: Any) -> Iterator[Any]:
    """One family per name over the union of its series' label names (a missing one empty)."""
    by_name: dict[str, list[tuple[dict[str, str], Any]]] = {}
    for (name, pairs), value in sorted(series.items()):
        by_name.setdefault(name, []).append((dict(pairs), value))
    for name, members in by_name.items():
        names = sorted({k for labels, _ in members for k in labels})
        family = make(name, names)
        for labels, value in members:
            add(family, [labels.get(k, "") for k in names], value)
        yield family


def serve(statsd_port: int, web_port: int, mapping: Path = MAPPING, host: str = "127.0.0.1") -> None:
    from prometheus_client import CollectorRegistry, start_http_server

    store = Store(load_rules(mapping))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(store)
    start_http_server(web_port, addr=host, registry=registry)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, statsd_port))
        print(f"StatsD on udp://{host}:{statsd_port}, metrics on http://{host}:{web_port}/metrics", flush=True)
        while True:
            packet, _ = sock.recvfrom(65535)
            store.feed(packet.decode("utf-8", "replace"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statsd-port", type=int, default=9125)
    parser.add_argument("--web-port", type=int, default=9102)
    parser.add_argument("--mapping", type=Path, default=MAPPING)
    args = parser.parse_args()
    serve(args.statsd_port, args.web_port, args.mapping)


if __name__ == "__main__":
    main()
