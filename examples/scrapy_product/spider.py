"""An example crawl worker for product pages and their reviews: a Scrapy spider fed by the
package's open ``product_detail`` and ``product_review`` tasks.

    CRAWLOPS_MYSQL_URL=mysql://... CRAWLOPS_REDIS_URL=redis://... \\
    CRAWLOPS_SITE_URL=https://... python examples/scrapy_product/spider.py [--processes N] [--objects NAME]

As in ``examples/scrapy_search``, the crawl team writes only what is below: which crawl
objects the spider serves (``crawl_objects``), the request of an element's page and the
parsing of that page. A ``product_detail`` element is ``{"asin":"B0C1234567","marketplace":"US"}``
(one page, ``element.page`` is None) and its one result fills the product's columns; a
``product_review`` element adds ``"page"`` and each review on it is a result. The element's
fields (``asin``, ``marketplace``, ``page``) are copied into the rows by the kit, never
yielded. Everything else (taking elements, robot checks, Retry-After, throttles, failures
with their reasons, rows into ``amazon_product_detail`` / ``amazon_product_review``,
stopping cleanly) is ``crawlops.worker.scrapy``'s.

The selectors are those of the kit's fake site (``crawlops.harness.fakesite``); a real spider
parses the real site's pages. Check it with
``python -m crawlops.harness.check --object product_detail -- python examples/scrapy_product/spider.py``
(or ``--object product_review``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import scrapy

from crawlops.harness.fakesite import product_url, reviews_url
from crawlops.reasons import Failed
from crawlops.worker import EMPTY, Element
from crawlops.worker.scrapy import TaskSpider, run_spider


def _number(text: str | None, kind: type = float) -> Any:
    return kind(text) if text else None


class ProductSpider(TaskSpider):
    name = "product"
    crawl_objects = ("product_detail", "product_review")  # CRAWLOPS_OBJECTS / --objects narrows them
    custom_settings = {  # noqa: RUF012 - Scrapy's own convention
        "CONCURRENT_REQUESTS": 8,
        "DOWNLOAD_TIMEOUT": 20,
        "RETRY_TIMES": 1,
        "ROBOTSTXT_OBEY": False,
    }

    def request_for(self, element: Element) -> scrapy.Request:
        base = os.environ.get("CRAWLOPS_SITE_URL") or os.environ.get("CRAWLOPS_SEARCH_URL", "http://127.0.0.1:8000")
        if element.crawl_object == "product_review":
            url = reviews_url(base, element.asin, element.marketplace, element.page)
            return scrapy.Request(url, callback=self.parse_reviews)
        url = product_url(base, element.asin, element.marketplace)
        return scrapy.Request(url, callback=self.parse_product, cb_kwargs={"asin": element.asin})

    def parse_product(self, response: Any, asin: str) -> Iterator[Any]:
        if response.css("div.no-product"):
            yield EMPTY  # the page says the product is gone: answered empty
            return
        product = response.css("div#dp")
        if not product:
            return  # neither a product nor a notice (a changed layout): the kit fails it as nothing_parsed
        if product.attrib["data-asin"] != asin:  # no data-asin raises: reported failed (parse_error)
            raise Failed("other", f"the page is of {product.attrib['data-asin']}, not {asin} (a redirect?)")
        price = product.css("span.price")
        yield {
            "title": product.css("h1#title::text").get(),
            "brand": product.css("a#brand::text").get(),
            "price": _number(price.css("::text").get()),
            "currency": price.attrib.get("data-currency"),
            "list_price": _number(product.css("span.list-price::text").get()),
            "rating": _number(product.css("span.rating::text").get()),
            "review_count": _number(product.css("span.reviews::text").get(), int),
            "availability": product.css("div#availability").attrib.get("data-state"),
            "seller": product.css("span#seller::text").get(),
            "best_seller_rank": _number(product.css("span#rank::text").get(), int),
            "category": product.css("span#category::text").get(),
        }

    def parse_reviews(self, response: Any) -> Iterator[Any]:
        if response.css("div.no-reviews"):
            yield EMPTY  # no (more) reviews: answered empty
            return
        for review in response.css("div.review"):
            date = review.css("span.review-date").attrib.get("data-date")
            yield {
                "review_id": review.attrib["data-review-id"],  # a review without one raises: reported failed
                "position": int(review.attrib["data-position"]),
                "rating": _number(review.css("span.review-rating::text").get(), int),
                "title": review.css("a.review-title::text").get(),
                "body": review.css("p.review-body::text").get(),
                "author": review.css("span.review-author::text").get(),
                "review_date": dt.date.fromisoformat(date) if date else None,
                "verified_purchase": bool(review.css("span.verified")),
                "helpful_votes": _number(review.css("span.helpful::text").get(), int),
            }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--objects", help="serve only these of its crawl objects (comma-separated)")
    args = parser.parse_args()
    if args.objects:
        os.environ["CRAWLOPS_OBJECTS"] = args.objects  # narrows crawl_objects, in every process
    raise SystemExit(run_spider(ProductSpider, processes=args.processes))
