"""The worker's side of the crawler protocol, kept in one client so no crawler gets it wrong.

A worker finds open task ids in the Redis index ``crawlops:open_tasks`` (most urgent task
first, see ``open_tasks``), takes elements with ``SPOP``, and answers each one it took in
exactly one way: result rows in its crawl object's results table (``crawlops.objects``), the
member in ``<task_id>_empty`` (crawled, and the crawler says there is nothing there) or the
member in ``<task_id>_fail`` with a reason class (retried as a task of its own). The client
keeps the rules a hand-written worker breaks:

- the member reported back is the one popped, byte for byte (never re-encoded JSON);
- a row's ``task_id`` and the element's fields (``keyword``, ``marketplace``, ``page``;
  ``asin``...) are copied from the element; the rest must be the object's columns, each of
  its type family (``ResultError`` otherwise);
- ``create_time`` is written explicitly, in UTC;
- empty is said, never assumed: ``empty(e)`` or ``answer(e, EMPTY)``; results that are
  none (``answer(e, [])``) fail the element as ``nothing_parsed``;
- each failure keeps its reason class (``crawlops.reasons``), and each answer is counted
  per crawl object, marketplace and outcome, for supervision (``crawlops.telemetry``);
- rows are committed before an element counts as answered, in batches, and what was
  answered is written before more is taken: a killed worker loses (to a re-crawl) only
  the elements of its last ``take`` s that were not yet written, never more than it held;
- whatever it took and did not answer is reported failed by ``release`` (a stopped worker
  loses nothing; a killed one is caught by supervision after the grace period);
- a heartbeat every ``heartbeat_seconds`` says the worker is alive, and a throttle flag
  set by supervision slows its requests to a blocked marketplace (``pace``).

No Airflow import, and nothing but ``redis`` and ``MySQLdb`` underneath.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from crawlops import objects, queue, telemetry
from crawlops.db import Connection
from crawlops.model import crawl_object_of
from crawlops.objects.base import CrawlObject
from crawlops.queue import RedisClient
from crawlops.reasons import Reason, classify
from crawlops.store import results
from crawlops.worker.model import EMPTY, Element, Empty, Result, Tally, check_result, served_objects, utc_now

log = logging.getLogger(__name__)


class WorkerClient:
    """Take elements and answer them, per the worker contract (docs/worker.md, "The worker contract").

    Answers are buffered and written by ``flush`` (rows first, committed, into each element's
    crawl object's results table; then the empty and fail sets, the reasons, the outcome
    counts and the heartbeat in one Redis round trip), at the latest every ``flush_every``
    answers, and always before ``take`` takes more.
    ``objects``: the crawl objects this worker serves (names, or comma-separated text; default
    every registered one): it takes elements of those objects' tasks only.
    """

    def __init__(
        self,
        redis: RedisClient,
        mysql: Connection,
        *,
        clock: Callable[[], dt.datetime] = utc_now,
        flush_every: int = 500,
        objects: str | Sequence[str] | None = None,
        heartbeat_seconds: float = 5.0,
        throttle_refresh_seconds: float = 5.0,
        worker_id: str | None = None,
    ) -> None:
        self.redis, self.mysql, self.clock = redis, mysql, clock
        self.flush_every = flush_every
        self.objects = served_objects(objects)
        self.held: dict[tuple[str, bytes], Element] = {}  # taken, not yet answered
        self.tally = Tally()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.heartbeat_seconds = heartbeat_seconds
        self.throttle_refresh_seconds = throttle_refresh_seconds
        self._started = utc_now()
        self._last_beat = 0.0
        self._served: set[str] = set(self.objects or ())
        self._objects_of: dict[str, str] = {}  # task id -> its crawl object
        self._throttles: dict[str, tuple[float, float]] = {}  # marketplace -> (interval, read at)
        self._next_request: dict[str, float] = {}  # marketplace -> monotonic time of its next request
        self._pace_lock = threading.Lock()
        self._rows: dict[str, list[tuple[Any, ...]]] = {}  # results table -> rows to write
        self._answered: list[Element] = []
        self._empty: list[Element] = []
        self._failed: list[tuple[Element, str, str]] = []
        self._uncounted: set[tuple[str, bytes]] = set()  # released, never crawled: not what a crawler saw

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> WorkerClient:
        """A client from ``CRAWLOPS_MYSQL_URL`` (``mysql://user:pass@host:port/db``),
        ``CRAWLOPS_REDIS_URL`` (``redis://host:port/db``) and ``CRAWLOPS_OBJECTS`` (the crawl
        objects served, comma-separated; default all). Given ``objects`` too (a spider's
        ``crawl_objects``), ``CRAWLOPS_OBJECTS`` narrows them, and naming none of them is an error."""
        env = os.environ if environ is None else environ
        from_env = served_objects(env.get("CRAWLOPS_OBJECTS"))
        given = served_objects(kwargs.get("objects"))
        if from_env is not None and given is not None:
            narrowed = tuple(o for o in given if o in from_env)
            if not narrowed:
                raise ValueError(f"CRAWLOPS_OBJECTS={env['CRAWLOPS_OBJECTS']} names none of {', '.join(given)}")
            given = narrowed
        kwargs["objects"] = given if given is not None else from_env
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
        """The open task ids this worker serves (of its ``objects``; of every crawl object
        registered in this process by default), most urgent first: higher ``priority`` (the
        highest of the task's config rows, published by dispatch), then retries before the
        tasks they retry (they are older work), then the oldest interval."""
        served = self.objects if self.objects is not None else objects.REGISTRY
        return [t for t in queue.open_tasks_by_urgency(self.redis) if crawl_object_of(t) in served]

    def take(self, count: int) -> list[Element]:
        """Up to ``count`` elements, from the most urgent open tasks first (``SPOP``); what was
        answered before is written first, so a worker killed now loses none of it."""
        if self._answered or self._empty or self._failed:
            self.flush()
        elif time.monotonic() - self._last_beat >= self.heartbeat_seconds:
            self.beat()
        taken: list[Element] = []
        for task_id in self.open_tasks():
            if len(taken) >= count:
                break
            for member in queue.take(self.redis, task_id, count - len(taken)):
                element = Element(task_id, member)
                self.held[(element.task_id, element.member)] = element
                taken.append(element)
        self.tally.taken += len(taken)
        return taken

    # -- answering ------------------------------------------------------------------------

    def answer(self, element: Element, results: Iterable[Result | Mapping[str, Any]] | Empty) -> None:
        """The element's results, written by ``flush`` into its crawl object's results table.
        ``EMPTY``: answered empty. No results without ``EMPTY``: the page parsed to nothing,
        failed as ``nothing_parsed``. A result that does not fit the object's columns raises
        ``ResultError`` (the element stays held: fail it, as ``run`` and the Scrapy kit do)."""
        if results is EMPTY:
            self.empty(element)
            return
        assert not isinstance(results, Empty)  # noqa: S101 - narrows the type for mypy
        spec = objects.get(self._object_of(element))
        fields = element.fields
        written = spec.written_columns[1:]
        rows = [self._row(spec, element.task_id, fields, r, n, written=written) for n, r in enumerate(results, 1)]
        if not rows:
            self.fail(element, Reason.NOTHING_PARSED)
            return
        self._settle(element)
        self._rows.setdefault(spec.results_table, []).extend(rows)
        self._answered.append(element)
        self._maybe_flush()

    def empty(self, element: Element) -> None:
        """Crawled, and the page says there is nothing: ``SADD <task_id>_empty <member>`` (at ``flush``)."""
        self._settle(element)
        self._empty.append(element)
        self._maybe_flush()

    def fail(self, element: Element, reason: object = None) -> None:
        """Not crawled: ``SADD <task_id>_fail <member>`` with its reason class (at ``flush``);
        it is retried. ``reason``: a reason class (``"http_503"``, ``Reason.BLOCKED``), an
        exception (classified: ``crawlops.reasons.classify``) or text (``other``)."""
        cls, detail = classify(reason)
        if reason is not None:
            log.warning("element %s failed: %s%s", element, cls, f" ({detail})" if detail else "")
        self._settle(element)
        self._failed.append((element, cls, detail))
        self._maybe_flush()

    def abandon(self, element: Element) -> None:
        """Drop an element without answering it, as a killed worker would (for simulations and
        tests: supervision finds it lost once its task has drained and the grace has passed)."""
        self._settle(element)

    def flush(self) -> Tally:
        """Write what was answered: rows (one commit), then in one Redis round trip the empty
        and fail sets, the failure reasons, the outcome counts and the heartbeat."""
        done = Tally(answered=len(self._answered), empty=len(self._empty), failed=len(self._failed))
        done.rows = sum(len(rows) for rows in self._rows.values())
        done.reasons.update(cls for _, cls, _ in self._failed)
        if self._rows:
            stamp = self.clock().astimezone(dt.UTC)  # written explicitly: never the session's zone
            for table in sorted(self._rows):  # one commit a table; a table written is not written again
                results.insert_rows(self.mysql, table, self._rows[table], lambda: stamp)
                del self._rows[table]
        if self._answered or self._empty or self._failed:
            pipe = self.redis.pipeline(transaction=False)
            self._write_answers(pipe)
            self.tally.add(done)
            self._beat(pipe)
            pipe.execute()
        self._answered, self._empty, self._failed = [], [], []
        self._uncounted.clear()
        return done

    def _write_answers(self, pipe: Any) -> None:
        empty: dict[str, list[bytes]] = {}
        failed: dict[str, list[bytes]] = {}
        reasons: dict[str, dict[bytes, str]] = {}
        counts: Counter[str] = Counter()
        for element in self._empty:
            empty.setdefault(element.task_id, []).append(element.member)
            counts[self._outcome(element, telemetry.EMPTY)] += 1
        for element, cls, detail in self._failed:
            failed.setdefault(element.task_id, []).append(element.member)
            reasons.setdefault(element.task_id, {})[element.member] = telemetry.encode_reason(cls, detail)
            if (element.task_id, element.member) not in self._uncounted:
                counts[self._outcome(element, telemetry.FAILED, cls)] += 1
        for element in self._answered:
            counts[self._outcome(element, telemetry.ANSWERED)] += 1
        queue.report(pipe, failed=failed, empty=empty)
        for task_id, mapping in reasons.items():
            telemetry.write_reasons(pipe, task_id, mapping)
        telemetry.count_outcomes(pipe, self.clock(), counts)

    def _object_of(self, element: Element) -> str:
        crawl_object = self._objects_of.get(element.task_id)
        if crawl_object is None:
            crawl_object = self._objects_of[element.task_id] = element.crawl_object
            self._served.add(crawl_object)
        return crawl_object

    def _outcome(self, element: Element, outcome: str, reason: str = "") -> str:
        crawl_object = self._object_of(element)
        try:
            marketplace = str(element.fields.get("marketplace", ""))
        except ValueError:
            marketplace = ""  # not an element (a worker's garbage): counted, never judged per marketplace
        return telemetry.outcome_field(crawl_object, marketplace, outcome, reason)

    def beat(self) -> None:
        """Say this worker is alive (``crawlops:workers`` and its facts hash); done by
        ``take`` and ``flush`` every ``heartbeat_seconds``, call it during long pauses."""
        pipe = self.redis.pipeline(transaction=False)
        self._beat(pipe, force=True)
        pipe.execute()

    def _beat(self, pipe: Any, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_beat < self.heartbeat_seconds:
            return
        self._last_beat = now
        tally = self.tally
        telemetry.beat(pipe, self.worker_id, {
            "host": socket.gethostname(), "pid": os.getpid(), "objects": ",".join(sorted(self._served)) or "*",
            "held": len(self.held), "taken": tally.taken, "answered": tally.answered, "empty": tally.empty,
            "failed": tally.failed, "started": self._started.isoformat(timespec="seconds"),
        }, utc_now())  # fmt: skip

    # -- throttles ----------------------------------------------------------------------------

    def throttle_interval(self, marketplace: str) -> float:
        """Seconds this worker leaves between two requests to ``marketplace`` (0: not throttled),
        as supervision set it (``crawlops:throttle:<marketplace>``), re-read every few seconds."""
        now = time.monotonic()
        cached = self._throttles.get(marketplace)
        if cached is None or now - cached[1] >= self.throttle_refresh_seconds:
            interval = telemetry.throttles(self.redis, [marketplace]).get(marketplace, 0.0)
            if interval != (cached[0] if cached else 0.0):
                log.info("marketplace %s: one request every %.1f s (0: not throttled)", marketplace, interval)
            self._throttles[marketplace] = cached = (interval, now)
        return cached[0]

    def delay_for(self, element: Element) -> float:
        """Seconds to wait before fetching ``element`` to honour its marketplace's throttle; the
        slot is booked, so concurrent callers queue up one interval apart."""
        try:
            marketplace = str(element.fields.get("marketplace", ""))
        except ValueError:
            return 0.0
        interval = self.throttle_interval(marketplace) if marketplace else 0.0
        if not interval:
            return 0.0
        with self._pace_lock:
            now = time.monotonic()
            at = max(now, self._next_request.get(marketplace, now))
            self._next_request[marketplace] = at + interval
        return at - now

    def pace(self, element: Element) -> None:
        """Sleep as long as ``delay_for`` says (for plain, threaded workers)."""
        delay = self.delay_for(element)
        if delay > 0:
            time.sleep(delay)

    def release(self, reason: str = "worker stopped") -> int:
        """Report every element taken and not answered as failed, and flush: call on shutdown.
        They were never crawled, so they are left out of the outcome counts surges are judged by."""
        held = list(self.held.values())
        for element in held:
            self._uncounted.add((element.task_id, element.member))
            self.fail(element, f"{Reason.OTHER.value}: {reason}, not crawled")
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
    def _row(
        spec: CrawlObject,
        task_id: str,
        fields: Mapping[str, Any],
        item: Result | Mapping[str, Any],
        n: int,
        *,
        written: Sequence[str],
    ) -> tuple[Any, ...]:
        """A result as the row ``insert_rows`` writes: the object's ``written_columns`` in order,
        ``task_id`` and the element's fields from the element, the position defaulting to ``n``."""
        result = Result.of(item)
        check_result(result, spec)
        values = result.values
        row: list[Any] = [task_id]
        for column in written:
            if column in fields:
                row.append(fields[column])
            elif column == spec.position_column and values.get(column) is None:
                row.append(n)
            else:
                row.append(values.get(column))
        return tuple(row)

    def _maybe_flush(self) -> None:
        if len(self._answered) + len(self._empty) + len(self._failed) >= self.flush_every:
            self.flush()
