"""What the worker kit hands a crawler and takes back: the ``Element`` taken, the ``Result``
rows of its page, ``EMPTY`` for a page that says it has nothing, and the ``Tally`` of a client."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

from crawlops.model import crawl_object_of

RESULTS_TABLE = "amazon_search_result"
# The result fields a crawler fills; the element's own fields come from the element.
RESULT_FIELDS = ("asin", "title", "price", "currency", "rating", "review_count", "position")
ELEMENT_FIELDS = ("keyword", "marketplace", "page")


class Empty:
    """The type of ``EMPTY`` (one instance: use ``EMPTY``)."""

    def __repr__(self) -> str:
        return "EMPTY"


EMPTY: Final = Empty()
"""What a fetch function returns (or a Scrapy callback yields) to say "crawled: there is
nothing on this page". Results that are none without it fail the element (``nothing_parsed``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Element:
    """One taken element: its task and its member exactly as popped (the bytes)."""

    task_id: str
    member: bytes
    _fields: dict[str, Any] | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def fields(self) -> dict[str, Any]:
        """The element's JSON (parsed once); raises ``ValueError`` when the member is not an element."""
        value = self._fields
        if value is None:
            value = json.loads(self.member)
            if not isinstance(value, dict):
                raise ValueError(f"member is not a JSON object: {self.member!r}")
            object.__setattr__(self, "_fields", value)  # a cache, not a change: frozen for everything else
        return value

    @property
    def crawl_object(self) -> str:
        return crawl_object_of(self.task_id)

    @property
    def keyword(self) -> str:
        return str(self.fields["keyword"])

    @property
    def marketplace(self) -> str:
        return str(self.fields["marketplace"])

    @property
    def page(self) -> int:
        return int(self.fields["page"])

    def __str__(self) -> str:
        return f"{self.task_id}:{self.member.decode('utf-8', 'replace')}"


@dataclasses.dataclass(slots=True)
class Result:
    """One result of an element's page; ``position`` counts from 1 on the page."""

    asin: str | None
    title: str | None = None
    price: float | None = None
    currency: str | None = None
    rating: float | None = None
    review_count: int | None = None
    position: int | None = None

    @classmethod
    def of(cls, item: Result | Mapping[str, Any]) -> Result:
        """A result from a mapping (a Scrapy item, a dict); unknown keys are an error."""
        if isinstance(item, Result):
            return item
        unknown = set(item) - set(RESULT_FIELDS)
        if unknown:
            raise ValueError(f"not result fields: {sorted(unknown)} (the element's fields are copied, not given)")
        return cls(**{k: item.get(k) for k in RESULT_FIELDS})


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
