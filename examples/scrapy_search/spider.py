"""An example crawl worker: a Scrapy spider fed by the package's open tasks.

    CRAWLOPS_MYSQL_URL=mysql://... CRAWLOPS_REDIS_URL=redis://... \\
    CRAWLOPS_SEARCH_URL=https://... python examples/scrapy_search/spider.py [--processes N]

The crawl team writes only what is below: the request of an element's page and the
parsing of that page, which yields ``EMPTY`` where the page says it has no results. Taking
elements from every open task, tagging requests, recognising robot-check pages, honouring
Retry-After and throttles, reporting failures with their reasons, writing rows and stopping
cleanly are ``crawlops.worker.scrapy``'s.

The selectors are those of the fake search site the contract kit serves
(``crawlops.harness.fakesite``); a real spider parses the real site's pages. Check a
worker with ``python -m crawlops.harness.check -- python examples/scrapy_search/spider.py``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

import scrapy

from crawlops.harness.fakesite import page_url
from crawlops.worker import EMPTY, Element
from crawlops.worker.scrapy import TaskSpider, run_spider


class SearchSpider(TaskSpider):
    name = "search_result"
    custom_settings = {  # noqa: RUF012 - Scrapy's own convention
        "CONCURRENT_REQUESTS": 8,
        "DOWNLOAD_TIMEOUT": 20,
        "RETRY_TIMES": 1,
        "ROBOTSTXT_OBEY": False,
    }

    def request_for(self, element: Element) -> scrapy.Request:
        base = os.environ.get("CRAWLOPS_SEARCH_URL", "http://127.0.0.1:8000")
        return scrapy.Request(page_url(base, element.keyword, element.marketplace, element.page))

    def parse(self, response: Any, **kwargs: Any) -> Iterator[Any]:
        if response.css("div.no-results"):
            yield EMPTY  # the page says there is nothing: the element is answered empty
            return
        # Nothing found and no notice (a changed layout): the kit fails it as nothing_parsed.
        for result in response.css("div.s-result"):
            price = result.css("span.price")
            yield {
                "asin": result.attrib["data-asin"],  # a result without one raises: reported failed
                "title": result.css("h2.title::text").get(),
                "price": float(price.css("::text").get()),
                "currency": price.attrib.get("data-currency"),
                "rating": float(result.css("span.rating::text").get()),
                "review_count": int(result.css("span.reviews::text").get()),
                "position": int(result.attrib["data-position"]),
            }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=1)
    raise SystemExit(run_spider(SearchSpider, processes=parser.parse_args().processes))
