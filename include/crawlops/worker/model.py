"""What the worker kit hands a crawler and takes back: the ``Element`` taken, the ``Result``
rows of its page, ``EMPTY`` for a page that says it has nothing, and the ``Tally`` of a client.

Every crawl object registered in ``crawlops.objects`` is served: an element's fields are its
object's (``{"keyword","marketplace","page"}`` for ``search_result``, ``{"asin","marketplace"}``
for ``product_detail``...), and a result fills its object's columns, each of its type family
(``ResultError`` says which column, and what it takes, when one does not fit).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from crawlops import objects
from crawlops.model import crawl_object_of
from crawlops.objects.base import BOOL, DATETIME, DECIMAL, INT, TEXT, CrawlObject

# ``Result``'s positional arguments, as they were when it knew search results only.
POSITIONAL = ("asin", "title", "price", "currency", "rating", "review_count", "position")


class Empty:
    """The type of ``EMPTY`` (one instance: use ``EMPTY``)."""

    def __repr__(self) -> str:
        return "EMPTY"


EMPTY: Final = Empty()
"""What a fetch function returns (or a Scrapy callback yields) to say "crawled: there is
nothing on this page". Results that are none without it fail the element (``nothing_parsed``)."""


class ResultError(ValueError):
    """A result that does not fit its crawl object's columns (a crawler's bug: the element is
    failed as ``parse_error`` with this message)."""


def served_objects(names: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """The crawl objects named (comma-separated text, or a list of such; ``all``, empty or None:
    every registered one, returned as None); an unknown name is a ``ValueError``."""
    if names is None:
        return None
    parts = [names] if isinstance(names, str) else list(names)
    wanted = [n.strip() for part in parts for n in part.split(",") if n.strip()]
    if not wanted or "all" in wanted:
        return None
    unknown = [n for n in wanted if n not in objects.REGISTRY]
    if unknown:
        raise ValueError(f"unknown crawl objects {unknown} (registered: {', '.join(sorted(objects.REGISTRY))})")
    return tuple(dict.fromkeys(wanted))


@dataclasses.dataclass(frozen=True, slots=True)
class Element:
    """One taken element: its task and its member exactly as popped (the bytes). Its fields are
    its crawl object's (``fields``; ``.keyword``, ``.asin``, ``.marketplace``, ``.page``, or any
    field by name): ``page`` is None for an object crawled one page a target (``product_detail``);
    a field its object does not have is an ``AttributeError``."""

    task_id: str
    member: bytes
    _fields: dict[str, Any] | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def crawl_object(self) -> str:
        """The crawl object's name, from the task id (``product_detail_1793707200_hourly``)."""
        return crawl_object_of(self.task_id)

    @property
    def fields(self) -> dict[str, Any]:
        """The element's JSON (parsed once); ``ValueError`` when the member is not an element of
        its task's crawl object (not JSON, or other fields than the object's)."""
        value = self._fields
        if value is None:
            value = json.loads(self.member)
            if not isinstance(value, dict):
                raise ValueError(f"member is not a JSON object: {self.member!r}")
            spec = objects.REGISTRY.get(self.crawl_object)
            if spec is not None and tuple(sorted(value)) != spec.element_fields:
                raise ValueError(
                    f"member is not a {spec.name} element (fields {', '.join(spec.element_fields)}): {self.member!r}"
                )
            object.__setattr__(self, "_fields", value)  # a cache, not a change: frozen for everything else
        return value

    def field(self, name: str) -> Any:
        """The element's field ``name``; an ``AttributeError`` naming the object's fields if it has none."""
        fields = self.fields
        if name not in fields:
            raise AttributeError(
                f"a {self.crawl_object} element has no field {name!r} (its fields: {', '.join(sorted(fields))})"
            )
        return fields[name]

    @property
    def keyword(self) -> str:
        return str(self.field("keyword"))

    @property
    def asin(self) -> str:
        return str(self.field("asin"))

    @property
    def marketplace(self) -> str:
        return str(self.field("marketplace"))

    @property
    def page(self) -> int | None:
        """The page (from 1), or None for an object crawled one page a target."""
        page = self.fields.get("page")
        return None if page is None else int(page)

    def __getattr__(self, name: str) -> Any:
        """Any other field of the element's object by name (a team's own object's target field)."""
        if name.startswith("_"):
            raise AttributeError(name)
        return self.field(name)

    def __str__(self) -> str:
        return f"{self.task_id}:{self.member.decode('utf-8', 'replace')}"


class Result:
    """One result row of an element's page: the columns its crawl object's crawler fills, by
    name (``Result(title="...", price=19.99)``); positional arguments are ``search_result``'s
    ``asin, title, price, currency, rating, review_count, position``. A column not given reads
    None and is written NULL. The element's own fields (and ``task_id``, ``create_time``) are
    copied from the element, never given; ``position`` (where the object has one) defaults to
    the result's place in the page's list, from 1. Checked against the object when answered."""

    __slots__ = ("values",)
    values: dict[str, Any]

    def __init__(self, *args: Any, **values: Any) -> None:
        if len(args) > len(POSITIONAL):
            raise TypeError(f"Result takes at most {len(POSITIONAL)} positional arguments ({', '.join(POSITIONAL)})")
        given = dict(zip(POSITIONAL, args, strict=False))
        twice = given.keys() & values.keys()
        if twice:
            raise TypeError(f"Result got {sorted(twice)} twice")
        object.__setattr__(self, "values", {**given, **values})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "values":  # (values unset: a copy being made)
            raise AttributeError(name)
        return self.values.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "values":
            object.__setattr__(self, name, value)
        else:
            self.values[name] = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and _given(self.values) == _given(other.values)

    __hash__ = None  # type: ignore[assignment] # mutable, as the dataclass it replaces

    def __repr__(self) -> str:
        return f"Result({', '.join(f'{k}={v!r}' for k, v in self.values.items())})"

    @classmethod
    def of(cls, item: Result | Mapping[str, Any], crawl_object: str | CrawlObject | None = None) -> Result:
        """A result from a mapping (a Scrapy item, a dict) or a ``Result``; with ``crawl_object``,
        checked against its columns (``ResultError``)."""
        result = item if isinstance(item, Result) else cls(**dict(item))
        if crawl_object is not None:
            check_result(result, crawl_object)
        return result


def _given(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# Type family -> (the Python types a value of it may have, how to say so).
_FAMILIES: dict[str, tuple[tuple[type, ...], str]] = {
    TEXT: ((str,), "text (str)"),
    INT: ((int,), "a whole number (int)"),
    DECIMAL: ((int, float, Decimal), "a number (int, float or Decimal)"),
    DATETIME: ((dt.date,), "a date or datetime"),
    BOOL: ((bool,), "true or false (bool)"),
}


_COLUMNS: dict[str, tuple[CrawlObject, dict[str, str]]] = {}  # name -> (the object, its result columns)


def result_columns(crawl_object: CrawlObject) -> dict[str, str]:
    """The columns a result of ``crawl_object`` fills (its columns but the element's fields), with their family."""
    cached = _COLUMNS.get(crawl_object.name)
    if cached is None or cached[0] is not crawl_object:
        copied = set(crawl_object.result_keys.values())
        columns = {c: family for c, family in crawl_object.columns.items() if c not in copied}
        cached = _COLUMNS[crawl_object.name] = (crawl_object, columns)
    return cached[1]


def check_result(result: Result, crawl_object: str | CrawlObject) -> None:
    """Raise ``ResultError`` unless every value of ``result`` is a column of ``crawl_object``
    that a result fills, of its type family (None always fits); an aware datetime becomes UTC."""
    spec = objects.get(crawl_object) if isinstance(crawl_object, str) else crawl_object
    columns = result_columns(spec)
    values = result.values
    unknown = [k for k in values if k not in columns]
    if unknown:
        copied = [k for k in unknown if k in spec.result_keys.values()]
        raise ResultError(
            f"{spec.name}: not result fields: {sorted(unknown)}"
            + (f" ({', '.join(copied)}: the element's fields, copied from it, never given)" if copied else "")
            + f"; a {spec.name} result fills {', '.join(sorted(columns))}"
        )
    for name, value in values.items():
        if value is None:
            continue
        types, what = _FAMILIES[columns[name]]
        if isinstance(value, bool) is not (columns[name] == BOOL) or not isinstance(value, types):
            raise ResultError(f"{spec.name}: {name} takes {what}, got {type(value).__name__} {value!r:.60}")
        if isinstance(value, float | Decimal) and not math.isfinite(value):
            raise ResultError(f"{spec.name}: {name} takes a finite number, got {value!r}")
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            values[name] = value.astimezone(dt.UTC).replace(tzinfo=None)


@dataclasses.dataclass
class Tally:
    """What a client did: elements answered with rows, answered empty, reported failed, rows written."""

    taken: int = 0
    answered: int = 0
    empty: int = 0
    failed: int = 0
    released: int = 0
    rows: int = 0
    reasons: Counter[str] = dataclasses.field(default_factory=Counter)  # failures by reason class

    def add(self, other: Tally) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
