"""From config rows to planned tasks: validate each row, keep the due ones, build elements.

Pure functions: no database, no Redis, no clock. The same rows and window always give
the same tasks with the same elements, which is what makes re-runs and backfills safe.
"""

from __future__ import annotations

import dataclasses
import logging
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from typing import Any

from crawlops import objects
from crawlops.model import Element, Window, is_due, task_id_for
from crawlops.settings import DispatchSettings

log = logging.getLogger(__name__)


class SkipReason(StrEnum):
    UNKNOWN_CRAWL_OBJECT = "unknown_crawl_object"
    EMPTY_TARGET = "empty_target"
    OVERSIZED_TARGET = "oversized_target"
    INVALID_TARGET = "invalid_target"
    BAD_FREQUENCY = "bad_frequency"
    UNKNOWN_MARKETPLACE = "unknown_marketplace"
    MAX_PAGES_OUT_OF_RANGE = "max_pages_out_of_range"
    DUPLICATE = "duplicate"


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigRow:
    """One row of ``amazon_crawl_config`` as stored: any field may be malformed."""

    id: int
    crawl_object: Any
    target: Any
    marketplace: Any
    frequency: Any
    priority: Any
    max_pages: Any


@dataclasses.dataclass(frozen=True, slots=True)
class CrawlTarget:
    """A validated, normalized config row."""

    config_id: int
    crawl_object: str
    target: str
    marketplace: str
    frequency: str
    priority: int
    max_pages: int


@dataclasses.dataclass(frozen=True, slots=True)
class Skipped:
    config_id: int
    reason: SkipReason
    detail: str


# The crawl objects live in their registry (crawlops.objects); these names are kept for the
# modules that read it through planning.
CRAWL_OBJECTS = objects.REGISTRY
CrawlObject = objects.CrawlObject
crawl_object_for_table = objects.for_table


def known_crawl_objects(settings: DispatchSettings) -> tuple[str, ...]:
    """Crawl objects enabled in settings; each must have an element builder here."""
    missing = [name for name in settings.crawl_objects if name not in CRAWL_OBJECTS]
    if missing:
        raise ValueError(f"settings name crawl objects none of crawlops.objects registers: {missing}")
    return settings.crawl_objects


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value)


def normalize(row: ConfigRow, settings: DispatchSettings) -> CrawlTarget | Skipped:
    """Check one row; return the cleaned target or why it is skipped."""

    def skip(reason: SkipReason, detail: str) -> Skipped:
        return Skipped(row.id, reason, detail)

    crawl_object = (_text(row.crawl_object) or "").strip().lower()
    if crawl_object not in known_crawl_objects(settings):
        return skip(SkipReason.UNKNOWN_CRAWL_OBJECT, f"crawl_object={_preview(row.crawl_object)}")
    frequency = (_text(row.frequency) or "").strip().lower()
    if frequency not in settings.frequencies:
        return skip(SkipReason.BAD_FREQUENCY, f"frequency={_preview(row.frequency)}")
    target = (_text(row.target) or "").strip()
    if not target:
        return skip(SkipReason.EMPTY_TARGET, "target is empty")
    if len(target) > settings.max_target_length:
        return skip(
            SkipReason.OVERSIZED_TARGET, f"target has {len(target)} characters (limit {settings.max_target_length})"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in target):
        return skip(SkipReason.INVALID_TARGET, f"target has control characters: {_preview(target)}")
    checked = CRAWL_OBJECTS[crawl_object].check_target(target)
    if isinstance(checked, tuple):
        return skip(SkipReason(checked[0]), checked[1])
    target = checked
    marketplace = (_text(row.marketplace) or "").strip().upper()
    if marketplace not in settings.marketplaces:
        return skip(SkipReason.UNKNOWN_MARKETPLACE, f"marketplace={_preview(row.marketplace)}")
    max_pages = CRAWL_OBJECTS[crawl_object].pages(row.max_pages, settings.max_pages_limit)
    if isinstance(max_pages, tuple):
        return skip(SkipReason(max_pages[0]), max_pages[1])
    priority = row.priority if isinstance(row.priority, int) and not isinstance(row.priority, bool) else 0
    return CrawlTarget(row.id, crawl_object, target, marketplace, frequency, priority, max_pages)


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"...({len(text)} chars)"


def _duplicate_key(target: CrawlTarget) -> tuple[str, str, str, str]:
    # Amazon treats keywords case- and space-insensitively, so these crawl the same pages.
    return (target.crawl_object, " ".join(target.target.casefold().split()), target.marketplace, target.frequency)


def validate_rows(rows: Iterable[ConfigRow], settings: DispatchSettings) -> tuple[list[CrawlTarget], list[Skipped]]:
    """Split rows into valid targets and skipped rows; of duplicates the lowest id wins."""
    valid: list[CrawlTarget] = []
    skipped: list[Skipped] = []
    first_seen: dict[tuple[str, str, str, str], int] = {}
    for row in sorted(rows, key=lambda r: r.id):
        outcome = normalize(row, settings)
        if isinstance(outcome, Skipped):
            skipped.append(outcome)
            continue
        key = _duplicate_key(outcome)
        if key in first_seen:
            skipped.append(Skipped(row.id, SkipReason.DUPLICATE, f"duplicate of config id {first_seen[key]}"))
            continue
        first_seen[key] = row.id
        valid.append(outcome)
    return valid, skipped


def skip_counts(skipped: Sequence[Skipped]) -> dict[str, int]:
    return dict(sorted(Counter(s.reason.value for s in skipped).items()))


@dataclasses.dataclass(frozen=True)
class PlannedTask:
    """One task of a window: a crawl object at a frequency, and the targets it covers."""

    task_id: str
    crawl_object: str
    frequency: str
    window: Window
    targets: tuple[CrawlTarget, ...]

    def elements(self) -> Iterator[Element]:
        """The task's elements, built lazily so a million of them never sit in memory at once."""
        return (Element(*fields) for fields in self.element_fields())

    def element_fields(self) -> Iterator[tuple[str, str, str, int | None, int]]:
        """The same as plain tuples (text, target, marketplace, page, config id)."""
        build = CRAWL_OBJECTS[self.crawl_object].build_elements
        for target in self.targets:
            yield from build(target)

    @property
    def element_count(self) -> int:
        return sum(t.max_pages for t in self.targets)

    @property
    def priority(self) -> int:
        """The most urgent of its targets' priorities (higher is more urgent): a task is one
        Redis set, so priority orders tasks for workers, not elements within a task."""
        return max((t.priority for t in self.targets), default=0)


def plan_tasks(targets: Iterable[CrawlTarget], window: Window, tz: str) -> list[PlannedTask]:
    """Group the due targets into one task per (crawl object, frequency) for the window."""
    groups: dict[tuple[str, str], list[CrawlTarget]] = {}
    due = {}
    for target in targets:
        if target.frequency not in due:
            due[target.frequency] = is_due(target.frequency, window, tz)
        if due[target.frequency]:
            groups.setdefault((target.crawl_object, target.frequency), []).append(target)
    return [
        PlannedTask(task_id_for(obj, window, freq), obj, freq, window, tuple(group))
        for (obj, freq), group in sorted(groups.items())
    ]
