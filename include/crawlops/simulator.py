"""A SIMULATED crawler: plays the crawler fleet's side of the protocol for demos, tests and benchmarks.

It is not a crawler: it fetches nothing. It follows the protocol exactly as the real
workers do: find open task ids in the Redis index ``crawlops:open_tasks``, take elements
from the set named by a task id (SPOP), write result rows with that task id into
``amazon_search_result``, add the elements it fails on to ``<task_id>_fail`` and those it
found nothing on to ``<task_id>_empty``. Knobs make it fail, answer empty, write broken
rows, or take elements and never answer (a worker that died).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import string
from collections.abc import Callable
from typing import Any

from crawlops import queue
from crawlops.db import Connection
from crawlops.model import empty_key, fail_key
from crawlops.queue import RedisClient
from crawlops.store import results

_ASIN_ALPHABET = string.digits + string.ascii_uppercase


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """How the simulated fleet behaves; rates are per element (fail, vanish) or per row (the rest)."""

    results_per_page: int = 16
    fail_rate: float = 0.02
    vanish_rate: float = 0.0
    empty_rate: float = 0.0
    invalid_rate: float = 0.005
    null_rate: float = 0.0


def _asin(rng: random.Random) -> str:
    return "B0" + "".join(rng.choices(_ASIN_ALPHABET, k=8))


def _row(rng: random.Random, task_id: str, element: dict[str, Any], position: int, behaviour: Behaviour) -> tuple:
    asin, price, rating = _asin(rng), round(rng.uniform(3, 300), 2), round(rng.uniform(1, 5), 1)
    title: str | None = f"{element['keyword']} item {position}"
    if rng.random() < behaviour.invalid_rate:
        broken = rng.choice(("price", "rating", "asin"))
        price = -price if broken == "price" else price
        rating = 7.5 if broken == "rating" else rating
        asin = asin.lower() if broken == "asin" else asin
    if rng.random() < behaviour.null_rate:
        title = None
    currency = {"US": "USD", "UK": "GBP", "DE": "EUR", "JP": "JPY"}.get(element["marketplace"], "USD")
    return (
        task_id,
        element["keyword"],
        element["marketplace"],
        asin,
        title,
        price,
        currency,
        rating,
        rng.randint(0, 50_000),
        element["page"],
        position,
    )


def open_task_ids(r: RedisClient) -> list[str]:
    """What a worker polls: the open-task index in Redis (no MySQL needed), oldest id first."""
    return sorted(queue.open_index(r), key=lambda t: (len(t), t))


def crawl(
    conn: Connection,
    r: RedisClient,
    *,
    behaviour: Behaviour = Behaviour(),
    rng: random.Random | None = None,
    max_elements: int | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    batch: int = 50,
) -> dict[str, int]:
    """Work through open tasks until they are empty (or ``max_elements`` were taken).

    ``clock`` gives each row's create_time (default: the database's current time).
    Returns counts of elements answered, answered empty, failed and vanished, and rows written.
    """
    rng = rng or random.Random()
    counts = {"answered": 0, "empty": 0, "failed": 0, "vanished": 0, "rows": 0}
    taken_total = 0
    for task_id in open_task_ids(r):
        while max_elements is None or taken_total < max_elements:
            want = batch if max_elements is None else min(batch, max_elements - taken_total)
            members = r.spop(task_id, want) or []
            if not members:
                break
            taken_total += len(members)
            rows, failed, empty = [], [], []
            for member in members:
                text = member.decode("utf-8") if isinstance(member, bytes) else member
                roll = rng.random()
                if roll < behaviour.vanish_rate:
                    counts["vanished"] += 1
                elif roll < behaviour.vanish_rate + behaviour.fail_rate:
                    failed.append(text)
                elif roll < behaviour.vanish_rate + behaviour.fail_rate + behaviour.empty_rate:
                    empty.append(text)
                else:
                    element = json.loads(text)
                    rows += [
                        _row(rng, task_id, element, p, behaviour) for p in range(1, behaviour.results_per_page + 1)
                    ]
                    counts["answered"] += 1
            if rows:
                _write(conn, rows, clock)
                counts["rows"] += len(rows)
            if failed:
                r.sadd(fail_key(task_id), *failed)
                counts["failed"] += len(failed)
            if empty:
                r.sadd(empty_key(task_id), *empty)
                counts["empty"] += len(empty)
    return counts


def _write(conn: Connection, rows: list[tuple], clock: Callable[[], dt.datetime] | None) -> None:
    results.insert_rows(conn, "amazon_search_result", rows, clock)


def run_worker(
    mysql_url: str,
    redis_url: str,
    *,
    behaviour: Behaviour,
    elements_per_second: float,
    stop_after_seconds: float | None = None,
    seed: int | None = None,
) -> None:
    """One simulated worker process: poll open tasks, crawl at the given pace, forever (or for a while)."""
    import time

    import redis

    from crawlops.db import connect

    conn, r = connect(mysql_url), redis.Redis.from_url(redis_url)
    rng = random.Random(seed)
    started = time.monotonic()
    batch = max(1, int(elements_per_second))
    while stop_after_seconds is None or time.monotonic() - started < stop_after_seconds:
        tick = time.monotonic()
        counts = crawl(conn, r, behaviour=behaviour, rng=rng, max_elements=batch, batch=batch)
        taken = counts["answered"] + counts["empty"] + counts["failed"] + counts["vanished"]
        # Idle workers poll every 2 s; busy ones keep their pace.
        pause = 2.0 if taken == 0 else max(0.0, taken / elements_per_second - (time.monotonic() - tick))
        time.sleep(pause)


def main(argv: list[str] | None = None) -> None:
    """``python -m crawlops.simulator --workers N``: a SIMULATED crawler fleet of N processes."""
    import argparse
    import multiprocessing
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
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: run until killed)")
    parser.add_argument(
        "--mysql-url", default=os.environ.get("CRAWLOPS_MYSQL_URL", "mysql://crawlops:crawlops@127.0.0.1/crawl")
    )
    parser.add_argument("--redis-url", default=f"redis://127.0.0.1:6379/{os.environ.get('CRAWLOPS_REDIS_DB', '1')}")
    args = parser.parse_args(argv)
    behaviour = Behaviour(
        results_per_page=args.results_per_page,
        fail_rate=args.fail_rate,
        vanish_rate=args.vanish_rate,
        empty_rate=args.empty_rate,
        invalid_rate=args.invalid_rate,
        null_rate=args.null_rate,
    )
    workers = [
        multiprocessing.Process(
            target=run_worker,
            args=(args.mysql_url, args.redis_url),
            kwargs={
                "behaviour": behaviour,
                "elements_per_second": args.elements_per_second,
                "stop_after_seconds": args.seconds,
                "seed": n,
            },
            name=f"simulated-crawler-{n}",
        )
        for n in range(args.workers)
    ]
    for worker in workers:
        worker.start()
    print(f"simulated crawler fleet: {args.workers} workers, pid {os.getpid()}", flush=True)
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
