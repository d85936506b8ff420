"""What a crawl object is, and the registry every part of the package reads it from.

A crawl object is one kind of page a crawl team crawls (search results, product pages,
reviews). It states everything the control plane needs to know of it:

- how a config row becomes its elements (``target_field``, ``paged``), and which rows it
  refuses, with a reason (``check_target``, ``check_max_pages``);
- its element fields and results table (created by a migration) with its quarantine;
- how a result row names its element (``result_keys``) and orders within it (``position``);
- the columns a crawler writes, with their type, and which may not be NULL;
- its expectation suite file and the validity rules quarantine applies (named as the suite's);
- its own quality thresholds (``[objects.<name>]`` in the settings file overrides ``[quality]``).

Adding an object is one module that builds a ``CrawlObject`` and calls ``register``, one
migration that creates its tables, one suite file (docs: "Adding a crawl object").
No Airflow, no database: plain values.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from crawlops.model import canonical_json

#: (rule name as in the suite, SQL predicate a row breaking it meets, its parameters).
Rule = tuple[str, str, list[Any]]

#: A refused config value: (skip reason, what is wrong with it).
Refusal = tuple[str, str]

# Column type families: what a crawler may write into each (``Result`` checks them) and how
# schema drift names them (``quality.drift``).
TEXT, INT, DECIMAL, DATETIME, BOOL = "text", "int", "decimal", "datetime", "bool"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
ASIN = re.compile(r"^[A-Z0-9]{10}$")
ASIN_PATTERN = "^B0[0-9A-Z]{8}$"


def keep_target(target: str) -> str | Refusal:
    """Any text target, as it is (a search keyword)."""
    return target


def asin_target(target: str) -> str | Refusal:
    """An ASIN: 10 characters of A-Z and 0-9, upper-cased."""
    asin = target.strip().upper()
    if not ASIN.match(asin):
        return "invalid_target", f"target {target[:40]!r} is not an ASIN (10 characters, A-Z and 0-9)"
    return asin


def pages_in_range(max_pages: Any, limit: int) -> int | Refusal:
    """max_pages a whole number in [1, limit]."""
    if isinstance(max_pages, bool) or not isinstance(max_pages, int) or not 1 <= max_pages <= limit:
        return "max_pages_out_of_range", f"max_pages={max_pages!r} (allowed 1..{limit})"
    return max_pages


def one_page(max_pages: Any, limit: int) -> int | Refusal:
    """One page per target: max_pages NULL or 1."""
    if max_pages is None or (max_pages == 1 and not isinstance(max_pages, bool)):
        return 1
    return "max_pages_out_of_range", f"max_pages={max_pages!r} (this crawl object takes NULL or 1: one page a target)"


def no_rules(marketplaces: Sequence[str]) -> list[Rule]:
    return []


@dataclasses.dataclass(frozen=True)
class CrawlObject:
    """One crawl object (see the module's docstring). ``columns`` maps every column a crawler
    writes (``task_id`` and ``create_time`` aside) to its type family."""

    name: str
    results_table: str
    # the element field the config row's target fills ("keyword", "asin")
    target_field: str
    # one element per page 1..max_pages ({..., "page": N}), or one element per target
    paged: bool
    columns: Mapping[str, str]
    # columns that may not be NULL besides task_id and the result keys
    required: tuple[str, ...] = ()
    # the column that orders a row within its element (None: one row an element)
    position_column: str | None = "position"
    check_target: Callable[[str], str | Refusal] = keep_target
    # default: pages 1..max_pages_limit when paged, else NULL or 1 (``pages``)
    check_max_pages: Callable[[Any, int], int | Refusal] | None = None
    validity_rules: Callable[[Sequence[str]], list[Rule]] = no_rules
    # per-object defaults over [quality] (the settings file's [objects.<name>] overrides these)
    quality_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""
    # the expectation suite: a file in include/expectations/ or a path (default <results_table>.json)
    suite: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or not _NAME.match(self.results_table):
            raise ValueError(f"crawl object {self.name!r}: names are lower-case identifiers")
        for field in self.element_fields:
            if field != "page" and field not in self.columns:
                raise ValueError(f"crawl object {self.name!r}: element field {field!r} is not a column")
        if self.position_column and self.position_column not in self.columns:
            raise ValueError(f"crawl object {self.name!r}: position column {self.position_column!r} is not a column")

    @property
    def element_fields(self) -> tuple[str, ...]:
        """The keys of an element, in canonical (sorted) order."""
        return tuple(sorted({self.target_field, "marketplace", *(("page",) if self.paged else ())}))

    @property
    def result_keys(self) -> dict[str, str]:
        """How a result row names its element: manifest column -> results column."""
        keys = {"target": self.target_field, "marketplace": "marketplace"}
        return {**keys, "page": "page"} if self.paged else keys

    @property
    def quarantine_table(self) -> str:
        return self.results_table + "_quarantine"

    @property
    def suite_file(self) -> str:
        """The expectation suite: ``suite``, else ``<results_table>.json`` in ``include/expectations/``."""
        return self.suite or self.results_table + ".json"

    @property
    def unique_key(self) -> tuple[str, ...]:
        """The columns that identify one result row: its task, every element field and its
        position; the uniqueness rule of the suite and of quarantine, never a subset."""
        position = (self.position_column,) if self.position_column else ()
        return ("task_id", *self.result_keys.values(), *position)

    @property
    def written_columns(self) -> tuple[str, ...]:
        """The columns a crawler writes, in table order: ``task_id`` first."""
        return ("task_id", *self.columns)

    @property
    def not_null(self) -> tuple[str, ...]:
        """Columns a row must fill: the task, the result keys, the position and ``required``."""
        position = (self.position_column,) if self.position_column else ()
        names = ("task_id", *self.result_keys.values(), *position, *self.required)
        return tuple(dict.fromkeys(names))

    def build_elements(self, target: Any) -> Iterator[tuple[str, str, str, int | None, int]]:
        """(element text, target, marketplace, page, config id) for each element of a validated
        config row: plain tuples, the hot path of dispatch."""
        fields = {self.target_field: target.target, "marketplace": target.marketplace}
        if not self.paged:
            yield canonical_json(fields), target.target, target.marketplace, None, target.config_id
            return
        # "page" sorts after every other field: the per-target part is encoded once, not per page
        prefix = canonical_json(fields)[:-1] + ',"page":'
        for page in range(1, target.max_pages + 1):
            yield f"{prefix}{page}}}", target.target, target.marketplace, page, target.config_id

    def pages(self, max_pages: Any, limit: int) -> int | Refusal:
        """The pages a config row's ``max_pages`` asks for, or why it is refused."""
        rule = self.check_max_pages or (pages_in_range if self.paged else one_page)
        return rule(max_pages, limit)

    def check_name(self, check: str) -> str:
        """The name one of the hourly checks has for this object. The first object's checks keep
        their bare names (``volume_anomaly``), so existing dashboards, routes and history stay;
        every other object's carry its name (``volume_anomaly:product_detail``)."""
        return check if self.name == FIRST else f"{check}:{self.name}"


FIRST = "search_result"

#: Every crawl object this process knows, by name (``crawlops.objects`` registers the shipped ones).
REGISTRY: dict[str, CrawlObject] = {}


def register(crawl_object: CrawlObject) -> CrawlObject:
    """Make ``crawl_object`` known to every part of the package; its table must not be another's."""
    for other in REGISTRY.values():
        if other.name != crawl_object.name and other.results_table == crawl_object.results_table:
            raise ValueError(f"{crawl_object.name!r}: {other.name!r} already writes {other.results_table}")
    if "page" in crawl_object.element_fields and crawl_object.element_fields[-1] != "page":
        raise ValueError(f"{crawl_object.name!r}: element fields must sort before 'page'")
    REGISTRY[crawl_object.name] = crawl_object
    return crawl_object


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def get(name: str) -> CrawlObject:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown crawl object {name!r} (known: {sorted(REGISTRY)})") from None


def for_table(table: str) -> CrawlObject:
    """The crawl object whose results land in ``table`` (or its quarantine)."""
    for crawl_object in REGISTRY.values():
        if table in (crawl_object.results_table, crawl_object.quarantine_table):
            return crawl_object
    raise KeyError(f"no crawl object writes {table!r}")
