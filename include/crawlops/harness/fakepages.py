"""The fake site's page kinds, and its product pages (``product_detail``) and review pages
(``product_review``); the search pages and the server are ``crawlops.harness.fakesite``'s.

- ``GET /dp/<asin>?mp=<marketplace>``: one product (``div#dp`` with ``data-asin``,
  ``h1#title``, ``a#brand``, ``span.price`` with ``data-currency``, ``span.list-price``,
  ``span.rating``, ``span.reviews``, ``div#availability`` with ``data-state``, ``span#seller``,
  ``span#rank``, ``span#category``); an empty page says the product is no longer available
  (``div.no-product``); a broken one lacks the product's ``data-asin``.
- ``GET /product-reviews/<asin>?mp=<marketplace>&page=<n>``: 1-10 reviews, each a
  ``div.review`` with ``data-review-id`` and ``data-position``, ``span.review-rating``,
  ``a.review-title``, ``span.review-author``, ``span.review-date`` with ``data-date``,
  ``span.verified`` (verified purchases only), ``span.helpful`` and ``p.review-body``; an empty
  page says there are no reviews (``div.no-reviews``); on a broken one the first review lacks
  its ``data-review-id``.

Every kind of page (``PageKind``) is served for both, as for search. What a page holds is
derived from its element, so a checker knows the rows to expect (``expected_detail``,
``expected_reviews``). Selectors are the fake site's, not Amazon's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from crawlops.objects.product_detail import AVAILABILITY, CURRENCIES
from crawlops.reasons import Blocked, amazon_block
from crawlops.worker.model import EMPTY, Empty, Result

#: A page's element as the site knows it: the element's fields in their canonical order
#: (``(keyword, marketplace, page)``, ``(asin, marketplace)``, ``(asin, marketplace, page)``).
Key = tuple[Any, ...]


class PageKind(StrEnum):
    RESULTS = "results"
    EMPTY = "empty"
    FAIL = "fail"
    BROKEN = "broken"
    SLOW = "slow"
    BLOCKED = "blocked"
    BARE = "bare"
    THROTTLED = "throttled"


# What Amazon serves instead of a page when it suspects a robot (abridged, same markers).
ROBOT_CHECK = (
    '<!doctype html><html><head><title>Amazon.com</title></head><body><div class="a-container">'
    '<h4>Enter the characters you see below</h4><p class="a-last">Sorry, we just need to make sure you\'re '
    "not a robot. For best results, please make sure your browser is accepting cookies.</p>"
    '<form method="get" action="/errors/validateCaptcha"><input id="captchacharacters" name="field-keywords">'
    "</form></div></body></html>"
)
BRANDS = ("Anker", "Ugreen", "Belkin", "Sony", "Nitori", "Müller & Söhne")
CATEGORIES = ("Electronics", "Home & Kitchen", "Books", "Toys", "Beauty")


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest().upper()


def _head(title: str) -> str:
    return f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head><body>'


def _check_blocked(page: str) -> None:
    marker = amazon_block(200, {}, page.encode("utf-8"))
    if marker:
        raise Blocked(marker)


# -- product detail ---------------------------------------------------------------------------


def product_url(base: str, asin: str, marketplace: str) -> str:
    return f"{base.rstrip('/')}/dp/{quote(asin, safe='')}?mp={quote(marketplace, safe='')}"


def expected_detail(asin: str, marketplace: str) -> list[Result]:
    """The one result of a product page (deterministic)."""
    h = _digest(asin, marketplace)
    price = round(1 + int(h[0:6], 16) % 30000 / 100, 2)
    return [
        Result(
            title=f"{BRANDS[int(h[6], 16) % len(BRANDS)]} product {asin} — “{marketplace}” edition",
            brand=BRANDS[int(h[6], 16) % len(BRANDS)],
            price=price,
            currency=CURRENCIES.get(marketplace, "USD"),
            list_price=None if int(h[7], 16) % 3 == 0 else round(price * 1.25, 2),
            rating=round(1 + int(h[8:10], 16) % 41 / 10, 1),
            review_count=int(h[10:15], 16) % 50_000,
            availability=AVAILABILITY[int(h[15], 16) % len(AVAILABILITY)],
            seller=f"Seller {h[16:20]}",
            best_seller_rank=1 + int(h[20:25], 16) % 100_000,
            category=CATEGORIES[int(h[25], 16) % len(CATEGORIES)],
        )
    ]


def render_detail(asin: str, marketplace: str, kind: PageKind) -> str:
    """The HTML of a product page (``fail`` pages are not rendered: they are a 503)."""
    if kind is PageKind.BLOCKED:
        return ROBOT_CHECK
    head = _head(f"Amazon.com: {asin}")
    if kind is PageKind.EMPTY:
        return head + '<div class="no-product">Sorry, this product is no longer available.</div></body></html>'
    if kind is PageKind.BARE:
        return head + '<div id="dp-container"></div></body></html>'
    (r,) = expected_detail(asin, marketplace)
    attr = "" if kind is PageKind.BROKEN else f' data-asin="{html.escape(asin)}"'
    list_price = "" if r.list_price is None else f'<span class="list-price">{r.list_price:.2f}</span>'
    return (
        f'{head}<div id="dp"{attr}><h1 id="title">{html.escape(r.title)}</h1><a id="brand">{html.escape(r.brand)}</a>'
        f'<span class="price" data-currency="{r.currency}">{r.price:.2f}</span>{list_price}'
        f'<span class="rating">{r.rating}</span><span class="reviews">{r.review_count}</span>'
        f'<div id="availability" data-state="{r.availability}"></div><span id="seller">{html.escape(r.seller)}</span>'
        f'<span id="rank">{r.best_seller_rank}</span><span id="category">{html.escape(r.category)}</span>'
        "</div></body></html>"
    )


def _text(pattern: str, page: str) -> str | None:
    found = re.search(pattern, page, re.S)
    return html.unescape(found.group(1)) if found else None


def parse_detail(page: str) -> list[Result] | Empty:
    """A product page's one result (a plain parser, for workers without Scrapy): ``EMPTY`` when
    the page says the product is gone; a robot-check page raises ``Blocked``, a product without
    its ASIN ``ValueError``; a page with neither gives no results (``nothing_parsed``)."""
    _check_blocked(page)
    if 'class="no-product"' in page:
        return EMPTY
    product = re.search(r'<div id="dp"([^>]*)>', page)
    if product is None:
        return []
    if "data-asin=" not in product.group(1):
        raise ValueError("a product page without its data-asin: the page layout changed")
    price = re.search(r'<span class="price" data-currency="([^"]*)">([^<]*)</span>', page)
    list_price, rank = _text(r'<span class="list-price">([^<]*)</span>', page), _text(r'<span id="rank">([^<]*)<', page)
    rating, reviews = _text(r'<span class="rating">([^<]*)<', page), _text(r'<span class="reviews">([^<]*)<', page)
    return [
        Result(
            title=_text(r'<h1 id="title">(.*?)</h1>', page),
            brand=_text(r'<a id="brand">(.*?)</a>', page),
            price=float(price.group(2)) if price else None,
            currency=price.group(1) if price else None,
            list_price=float(list_price) if list_price else None,
            rating=float(rating) if rating else None,
            review_count=int(reviews) if reviews else None,
            availability=_text(r'<div id="availability" data-state="([^"]*)"', page),
            seller=_text(r'<span id="seller">(.*?)</span>', page),
            best_seller_rank=int(rank) if rank else None,
            category=_text(r'<span id="category">(.*?)</span>', page),
        )
    ]


# -- product reviews --------------------------------------------------------------------------


def reviews_url(base: str, asin: str, marketplace: str, page: int | None) -> str:
    """A review page's URL (``page`` None: the first)."""
    where = f"{quote(asin, safe='')}?mp={quote(marketplace, safe='')}&page={page or 1}"
    return f"{base.rstrip('/')}/product-reviews/{where}"


def expected_reviews(asin: str, marketplace: str, page: int) -> list[Result]:
    """The reviews a review page shows (deterministic)."""
    seed = _digest(asin, marketplace, page)
    out = []
    for position in range(1, 2 + int(seed[0], 16) % 10):
        h = _digest(seed, position)
        out.append(
            Result(
                position=position,
                review_id="R" + h[:13],
                rating=1 + int(h[13], 16) % 5,
                title=f"Review {position} of {asin}: “{'good' if int(h[13], 16) % 5 > 2 else 'meh'}”",
                body=f"Käufer {h[14:18]} says: page {page}, review {position}.\nWorks as described.",
                author=f"Customer {h[18:22]}",
                review_date=dt.date(2025, 1 + int(h[22], 16) % 12, 1 + int(h[23:25], 16) % 28),
                verified_purchase=int(h[25], 16) % 4 != 0,
                helpful_votes=int(h[26:29], 16) % 500,
            )
        )
    return out


def render_reviews(asin: str, marketplace: str, page: int, kind: PageKind) -> str:
    """The HTML of a review page (``fail`` pages are not rendered: they are a 503)."""
    if kind is PageKind.BLOCKED:
        return ROBOT_CHECK
    head = _head(f"Customer reviews: {asin}")
    if kind is PageKind.EMPTY:
        return head + '<div class="no-reviews">No customer reviews</div></body></html>'
    parts = [head, f'<div id="cm_cr-review_list" data-page="{page}">']
    for r in [] if kind is PageKind.BARE else expected_reviews(asin, marketplace, page):
        review_id = "" if kind is PageKind.BROKEN and r.position == 1 else f' data-review-id="{r.review_id}"'
        verified = '<span class="verified">Verified Purchase</span>' if r.verified_purchase else ""
        parts.append(
            f'<div class="review"{review_id} data-position="{r.position}">'
            f'<span class="review-rating">{r.rating}</span><a class="review-title">{html.escape(r.title)}</a>'
            f'<span class="review-author">{html.escape(r.author)}</span>'
            f'<span class="review-date" data-date="{r.review_date.isoformat()}">{r.review_date:%B %d, %Y}</span>'
            f'{verified}<span class="helpful">{r.helpful_votes}</span>'
            f'<p class="review-body">{html.escape(r.body)}</p></div>'
        )
    return "".join([*parts, "</div></body></html>"])


_REVIEW = re.compile(r'<div class="review"([^>]*)>(.*?)</div>', re.S)
_ATTR = re.compile(r'([a-z-]+)="([^"]*)"')


def parse_reviews(page: str) -> list[Result] | Empty:
    """A review page's reviews (a plain parser): ``EMPTY`` when the page says there are none; a
    robot-check page raises ``Blocked``, a review without its id ``ValueError``; a page with
    neither gives no results (``nothing_parsed``)."""
    _check_blocked(page)
    if 'class="no-reviews"' in page:
        return EMPTY
    results = []
    for attrs_text, body in _REVIEW.findall(page):
        attrs = dict(_ATTR.findall(attrs_text))
        if "data-review-id" not in attrs:
            raise ValueError("a review without data-review-id: the page layout changed")
        rating, votes = _text(r'"review-rating">([^<]*)<', body), _text(r'"helpful">([^<]*)<', body)
        date = _text(r'data-date="([^"]*)"', body)
        results.append(
            Result(
                position=int(attrs["data-position"]),
                review_id=attrs["data-review-id"],
                rating=int(rating) if rating else None,
                title=_text(r'<a class="review-title">(.*?)</a>', body),
                body=_text(r'<p class="review-body">(.*?)</p>', body),
                author=_text(r'<span class="review-author">(.*?)</span>', body),
                review_date=dt.date.fromisoformat(date) if date else None,
                verified_purchase='class="verified"' in body,
                helpful_votes=int(votes) if votes else None,
            )
        )
    return results
