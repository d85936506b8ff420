"""A fake Amazon on 127.0.0.1 for the contract kit, the simulator and the example spiders.

``GET /s?k=<keyword>&mp=<marketplace>&page=<n>`` serves one search results page
(``search_result``), ``/dp/<asin>?mp=<marketplace>`` a product page (``product_detail``) and
``/product-reviews/<asin>?mp=<marketplace>&page=<n>`` a review page (``product_review``; both
in ``crawlops.harness.fakepages``; ``PAGES`` says how each object's pages are served, parsed
and checked). What a page does is decided per element (its ``Key``: the element's fields in
their canonical order) by a ``plan`` (``PageKind``), the same for every request; for search:

- ``results``: 1-16 results, each a ``div.s-result`` with ``data-asin``, ``h2.title``,
  ``span.price`` (``data-currency``), ``span.rating`` and ``span.reviews``;
- ``empty``: a page that says there are no results (``div.no-results``);
- ``fail``: HTTP 503 (a broken fetch);
- ``broken``: HTTP 200, but a result lacks its ASIN, so a parser that checks raises;
- ``slow``: results after ``slow_seconds``;
- ``blocked``: HTTP 200 with Amazon's robot-check page ("Enter the characters you see
  below"), as Amazon answers a crawler it has noticed;
- ``bare``: HTTP 200, a page with neither results nor a no-results notice (a changed
  layout): a parser finds nothing on it, and that is no empty answer;
- ``throttled``: HTTP 429 with ``Retry-After: 1`` on the first request, results after.

``blocked_markets`` blocks that share of each marketplace's pages besides (chosen by the
element, so the same pages every time), and ``requests_at`` keeps when each marketplace was
asked, to measure a throttle.

The results of a page are derived from its element, so a checker knows what rows to expect
(``expected``, ``PAGES[...].expected``). Selectors are the fake site's, not Amazon's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from crawlops import objects
from crawlops.harness.fakepages import (
    ROBOT_CHECK,
    Key,
    PageKind,
    expected_detail,
    expected_reviews,
    parse_detail,
    parse_reviews,
    product_url,
    render_detail,
    render_reviews,
    reviews_url,
)
from crawlops.reasons import Blocked, amazon_block
from crawlops.worker.model import EMPTY, Element, Empty, Result

CURRENCY = {"US": "USD", "UK": "GBP", "DE": "EUR", "FR": "EUR", "JP": "JPY"}


def page_url(base: str, keyword: str, marketplace: str, page: int | None) -> str:
    """The fake site's URL of a search element's page (``page`` None: the first)."""
    return f"{base.rstrip('/')}/s?k={quote(keyword, safe='')}&mp={quote(marketplace, safe='')}&page={page or 1}"


def expected(keyword: str, marketplace: str, page: int) -> list[Result]:
    """The results the site serves for a ``results`` or ``slow`` page (deterministic)."""
    seed = hashlib.sha256(f"{keyword}\x00{marketplace}\x00{page}".encode()).digest()
    count = 1 + seed[0] % 16
    out = []
    for position in range(1, count + 1):
        h = hashlib.sha256(seed + position.to_bytes(2, "big")).hexdigest().upper()
        asin = "B0" + "".join(c for c in h if c.isalnum())[:8]
        out.append(
            Result(
                asin=asin,
                title=f"{keyword} — result {position}",
                price=round(1 + int(h[8:14], 16) % 30000 / 100, 2),
                currency=CURRENCY.get(marketplace, "USD"),
                rating=round(1 + int(h[14:16], 16) % 41 / 10, 1),
                review_count=int(h[16:22], 16) % 50_000,
                position=position,
            )
        )
    return out


def render(keyword: str, marketplace: str, page: int, kind: PageKind) -> str:
    """The HTML of a page (``fail`` pages are not rendered: they are a 503)."""
    head = f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(keyword)}</title></head><body>'
    if kind is PageKind.EMPTY:
        return head + f'<div class="no-results">No results for {html.escape(keyword)}.</div></body></html>'
    if kind is PageKind.BLOCKED:
        return ROBOT_CHECK
    if kind is PageKind.BARE:
        return head + '<div id="search-v2" class="s-main-slot"></div></body></html>'
    parts = [head, f'<div id="search" data-page="{page}">']
    for r in expected(keyword, marketplace, page):
        asin = "" if kind is PageKind.BROKEN and r.position == 1 else f' data-asin="{r.asin}"'
        parts.append(
            f'<div class="s-result"{asin} data-position="{r.position}">'
            f'<h2 class="title">{html.escape(r.title or "")}</h2>'
            f'<span class="price" data-currency="{r.currency}">{r.price:.2f}</span>'
            f'<span class="rating">{r.rating}</span><span class="reviews">{r.review_count}</span></div>'
        )
    return "".join([*parts, "</div></body></html>"])


_RESULT = re.compile(r'<div class="s-result"([^>]*)>(.*?)</div>', re.S)
_ATTR = re.compile(r'([a-z-]+)="([^"]*)"')


def parse(page: str) -> list[Result] | Empty:
    """The site's results (a plain parser, for workers without Scrapy): ``EMPTY`` when the page
    says there are none; a robot-check page raises ``Blocked``, a result without an ASIN
    ``ValueError``; a page with neither (a changed layout) gives no results, which the kit
    fails as ``nothing_parsed``."""
    marker = amazon_block(200, {}, page.encode("utf-8"))
    if marker:
        raise Blocked(marker)
    if 'class="no-results"' in page:
        return EMPTY
    results = []
    for attrs_text, body in _RESULT.findall(page):
        attrs = dict(_ATTR.findall(attrs_text))
        if "data-asin" not in attrs:
            raise ValueError("a result without data-asin: the page layout changed")
        title = re.search(r'<h2 class="title">(.*?)</h2>', body, re.S)
        price = re.search(r'<span class="price" data-currency="([^"]*)">([^<]*)</span>', body)
        rating = re.search(r'<span class="rating">([^<]*)</span>', body)
        reviews = re.search(r'<span class="reviews">([^<]*)</span>', body)
        results.append(
            Result(
                asin=attrs["data-asin"],
                title=html.unescape(title.group(1)) if title else None,
                price=float(price.group(2)) if price else None,
                currency=price.group(1) if price else None,
                rating=float(rating.group(1)) if rating else None,
                review_count=int(reviews.group(1)) if reviews else None,
                position=int(attrs["data-position"]),
            )
        )
    return results


@dataclasses.dataclass(frozen=True)
class Pages:
    """How the site serves one crawl object's pages, keyed by the element (``Key``)."""

    url: Callable[[str, Key], str]  # (base URL, key) -> the page's URL
    render: Callable[[Key, PageKind], str]
    expected: Callable[[Key], list[Result]]  # what a results page holds
    parse: Callable[[str], list[Result] | Empty]  # a plain parser of the page
    match: str  # the column that tells one result from another ("results match the page")


#: The crawl objects the site has pages for.
PAGES = {
    "search_result": Pages(lambda b, k: page_url(b, *k), lambda k, kind: render(k[0], k[1], k[2], kind),
                           lambda k: expected(*k), parse, "asin"),
    "product_detail": Pages(lambda b, k: product_url(b, *k), lambda k, kind: render_detail(k[0], k[1], kind),
                            lambda k: expected_detail(*k), parse_detail, "title"),
    "product_review": Pages(lambda b, k: reviews_url(b, *k), lambda k, kind: render_reviews(k[0], k[1], k[2], kind),
                            lambda k: expected_reviews(*k), parse_reviews, "review_id"),
}  # fmt: skip


def key_of(crawl_object: str, fields: Mapping[str, Any]) -> Key:
    """An element's key: its fields' values in the object's canonical order."""
    return tuple(fields[f] for f in objects.get(crawl_object).element_fields)


def element_url(base: str, element: Element) -> str:
    """The site's URL of ``element``'s page, whatever its crawl object."""
    return PAGES[element.crawl_object].url(base, key_of(element.crawl_object, element.fields))


def parse_page(crawl_object: str, page: str) -> list[Result] | Empty:
    """A page of ``crawl_object`` parsed by the site's plain parser."""
    return PAGES[crawl_object].parse(page)


def _route(path: str, query: dict[str, list[str]]) -> tuple[str, Key]:
    """(crawl object, key) of a request; ``KeyError`` / ``ValueError`` / ``IndexError`` for none."""
    marketplace = query["mp"][0]
    if path == "/s":
        return "search_result", (query["k"][0], marketplace, int(query["page"][0]))
    head, _, asin = path.lstrip("/").partition("/")
    if head == "dp" and asin:
        return "product_detail", (unquote(asin), marketplace)
    if head == "product-reviews" and asin:
        return "product_review", (unquote(asin), marketplace, int(query["page"][0]))
    raise KeyError(path)


@dataclasses.dataclass
class SearchSite:
    """The site, serving in a thread; ``plan`` maps an element's key to its page's kind (default
    results), whatever its crawl object (the shipped objects' keys differ in targets or length)."""

    plan: Mapping[Key, PageKind] = dataclasses.field(default_factory=dict)
    slow_seconds: float = 1.0
    requests: Counter[Key] = dataclasses.field(default_factory=Counter)
    blocked_markets: Mapping[str, float] = dataclasses.field(default_factory=dict)
    requests_at: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.answer(self)

            def log_message(self, *_: Any) -> None:  # quiet: the checker reports, not the server
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-search-site", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def kind(self, key: Key) -> PageKind:
        share = self.blocked_markets.get(key[1], 0.0)
        if share and hashlib.sha256(repr(key).encode()).digest()[0] < share * 256:
            return PageKind.BLOCKED
        return self.plan.get(key, PageKind.RESULTS)

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        try:
            crawl_object, key = _route(parts.path, parse_qs(parts.query))
        except (KeyError, ValueError, IndexError):
            self._send(request, 404, "not a page: /s?k=&mp=&page=, /dp/<asin>?mp=, /product-reviews/<asin>?mp=&page=")
            return
        self.requests[key] += 1
        self.requests_at.setdefault(key[1], []).append(time.monotonic())
        kind = self.kind(key)
        if kind is PageKind.FAIL:
            self._send(request, 503, "Service Unavailable")
            return
        if kind is PageKind.THROTTLED and self.requests[key] == 1:
            self._send(request, 429, "Too Many Requests", {"Retry-After": "1"})
            return
        if kind is PageKind.SLOW:
            time.sleep(self.slow_seconds)
        self._send(request, 200, PAGES[crawl_object].render(key, kind))

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, status: int, body: str, headers: Mapping[str, str] | None = None
    ) -> None:
        data = body.encode("utf-8")
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SearchSite:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


FakeSite = SearchSite  # it serves product and review pages too
__all__ = ["PAGES", "ROBOT_CHECK", "FakeSite", "Key", "PageKind", "Pages", "SearchSite", "expected", "page_url",
           "parse", "render"]  # fmt: skip
