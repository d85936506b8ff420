"""The daily report's data as typed records, passed from ``collect`` to the renderers.

``ReportData.to_json`` is what ``amazon_daily_report.summary`` stores (``store.summary_json``
may slim the per-hour detail away); ``ReportData.from_json`` reads it back, with anything a
slimmed or older summary lacks left at its default. Times are ISO-8601 strings: the data
is for showing, and the same text goes to Markdown, HTML and JSON.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Self

from crawlops.readmodel import Quality, QualityCell, SuiteQuality, Volume, VolumeHour

# The quality and volume records are the read model the Crawl Ops page shares (``crawlops.readmodel``).
__all__ = [
    "AlertLine",
    "Alerts",
    "CrawlOutcomes",
    "MarketOutcomes",
    "MysqlFacts",
    "Quality",
    "QualityCell",
    "QueueDepth",
    "RedisFacts",
    "ReportData",
    "Span",
    "SuiteQuality",
    "SystemHealth",
    "TaskCounts",
    "TaskStatistics",
    "Volume",
    "VolumeHour",
]


@dataclasses.dataclass(slots=True)
class TaskCounts:
    """One crawl object's tasks (or all of them) whose interval starts in the day."""

    tasks: int = 0
    dispatched: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    open: int = 0
    finished_elements: int = 0
    answered_elements: int = 0
    empty_elements: int = 0
    lost_elements: int = 0
    success_rate: float | None = None
    timed_tasks: int = 0
    mean_seconds: float | None = None
    p95_seconds: int | None = None


@dataclasses.dataclass(slots=True)
class TaskStatistics:
    by_type: dict[str, TaskCounts] = dataclasses.field(default_factory=dict)
    total: TaskCounts = dataclasses.field(default_factory=TaskCounts)


@dataclasses.dataclass(slots=True)
class AlertLine:
    level: str
    source: str
    check_name: str
    subject: str
    title: str
    window_start: str


@dataclasses.dataclass(slots=True)
class Alerts:
    total: int = 0
    by_level: dict[str, int] = dataclasses.field(default_factory=dict)
    top: list[AlertLine] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(slots=True)
class MarketOutcomes:
    """What the crawlers saw in one crawl object and marketplace over the day (kit workers' counts)."""

    crawl_object: str
    marketplace: str
    total: int = 0
    answered: int = 0
    empty: int = 0
    failed: dict[str, int] = dataclasses.field(default_factory=dict)  # by reason class
    shares: dict[str, float] = dataclasses.field(default_factory=dict)  # "empty" and each reason


@dataclasses.dataclass(slots=True)
class CrawlOutcomes:
    markets: list[MarketOutcomes] = dataclasses.field(default_factory=list)
    failed_by_reason: dict[str, int] = dataclasses.field(default_factory=dict)
    total: int = 0


@dataclasses.dataclass(slots=True)
class OperatorAction:
    """One audited operator action of the day (``amazon_operator_action``)."""

    action: str
    subject: str
    actor: str
    reason: str
    acted_at: str


@dataclasses.dataclass(slots=True)
class MysqlFacts:
    reachable: bool = True
    version: str = ""


@dataclasses.dataclass(slots=True)
class RedisFacts:
    reachable: bool = False
    error: str | None = None
    used_memory: int | None = None
    maxmemory: int | None = None
    ratio: float | None = None
    memory_alarm: bool = False


@dataclasses.dataclass(slots=True)
class QueueDepth:
    """``queued`` and ``failed_waiting`` are None when Redis could not be asked."""

    open_tasks: int = 0
    queued: int | None = None
    failed_waiting: int | None = None


@dataclasses.dataclass(slots=True)
class SystemHealth:
    mysql: MysqlFacts = dataclasses.field(default_factory=MysqlFacts)
    redis: RedisFacts = dataclasses.field(default_factory=RedisFacts)
    queues: dict[str, QueueDepth] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class Span:
    start: str
    end: str


@dataclasses.dataclass(slots=True)
class ReportData:
    title: str
    day: str
    timezone: str
    window: Span
    generated_at: str
    hours: list[str]
    tasks: TaskStatistics
    quality: Quality
    volume: Volume
    alerts: Alerts
    system: SystemHealth
    run_url: str | None = None
    truncated: bool = False  # the stored summary lost its per-hour detail (``store.summary_json``)
    outcomes: CrawlOutcomes = dataclasses.field(default_factory=CrawlOutcomes)  # empty in reports made before
    # rows per hour of every other crawl object in use that day (``volume`` is the first one's)
    volumes: dict[str, Volume] = dataclasses.field(default_factory=dict)
    # what operators did that day (re-drives, releases), oldest first; empty in reports made before
    actions: list[OperatorAction] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The inverse of ``to_json``; a missing field takes its default (required ones raise)."""
        return typing.cast(Self, _decode(cls, data))


def _decode(kind: Any, value: Any) -> Any:
    """``value`` (parsed JSON) as ``kind``: a dataclass, list, dict, optional or plain type."""
    if value is None:
        return None
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = {f.name for f in dataclasses.fields(kind)}
        return kind(**{name: _decode(hints[name], v) for name, v in value.items() if name in fields})
    origin = typing.get_origin(kind)
    if origin is list:
        (item,) = typing.get_args(kind)
        return [_decode(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(kind)
        return {k: _decode(item, v) for k, v in value.items()}
    if origin is types.UnionType or origin is typing.Union:
        (inner,) = [a for a in typing.get_args(kind) if a is not type(None)]
        return _decode(inner, value)
    return value
