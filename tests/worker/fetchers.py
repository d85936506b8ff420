"""A fetch function for worker tests of every crawl object
(``PYTHONPATH=tests/worker python -m crawlops.worker fetchers:fetch``): made-up pages, no site."""

from __future__ import annotations

import datetime as dt

from crawlops.worker import EMPTY, Element, Result
from crawlops.worker.model import Empty

DETAIL = {"title": "Kabel “USB-C” 2 m", "brand": "Ugreen", "price": 9.99, "currency": "USD", "rating": 4.5,
          "review_count": 1200, "availability": "in_stock", "best_seller_rank": 37}  # fmt: skip


def reviews(element: Element) -> list[Result]:
    """Two reviews on page 1; a page beyond says there are none (answered empty)."""
    day = dt.date(2025, 3, 1)
    return [
        Result(review_id=f"R{element.asin}1", rating=5, title="Top", body="Läuft.", review_date=day,
               verified_purchase=True, helpful_votes=3),
        Result(review_id=f"R{element.asin}2", rating=2, title=None, review_date=dt.datetime(2025, 3, 2, 10),
               verified_purchase=False, helpful_votes=0, position=7),
    ]  # fmt: skip


def fetch(element: Element) -> list[Result] | list[dict[str, object]] | Empty:
    if element.crawl_object == "product_detail":
        return [DETAIL]
    if element.crawl_object == "product_review":
        return reviews(element) if element.page == 1 else EMPTY
    return [Result(asin="B000000001", title=f"{element.keyword} p{element.page}", price=1.0)]
