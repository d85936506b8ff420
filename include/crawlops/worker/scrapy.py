"""Scrapy integration: a spider that takes its work from every open task of its crawl objects,
and reports back through the kit. ``pip install .[scrapy]`` (Scrapy is not in the Airflow image).

Subclass ``TaskSpider``, set ``crawl_objects`` (default ``("search_result",)``), implement
``request_for(element)`` (the request of one element's page) and ``parse(response)`` (yield
one mapping of the object's result columns per result; ``EMPTY`` when the page says it has
none). The rest is done here (docs/worker.md, "Scrapy"): ``start()`` pulls elements from the
open tasks, never more than ``CRAWLOPS_MAX_HELD`` at a time; every request carries its
element (``request.meta["crawlops_element"]``) and is ``dont_filter``; every response passes
a block detector (``CRAWLOPS_BLOCK_DETECTOR``; a robot-check page fails as ``blocked``) and a
429/503 with ``Retry-After`` is waited out; a throttled marketplace's elements wait their turn
in ``start``; a download failure, an HTTP error, an exception in ``parse`` or an item that
fits none of the object's columns fails the element with its reason class; ``CrawlopsPipeline``
writes the rows through the kit, and an element is answered when its callback has finished
and its items have passed the pipeline (no items and no ``EMPTY``: ``nothing_parsed``);
answers are written before more elements are taken; on shutdown (SIGTERM) whatever is still
held is reported failed.

Run it with ``run_spider(MySpider, processes=N)`` (``examples/scrapy_search/spider.py``,
``examples/scrapy_product/spider.py``).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.asyncio import sleep as scrapy_sleep
from twisted.python.failure import Failure

from crawlops.reasons import BlockDetector, Blocked, Reason, amazon_block, retry_after_seconds
from crawlops.worker.client import WorkerClient
from crawlops.worker.loop import run_processes
from crawlops.worker.model import EMPTY, Element, Result

log = logging.getLogger(__name__)

META_KEY = "crawlops_element"
_WAITING_PER_HELD = 4  # elements of throttled marketplaces waiting their turn, per CRAWLOPS_MAX_HELD
RETRY_AFTER_KEY = "crawlops_retry_after"
MIDDLEWARE = "crawlops.worker.scrapy.CrawlopsSpiderMiddleware"
DOWNLOADER_MIDDLEWARE = "crawlops.worker.scrapy.CrawlopsDownloaderMiddleware"
PIPELINE = "crawlops.worker.scrapy.CrawlopsPipeline"
NOTHING_PARSED = Reason.NOTHING_PARSED.value


@dataclasses.dataclass
class ResultItem:
    """A result of an element's page, as it travels through the item pipelines."""

    element: Element
    result: Result


@dataclasses.dataclass
class _Pending:
    results: list[Result] = dataclasses.field(default_factory=list)
    items: int = 0  # items the callback yielded
    seen: int = 0  # of those, how many reached CrawlopsPipeline or were dropped on the way
    finished: bool = False
    said_empty: bool = False  # the callback yielded EMPTY


class TaskSpider(scrapy.Spider):
    """A spider fed by the open tasks. Settings: ``CRAWLOPS_MAX_HELD`` (elements held at
    once), ``CRAWLOPS_POLL_SECONDS`` (pause when there is no work, default 2),
    ``CRAWLOPS_FLUSH_SECONDS`` (how often answers are written, default 1),
    ``CRAWLOPS_BLOCK_DETECTOR`` (a ``(status, headers, body) -> str | None`` callable or its
    dotted path; default Amazon's markers), ``CRAWLOPS_RETRY_AFTER_TIMES`` (3) and
    ``CRAWLOPS_RETRY_AFTER_MAX_SECONDS`` (300). ``crawl_objects``: the crawl objects whose
    elements it takes (default ``search_result``; None: every one; ``CRAWLOPS_OBJECTS``
    narrows them); ``element.crawl_object`` says which one an element is of."""

    crawl_objects: tuple[str, ...] | None = ("search_result",)

    client: WorkerClient
    _pending: dict[tuple[str, bytes], _Pending]
    _stopping: bool
    _flusher: Any

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        super().update_settings(settings)
        middlewares = dict(settings.getdict("SPIDER_MIDDLEWARES"))
        middlewares.setdefault(MIDDLEWARE, 950)  # next to the spider: sees its output and exceptions first
        settings.set("SPIDER_MIDDLEWARES", middlewares, priority="spider")
        downloader = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
        # After decompression (590), before RetryMiddleware (550): a block or a Retry-After first.
        downloader.setdefault(DOWNLOADER_MIDDLEWARE, 580)
        settings.set("DOWNLOADER_MIDDLEWARES", downloader, priority="spider")
        pipelines = dict(settings.getdict("ITEM_PIPELINES"))
        pipelines.setdefault(PIPELINE, 900)  # after the team's own pipelines
        settings.set("ITEM_PIPELINES", pipelines, priority="spider")

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Any:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.client = kwargs.get("client") or WorkerClient.from_env(objects=cls.crawl_objects)
        spider._pending = {}
        spider._stopping = False
        spider._flusher = None
        crawler.signals.connect(spider._opened, signal=signals.spider_opened)
        crawler.signals.connect(spider._closing, signal=signals.engine_stopped)
        crawler.signals.connect(spider._item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(spider._item_error, signal=signals.item_error)
        return spider

    # -- what a team writes -----------------------------------------------------------

    def request_for(self, element: Element) -> scrapy.Request:
        """The request of ``element``'s page (its callback defaults to ``parse``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement request_for(element)")

    # -- work in ----------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        held_limit = self.settings.getint("CRAWLOPS_MAX_HELD") or self.settings.getint("CONCURRENT_REQUESTS")
        poll = self.settings.getfloat("CRAWLOPS_POLL_SECONDS", 2.0)
        # take (which writes what was answered first) once a quarter of the room is free, so
        # answers are written in batches, and never more than held_limit (plus the throttled
        # elements waiting below) wait unwritten
        refill = max(1, held_limit // 4)
        # Elements of a throttled marketplace wait here for their turn, outside Scrapy: waiting
        # in Scrapy (a middleware's sleep, a slot's delay) would hold its concurrency and starve
        # the other marketplaces. They do not count against held_limit, up to a bound.
        waiting: list[tuple[float, int, Element]] = []
        order = itertools.count()
        while not self._stopping:
            now = time.monotonic()
            while waiting and waiting[0][0] <= now:
                request = self._request(heapq.heappop(waiting)[2])
                if request is not None:
                    yield request
            room = held_limit - (len(self.client.held) - len(waiting))
            can_take = room >= refill and len(waiting) < _WAITING_PER_HELD * held_limit
            elements = self.client.take(room) if can_take else []
            for element in elements:
                delay = self.client.delay_for(element)
                if delay > 0:
                    heapq.heappush(waiting, (now + delay, next(order), element))
                    continue
                request = self._request(element)
                if request is not None:
                    yield request
            if not elements:
                pause = poll if can_take else 0.1
                await scrapy_sleep(min(pause, waiting[0][0] - now) if waiting else pause)

    def _request(self, element: Element) -> scrapy.Request | None:
        try:
            request = self.request_for(element)
        except Exception as exc:
            self.client.fail(element, f"{Reason.OTHER.value}: request_for raised {type(exc).__name__}: {exc}")
            return None
        request.meta[META_KEY] = element
        return request.replace(dont_filter=True, errback=self._download_failed)

    def _download_failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        element = request.meta.get(META_KEY) if request is not None else None
        if element is not None:
            self._fail(element, failure.value)  # classified: http_<code>, blocked, timeout, connection...

    # -- answers out ------------------------------------------------------------------

    def _produced(self, element: Element) -> _Pending:
        return self._pending.setdefault((element.task_id, element.member), _Pending())

    def _fail(self, element: Element, reason: object) -> None:
        if self._pending.pop((element.task_id, element.member), None) is not None or self._holds(element):
            self.client.fail(element, reason)

    def _holds(self, element: Element) -> bool:
        return (element.task_id, element.member) in self.client.held

    def _add_result(self, element: Element, result: Result | None) -> None:
        pending = self._pending.get((element.task_id, element.member))
        if pending is None:
            return  # failed meanwhile (another item's pipeline error)
        pending.seen += 1
        if result is not None:
            pending.results.append(result)
        self._maybe_answer(element, pending)

    def _finished(self, element: Element, items: int, said_empty: bool) -> None:
        pending = self._produced(element)
        pending.items, pending.finished, pending.said_empty = items, True, said_empty
        self._maybe_answer(element, pending)

    def _maybe_answer(self, element: Element, pending: _Pending) -> None:
        if not (pending.finished and pending.seen >= pending.items):
            return
        del self._pending[(element.task_id, element.member)]
        if not self._holds(element):
            return
        if pending.results:
            self.client.answer(element, pending.results)
        elif pending.said_empty and not pending.items:
            self.client.empty(element)
        elif pending.items:
            self.client.fail(element, f"{NOTHING_PARSED}: the item pipelines dropped all {pending.items} items")
        else:
            self.client.fail(element, f"{NOTHING_PARSED}: the callback yielded no item and no EMPTY")

    def _item_dropped(self, item: Any, response: Response, exception: BaseException, **_: Any) -> None:
        if isinstance(item, ResultItem):
            self._add_result(item.element, None)  # a team's pipeline filtered it: not a row

    def _item_error(self, item: Any, response: Response, failure: Failure, **_: Any) -> None:
        if isinstance(item, ResultItem):
            self._fail(item.element, f"item pipeline error: {failure.getErrorMessage()}")

    def _flush(self) -> None:
        try:
            self.client.flush()
        except Exception:  # the next flush retries; answers stay buffered
            log.exception("writing answers failed")

    def _opened(self, spider: scrapy.Spider) -> None:
        self._flusher = create_looping_call(self._flush)  # the reactor is running by now
        self._flusher.start(self.settings.getfloat("CRAWLOPS_FLUSH_SECONDS", 1.0), now=False)

    def _closing(self) -> None:
        self._stopping = True
        if self._flusher is not None and self._flusher.running:
            self._flusher.stop()
        self._pending.clear()
        released = self.client.release("spider closed")
        log.info("crawlops: %s (released %d)", self.client.tally, released)
        self.client.close()

    def closed(self, reason: str) -> None:
        self._stopping = True


class CrawlopsSpiderMiddleware:
    """Turns a callback's output for an element into ``ResultItem`` s and tells the spider
    when the callback is done; an exception in the callback reports the element failed."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlopsSpiderMiddleware:
        return cls(crawler)

    def _spider(self) -> TaskSpider | None:
        spider = self.crawler.spider
        return spider if isinstance(spider, TaskSpider) else None

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterable[Any]:
        element, spider = response.meta.get(META_KEY), self._spider()
        if element is None or spider is None:
            yield from result
            return
        page = _Page(spider, element)
        for out in result:
            if (passed := page.take(out)) is not None:
                yield passed
        page.done()

    async def process_spider_output_async(self, response: Response, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        element, spider = response.meta.get(META_KEY), self._spider()
        if element is None or spider is None:
            async for out in result:
                yield out
            return
        page = _Page(spider, element)
        async for out in result:
            if (passed := page.take(out)) is not None:
                yield passed
        page.done()

    def process_spider_exception(self, response: Response, exception: Exception) -> Iterable[Any] | None:
        element, spider = response.meta.get(META_KEY), self._spider()
        if element is None or spider is None:
            return None
        spider._fail(element, exception)  # parse_error, or the reason of a Failed it raised
        return ()  # handled: the element is retried as a task of its own


class _Page:
    """One callback's output for an element: items become ``ResultItem`` s checked against its
    crawl object; one that does not fit fails the element (``parse_error``), the rest is dropped."""

    def __init__(self, spider: TaskSpider, element: Element) -> None:
        self.spider, self.element, self.items, self.said_empty, self.broken = spider, element, 0, False, False
        spider._produced(element)

    def take(self, out: Any) -> Any:
        if isinstance(out, scrapy.Request):
            return out
        if out is EMPTY or self.broken:
            self.said_empty = self.said_empty or out is EMPTY
            return None
        try:
            item = _result_item(self.element, out)
        except (ValueError, TypeError) as exc:
            self.broken = True
            self.spider._fail(self.element, exc)
            return None
        self.items += 1
        return item

    def done(self) -> None:
        if not self.broken:
            self.spider._finished(self.element, self.items, self.said_empty)


def _result_item(element: Element, out: Any) -> ResultItem:
    if isinstance(out, ResultItem):
        Result.of(out.result, out.element.crawl_object)
        return out
    if not isinstance(out, Result | Mapping):
        from itemadapter import ItemAdapter

        out = ItemAdapter(out).asdict()
    return ResultItem(element, Result.of(out, element.crawl_object))


class CrawlopsDownloaderMiddleware:
    """Every response of an element: a block page raises ``Blocked`` (its errback fails the
    element as ``blocked``); a 429/503 with ``Retry-After`` waits and fetches again."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        detector = settings.get("CRAWLOPS_BLOCK_DETECTOR") or amazon_block
        if isinstance(detector, str):
            from scrapy.utils.misc import load_object

            detector = load_object(detector)
        self.detect: BlockDetector = detector
        self.retry_after_times = settings.getint("CRAWLOPS_RETRY_AFTER_TIMES", 3)
        self.retry_after_max = settings.getfloat("CRAWLOPS_RETRY_AFTER_MAX_SECONDS", 300.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlopsDownloaderMiddleware:
        return cls(crawler)

    async def process_response(self, request: scrapy.Request, response: Response) -> Response | scrapy.Request:
        if request.meta.get(META_KEY) is None:
            return response
        marker = self.detect(response.status, response.headers, response.body)
        if marker:
            raise Blocked(marker)
        if response.status in (429, 503):
            delay = retry_after_seconds(response.headers.get(b"Retry-After"))
            times = int(request.meta.get(RETRY_AFTER_KEY, 0))
            if delay is not None and delay <= self.retry_after_max and times < self.retry_after_times:
                log.info("HTTP %d with Retry-After %.0f s: %s fetched again then", response.status, delay, request.url)
                await scrapy_sleep(delay)
                again = request.replace(dont_filter=True)
                again.meta[RETRY_AFTER_KEY] = times + 1
                return again
        return response


class CrawlopsPipeline:
    """Writes each ``ResultItem`` through the kit (batched; committed before the element counts)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlopsPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        spider = self.crawler.spider
        if isinstance(item, ResultItem) and isinstance(spider, TaskSpider):
            spider._add_result(item.element, item.result)
        return item


def run_spider(spider_cls: type[TaskSpider], settings: Mapping[str, Any] | None = None, *, processes: int = 1) -> int:
    """Run ``spider_cls`` until SIGTERM / SIGINT (Scrapy's graceful stop), in this process or
    in ``processes`` child processes (each its own Scrapy); returns how many failed."""
    if processes > 1:
        return run_processes(_crawl, (spider_cls, settings), processes, name=f"crawlops-{spider_cls.name}")
    _crawl(spider_cls, settings)
    return 0


def _crawl(spider_cls: type[TaskSpider], settings: Mapping[str, Any] | None) -> None:
    from scrapy.crawler import CrawlerProcess

    process = CrawlerProcess({"LOG_LEVEL": "INFO", "TELNETCONSOLE_ENABLED": False, **(settings or {})})
    process.crawl(spider_cls)
    process.start()
