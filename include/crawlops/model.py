"""The task model: statuses, ids, elements, windows and when a frequency is due.

Names follow the seed scripts and the crawlers' protocol: a task id is
``{crawl_object}_{epoch}_{frequency}``, its Redis set has the same name, failed elements
go to ``<task_id>_fail`` and a retry task takes that name; elements crawled and found
empty (answered, zero results) go to ``<task_id>_empty``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

FAIL_SUFFIX = "_fail"
EMPTY_SUFFIX = "_empty"
UTC = dt.UTC


class TaskStatus(StrEnum):
    PENDING = "Pending"
    IN_PROGRESS = "In Progress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    DEAD = "Dead"


OPEN_STATUSES = (TaskStatus.PENDING, TaskStatus.IN_PROGRESS)


def as_utc(instant: dt.datetime) -> dt.datetime:
    """A plain ``datetime`` in UTC (Airflow hands out pendulum objects, whose arithmetic with
    stdlib timezones can drop the tzinfo)."""
    if instant.tzinfo is None:
        raise ValueError(f"{instant!r} is not timezone-aware")
    return dt.datetime.fromtimestamp(instant.timestamp(), UTC)


@dataclasses.dataclass(frozen=True)
class Window:
    """A half-open interval [start, end) in UTC: the data interval a run works on."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end} is not after its start {self.start}")
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))

    @property
    def epoch(self) -> int:
        return int(self.start.timestamp())

    def naive(self) -> tuple[dt.datetime, dt.datetime]:
        """Bounds as naive UTC datetimes, the way the DATETIME columns store them."""
        return self.start.replace(tzinfo=None), self.end.replace(tzinfo=None)

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def hour_window_starting(start: dt.datetime, tz: str) -> Window:
    """The one-hour window that starts at ``start``, which must lie on an hour in ``tz``."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(tz))
    local = start.astimezone(ZoneInfo(tz))
    if (local.minute, local.second, local.microsecond) != (0, 0, 0):
        raise ValueError(f"{start.isoformat()} is not on the hour in {tz}")
    start_utc = start.astimezone(UTC)
    return Window(start_utc, start_utc + dt.timedelta(hours=1))


def last_complete_hour(instant: dt.datetime, tz: str) -> Window:
    """The last one-hour window that ended at or before ``instant``, hours counted in ``tz``."""
    return last_complete_interval(instant, tz, minutes=60)


def last_complete_interval(instant: dt.datetime, tz: str, *, minutes: int) -> Window:
    """The last window of ``minutes`` (a divisor of 60, or 60) that ended at or before ``instant``."""
    local = as_utc(instant).astimezone(ZoneInfo(tz))
    end = local.replace(minute=local.minute - local.minute % minutes, second=0, microsecond=0).astimezone(UTC)
    return Window(end - dt.timedelta(minutes=minutes), end)


def closes_hour(window: Window, tz: str) -> bool:
    """Whether the window ends on the hour in ``tz`` (the run that closes an hour)."""
    local = window.end.astimezone(ZoneInfo(tz))
    return (local.minute, local.second, local.microsecond) == (0, 0, 0)


def closes_day(window: Window, tz: str) -> bool:
    """Whether the window ends at midnight in ``tz`` (the run that closes a day)."""
    return window.end.astimezone(ZoneInfo(tz)).time() == dt.time(0)


def day_ending(window: Window, tz: str) -> Window:
    """The calendar day in ``tz`` up to where ``window`` ends: the whole day (23, 24 or 25 hours)
    when it ends at midnight, the day so far otherwise."""
    end = window.end.astimezone(ZoneInfo(tz))
    last = end - dt.timedelta(microseconds=1)
    start = dt.datetime.combine(last.date(), dt.time(0), tzinfo=ZoneInfo(tz))
    return Window(start, end)


def task_id_for(crawl_object: str, window: Window, frequency: str) -> str:
    return f"{crawl_object}_{window.epoch}_{frequency}"


def crawl_object_of(task_id: str) -> str:
    """The crawl object a task id names: ``search_result`` of ``search_result_1793707200_hourly_fail``."""
    root = task_id
    while root.endswith(FAIL_SUFFIX):
        root = root[: -len(FAIL_SUFFIX)]
    return root.rsplit("_", 2)[0]


def fail_key(task_id: str) -> str:
    """Name of the Redis set workers add failed elements to; also the id of the retry task."""
    return task_id + FAIL_SUFFIX


def empty_key(task_id: str) -> str:
    """Name of the Redis set workers add elements to that they crawled and found nothing on."""
    return task_id + EMPTY_SUFFIX


def canonical_json(value: dict[str, Any]) -> str:
    """The one text form of an element: sorted keys, no spaces, UTF-8 left unescaped."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def element_digest(element: str) -> bytes:
    """16-byte key of an element in the manifest (an identity, not a security measure)."""
    return hashlib.md5(element.encode("utf-8", "surrogateescape"), usedforsecurity=False).digest()


@dataclasses.dataclass(frozen=True, slots=True)
class Element:
    """One unit of crawl work; ``text`` is the Redis set member."""

    text: str
    target: str
    marketplace: str
    page: int | None
    config_id: int | None

    @property
    def digest(self) -> bytes:
        return element_digest(self.text)


def is_due(frequency: str, window: Window, tz: str) -> bool:
    """Whether a frequency has a boundary inside the window, boundaries counted in ``tz``.

    hourly: every top of the hour; daily: 00:00; weekly: Monday 00:00. With the hourly
    dispatch schedule that means hourly rows every run, daily rows in the run whose
    window starts at midnight, weekly rows in the one that starts on Monday midnight.
    """
    zone = ZoneInfo(tz)
    first = window.start.astimezone(zone)
    last = (window.end - dt.timedelta(microseconds=1)).astimezone(zone)
    at_midnight = first.time() == dt.time(0)
    if frequency == "hourly":
        on_hour = (first.minute, first.second, first.microsecond) == (0, 0, 0)
        return on_hour or (first.date(), first.hour) != (last.date(), last.hour)
    if frequency == "daily":
        return at_midnight or first.date() != last.date()
    if frequency == "weekly":
        if at_midnight and first.weekday() == 0:
            return True
        day = first.date() + dt.timedelta(days=1)
        while day <= last.date():
            if day.weekday() == 0:
                return True
            day += dt.timedelta(days=1)
        return False
    raise ValueError(f"unknown frequency {frequency!r}")
