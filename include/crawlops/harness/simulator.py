"""A SIMULATED crawler: plays the crawler fleet's side of the protocol for demos, tests and benchmarks.

It is not a crawler: it fetches nothing (unless ``--site-url`` points it at the kit's
fake site). It is a worker built on the worker kit (``crawlops.worker``), so it takes and
answers elements through the same client a real worker uses: open tasks from the Redis
index, ``SPOP``, result rows with the element's fields and a UTC ``create_time`` in the
element's crawl object's table (search results, product pages, reviews: made-up rows that
pass the object's validity rules), byte-identical members in ``<task_id>_fail`` and
``<task_id>_empty``. Knobs make it fail, answer empty, write broken rows, or take elements
and never answer (a worker that died).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import string
from collections.abc import Callable, Sequence
from typing import Any

from crawlops.db import Connection
from crawlops.objects.product_detail import AVAILABILITY, CURRENCIES
from crawlops.queue import RedisClient, env_redis_url
from crawlops.worker import Blocked, Element, Result, Stop, WorkerClient
from crawlops.worker.model import served_objects, utc_now

_ASIN_ALPHABET = string.digits + string.ascii_uppercase
_CURRENCY = {"US": "USD", "UK": "GBP", "DE": "EUR", "JP": "JPY"}


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """How the simulated fleet behaves; rates are per element (fail, vanish) or per row (the rest)."""

    results_per_page: int = 16
    fail_rate: float = 0.02
    vanish_rate: float = 0.0
    empty_rate: float = 0.0
    invalid_rate: float = 0.005
    null_rate: float = 0.0
    # Elements answered with a robot-check page, per marketplace (failed as "blocked").
    blocked_markets: tuple[tuple[str, float], ...] = ()
    # Elements this is true of always fail (a page the site keeps blocking), whatever the rates.
    fail_if: Callable[[Element], bool] | None = None
    # Another behaviour for the elements of some crawl objects: ((crawl object, behaviour), ...).
    objects: tuple[tuple[str, Behaviour], ...] = ()

    def of(self, crawl_object: str) -> Behaviour:
        """How the fleet treats the elements of ``crawl_object``."""
        return dict(self.objects).get(crawl_object, self)


def _asin(rng: random.Random) -> str:
    return "B0" + "".join(rng.choices(_ASIN_ALPHABET, k=8))


def _result(rng: random.Random, element: Element, position: int, behaviour: Behaviour) -> Result:
    asin, price, rating = _asin(rng), round(rng.uniform(3, 300), 2), round(rng.uniform(1, 5), 1)
    title: str | None = f"{element.keyword} item {position}"
    if rng.random() < behaviour.invalid_rate:
        broken = rng.choice(("price", "rating", "asin"))
        price = -price if broken == "price" else price
        rating = 7.5 if broken == "rating" else rating
        asin = asin.lower() if broken == "asin" else asin
    if rng.random() < behaviour.null_rate:
        title = None
    currency = _CURRENCY.get(element.marketplace, "USD")
    return Result(asin, title, price, currency, rating, rng.randint(0, 50_000), position)


def _detail(rng: random.Random, element: Element, behaviour: Behaviour) -> Result:
    """A product page's row (valid for ``product_detail``'s rules unless ``invalid_rate`` breaks one)."""
    price, rating = round(rng.uniform(3, 300), 2), round(rng.uniform(1, 5), 1)
    availability = rng.choice(AVAILABILITY)
    if rng.random() < behaviour.invalid_rate:
        broken = rng.choice(("price", "rating", "availability"))
        price = -price if broken == "price" else price
        rating = 7.5 if broken == "rating" else rating
        availability = "maybe" if broken == "availability" else availability
    title = None if rng.random() < behaviour.null_rate else f"Product {element.asin}"
    return Result(
        title=title, brand="Simulated", price=price, currency=CURRENCIES.get(element.marketplace, "USD"),
        list_price=round(price * 1.2, 2), rating=rating, review_count=rng.randint(0, 50_000),
        availability=availability, seller="Simulated Seller", best_seller_rank=rng.randint(1, 100_000),
        category="Electronics",
    )  # fmt: skip


def _review(rng: random.Random, element: Element, position: int, behaviour: Behaviour) -> Result:
    """A review's row (valid for ``product_review``'s rules unless ``invalid_rate`` breaks one)."""
    rating, votes = rng.randint(1, 5), rng.randint(0, 500)
    if rng.random() < behaviour.invalid_rate:
        broken = rng.choice(("rating", "votes"))
        rating = 7 if broken == "rating" else rating
        votes = -votes - 1 if broken == "votes" else votes
    review_id = None if rng.random() < behaviour.null_rate else "R" + "".join(rng.choices(_ASIN_ALPHABET, k=13))
    return Result(
        position=position, review_id=review_id, rating=rating, title=f"Review {position}", body="Works as described.",
        author="Simulated Customer", review_date=dt.date(2025, rng.randint(1, 12), rng.randint(1, 28)),
        verified_purchase=rng.random() < 0.8, helpful_votes=votes,
    )  # fmt: skip


def results_for(rng: random.Random, element: Element, behaviour: Behaviour) -> list[Result]:
    """Made-up results of an element's page, for its crawl object: ``results_per_page`` search
    results or reviews, one product page's row."""
    if element.crawl_object == "product_detail":
        return [_detail(rng, element, behaviour)]
    make = _review if element.crawl_object == "product_review" else _result
    return [make(rng, element, p, behaviour) for p in range(1, behaviour.results_per_page + 1)]


def crawl(
    conn: Connection,
    r: RedisClient,
    *,
    behaviour: Behaviour = Behaviour(),
    rng: random.Random | None = None,
    max_elements: int | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    batch: int = 50,
    client: WorkerClient | None = None,
) -> dict[str, int]:
    """Work through open tasks until they are empty (or ``max_elements`` were taken).

    ``clock`` gives each row's create_time (default: now, UTC). Returns counts of elements
    answered, answered empty, failed and vanished, and rows written.
    """
    rng = rng or random.Random()
    client = client or WorkerClient(r, conn, clock=clock or utc_now, flush_every=10 * batch)
    counts = {"answered": 0, "empty": 0, "failed": 0, "vanished": 0, "rows": 0}
    taken_total = 0
    while max_elements is None or taken_total < max_elements:
        want = batch if max_elements is None else min(batch, max_elements - taken_total)
        elements = client.take(want)
        if not elements:
            break
        taken_total += len(elements)
        for element in elements:
            roll, acts = rng.random(), behaviour.of(element.crawl_object)
            blocked = dict(acts.blocked_markets).get(element.marketplace, 0.0)
            if acts.fail_if is not None and acts.fail_if(element):
                client.fail(element, "http_503")
                counts["failed"] += 1
            elif roll < acts.vanish_rate:
                client.abandon(element)
                counts["vanished"] += 1
            elif roll < acts.vanish_rate + acts.fail_rate:
                client.fail(element, "http_503")
                counts["failed"] += 1
            elif blocked and rng.random() < blocked:
                client.fail(element, Blocked("simulated robot check"))
                counts["failed"] += 1
            elif roll < acts.vanish_rate + acts.fail_rate + acts.empty_rate:
                client.empty(element)
                counts["empty"] += 1
            else:
                results = results_for(rng, element, acts)
                client.answer(element, results)
                counts["answered"] += 1
                counts["rows"] += len(results)
        client.flush()
    return counts


def run_worker(
    mysql_url: str,
    redis_url: str,
    *,
    behaviour: Behaviour,
    elements_per_second: float,
    stop_after_seconds: float | None = None,
    seed: int | None = None,
    objects: Sequence[str] | None = None,
) -> None:
    """One simulated worker process: poll open tasks, crawl at the given pace, until SIGTERM
    (or for a while); what it holds when stopped is reported failed, as the kit's loop does."""
    import time

    from crawlops.worker.loop import stop_on_signals

    client = WorkerClient.from_urls(mysql_url, redis_url, objects=objects)
    rng = random.Random(seed)
    started = time.monotonic()
    batch = max(1, int(elements_per_second))
    stop = Stop()
    with stop_on_signals(stop):
        try:
            while not stop and (stop_after_seconds is None or time.monotonic() - started < stop_after_seconds):
                tick = time.monotonic()
                counts = crawl(client.mysql, client.redis, behaviour=behaviour, rng=rng, max_elements=batch,
                               batch=batch, client=client)  # fmt: skip
                taken = counts["answered"] + counts["empty"] + counts["failed"] + counts["vanished"]
                # Idle workers poll every 2 s; busy ones keep their pace.
                stop.wait(2.0 if taken == 0 else max(0.0, taken / elements_per_second - (time.monotonic() - tick)))
        finally:
            client.release("simulated worker stopping")
            client.close()


def _parser() -> Any:
    import argparse
    import os

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--elements-per-second", type=float, default=5.0, help="per worker")
    parser.add_argument("--results-per-page", type=int, default=16)
    parser.add_argument("--fail-rate", type=float, default=0.02)
    parser.add_argument("--vanish-rate", type=float, default=0.0, help="elements taken and never answered")
    parser.add_argument("--empty-rate", type=float, default=0.0, help="elements answered empty (no results)")
    parser.add_argument("--invalid-rate", type=float, default=0.005, help="rows with an invalid value")
    parser.add_argument("--null-rate", type=float, default=0.0, help="rows with a missing title")
    parser.add_argument(
        "--blocked", action="append", default=[], metavar="MARKETPLACE=SHARE",
        help="answer this share of a marketplace's pages with a robot check (failed as blocked); repeatable",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: run until killed)")
    parser.add_argument(
        "--site-url",
        "--search-url",
        dest="search_url",
        default=os.environ.get("CRAWLOPS_SITE_URL") or os.environ.get("CRAWLOPS_SEARCH_URL"),
        help="fetch and parse each element's page from the kit's fake site instead of making results up",
    )
    parser.add_argument("--objects", action="append", help="crawl objects served, comma-separated (default all)")
    parser.add_argument(
        "--mysql-url", default=os.environ.get("CRAWLOPS_MYSQL_URL", "mysql://crawlops:crawlops@127.0.0.1/crawl")
    )
    parser.add_argument(
        "--redis-url",
        default=env_redis_url(),
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m crawlops.harness.simulator --workers N``: a SIMULATED crawler fleet of N processes."""
    import os

    from crawlops.worker.loop import run_processes

    args = _parser().parse_args(argv)
    behaviour = Behaviour(
        results_per_page=args.results_per_page,
        fail_rate=args.fail_rate,
        vanish_rate=args.vanish_rate,
        empty_rate=args.empty_rate,
        invalid_rate=args.invalid_rate,
        null_rate=args.null_rate,
        blocked_markets=tuple((m, float(share)) for m, _, share in (b.partition("=") for b in args.blocked)),
    )
    served = served_objects(args.objects)
    print(f"simulated crawler fleet: {args.workers} workers, pid {os.getpid()}", flush=True)
    if args.search_url:
        options = {"threads": 4, "batch": 8, "poll_seconds": 1.0, "objects": served}
        return run_processes(
            _search_worker, (args.mysql_url, args.redis_url, args.search_url, options), args.workers,
            name="search-worker",
        )  # fmt: skip
    sim = {"behaviour": behaviour, "elements_per_second": args.elements_per_second, "stop_after_seconds": args.seconds,
           "objects": served}  # fmt: skip
    return run_processes(
        _simulated_worker, (args.mysql_url, args.redis_url, sim), args.workers, name="simulated-crawler"
    )


def _simulated_worker(mysql_url: str, redis_url: str, options: dict[str, Any]) -> None:
    import os

    run_worker(mysql_url, redis_url, seed=os.getpid(), **options)


def _search_worker(mysql_url: str, redis_url: str, search_url: str, options: dict[str, Any]) -> None:
    """A plain worker of the kit's fake site, for every crawl object it has pages of: fetch the
    element's page, parse it (no Scrapy)."""
    import urllib.request

    from crawlops.harness.fakesite import element_url, parse_page
    from crawlops.worker import run
    from crawlops.worker.model import Empty

    def fetch(element: Element) -> list[Result] | Empty:
        with urllib.request.urlopen(element_url(search_url, element), timeout=20) as response:  # noqa: S310 - http://
            return parse_page(element.crawl_object, response.read().decode("utf-8"))

    client = WorkerClient.from_urls(mysql_url, redis_url, objects=options.pop("objects", None))
    try:
        run(fetch, client, **options)
    finally:
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
