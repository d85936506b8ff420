"""The worker's side of the crawler protocol, kept in one client so no crawler gets it wrong.

A worker finds open task ids in the Redis index ``crawlops:open_tasks`` (most urgent task
first, see ``open_tasks``), takes elements with ``SPOP``, and answers each one it took in
exactly one way: result rows in ``amazon_search_result``, the member in ``<task_id>_empty``
(crawled, nothing there) or the member in ``<task_id>_fail`` (retried as a task of its own).
The client keeps the rules a hand-written worker breaks:

- the member reported back is the one popped, byte for byte (never re-encoded JSON);
- a row's ``task_id``, ``keyword``, ``marketplace`` and ``page`` are copied from the element;
- ``create_time`` is written explicitly, in UTC;
- rows are committed before an element counts as answered, in batches;
- whatever it took and did not answer is reported failed by ``release`` (a stopped worker
  loses nothing; a killed one is caught by supervision after the grace period).

No Airflow import, and nothing but ``redis`` and ``MySQLdb`` underneath.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from crawlops import queue
from crawlops.db import Connection
from crawlops.model import empty_key, fail_key
from crawlops.queue import RedisClient
from crawlops.store import results

log = logging.getLogger(__name__)

RESULTS_TABLE = "amazon_search_result"
# The result fields a crawler fills; the element's own fields come from the element.
RESULT_FIELDS = ("asin", "title", "price", "currency", "rating", "review_count", "position")
ELEMENT_FIELDS = ("keyword", "marketplace", "page")


@dataclasses.dataclass(frozen=True, slots=True)
class Element:
    """One taken element: its task and its member exactly as popped (the bytes)."""

    task_id: str
    member: bytes

    @property
    def fields(self) -> dict[str, Any]:
        """The element's JSON; raises ``ValueError`` when the member is not an element."""
        value = json.loads(self.member)
        if not isinstance(value, dict):
            raise ValueError(f"member is not a JSON object: {self.member!r}")
        return value

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

    def add(self, other: Tally) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WorkerClient:
    """Take elements and answer them, per the worker contract (README "The worker contract").

    Answers are buffered and written by ``flush`` (rows first, committed; then the empty and
    fail sets in one Redis round trip), and at the latest every ``flush_every`` answers.
    """

    def __init__(
        self,
        redis: RedisClient,
        mysql: Connection,
        *,
        table: str = RESULTS_TABLE,
        clock: Callable[[], dt.datetime] = utc_now,
        flush_every: int = 500,
    ) -> None:
        self.redis, self.mysql, self.table, self.clock = redis, mysql, table, clock
        self.flush_every = flush_every
        self.held: dict[tuple[str, bytes], Element] = {}  # taken, not yet answered
        self.tally = Tally()
        self._rows: list[tuple[Any, ...]] = []
        self._answered: list[Element] = []
        self._empty: list[Element] = []
        self._failed: list[Element] = []

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> WorkerClient:
        """A client from ``CRAWLOPS_MYSQL_URL`` (``mysql://user:pass@host:port/db``) and
        ``CRAWLOPS_REDIS_URL`` (``redis://host:port/db``)."""
        env = os.environ if environ is None else environ
        return cls.from_urls(
            env.get("CRAWLOPS_MYSQL_URL", "mysql://root@127.0.0.1:3306/crawl"),
            env.get("CRAWLOPS_REDIS_URL", "redis://127.0.0.1:6379/1"),
            **kwargs,
        )

    @classmethod
    def from_urls(cls, mysql_url: str, redis_url: str, **kwargs: Any) -> WorkerClient:
        import redis

        from crawlops.db import connect

        return cls(redis.Redis.from_url(redis_url), connect(mysql_url), **kwargs)

    # -- finding and taking work ----------------------------------------------------------

    def open_tasks(self) -> list[str]:
        """The open task ids, most urgent first: higher ``priority`` (the highest of the task's
        config rows, published by dispatch), then retries before the tasks they retry (they are
        older work), then the oldest interval."""
        return queue.open_tasks_by_urgency(self.redis)

    def take(self, count: int) -> list[Element]:
        """Up to ``count`` elements, from the most urgent open tasks first (``SPOP``)."""
        taken: list[Element] = []
        for task_id in self.open_tasks():
            if len(taken) >= count:
                break
            members = self.redis.spop(task_id, count - len(taken)) or []
            for member in members:
                element = Element(task_id, member if isinstance(member, bytes) else str(member).encode())
                self.held[(element.task_id, element.member)] = element
                taken.append(element)
        self.tally.taken += len(taken)
        return taken

    # -- answering ------------------------------------------------------------------------

    def answer(self, element: Element, results: Iterable[Result | Mapping[str, Any]]) -> None:
        """The element's results (none: it is answered empty). Rows are written by ``flush``."""
        fields = element.fields
        rows = [self._row(element.task_id, fields, Result.of(r), n) for n, r in enumerate(results, start=1)]
        if not rows:
            self.empty(element)
            return
        self._settle(element)
        self._rows += rows
        self._answered.append(element)
        self._maybe_flush()

    def empty(self, element: Element) -> None:
        """Crawled, and there is nothing: ``SADD <task_id>_empty <member>`` (at ``flush``)."""
        self._settle(element)
        self._empty.append(element)
        self._maybe_flush()

    def fail(self, element: Element, reason: object = None) -> None:
        """Not crawled: ``SADD <task_id>_fail <member>`` (at ``flush``); it is retried."""
        if reason is not None:
            log.warning("element %s failed: %s", element, reason)
        self._settle(element)
        self._failed.append(element)
        self._maybe_flush()

    def abandon(self, element: Element) -> None:
        """Drop an element without answering it, as a killed worker would (for simulations and
        tests: supervision finds it lost once its task has drained and the grace has passed)."""
        self._settle(element)

    def flush(self) -> Tally:
        """Write what was answered: rows (one commit), then the empty and fail sets."""
        done = Tally(rows=len(self._rows), answered=len(self._answered), empty=len(self._empty))
        done.failed = len(self._failed)
        if self._rows:
            stamp = self.clock().astimezone(dt.UTC)  # written explicitly: never the session's zone
            results.insert_rows(self.mysql, self.table, self._rows, lambda: stamp)
        if self._empty or self._failed:
            pipe = self.redis.pipeline(transaction=False)
            for key, elements in ((empty_key, self._empty), (fail_key, self._failed)):
                by_task: dict[str, list[bytes]] = {}
                for element in elements:
                    by_task.setdefault(element.task_id, []).append(element.member)
                for task_id, members in by_task.items():
                    pipe.sadd(key(task_id), *members)
            pipe.execute()
        self._rows, self._answered, self._empty, self._failed = [], [], [], []
        self.tally.add(done)
        return done

    def release(self, reason: str = "worker stopped") -> int:
        """Report every element taken and not answered as failed, and flush: call on shutdown."""
        held = list(self.held.values())
        for element in held:
            self.fail(element)
        self.flush()
        self.tally.released += len(held)
        if held:
            log.warning("%s: %d elements it held reported failed (they are retried)", reason, len(held))
        return len(held)

    def close(self) -> None:
        self.mysql.close()

    # -- internals ------------------------------------------------------------------------

    def _settle(self, element: Element) -> None:
        if self.held.pop((element.task_id, element.member), None) is None:
            raise ValueError(f"element {element} was not taken by this client, or was answered already")

    @staticmethod
    def _row(task_id: str, fields: Mapping[str, Any], result: Result, position: int) -> tuple[Any, ...]:
        return (
            task_id,
            fields["keyword"],
            fields["marketplace"],
            result.asin,
            result.title,
            result.price,
            result.currency,
            result.rating,
            result.review_count,
            fields["page"],
            result.position if result.position is not None else position,
        )

    def _maybe_flush(self) -> None:
        if len(self._answered) + len(self._empty) + len(self._failed) >= self.flush_every:
            self.flush()
