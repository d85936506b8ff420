"""A hand-written worker that breaks chosen rules of the worker contract, for testing the
contract kit (``python -m crawlops.harness.check``). It talks to Redis and MySQL directly,
as a team writing its own worker from the README would.

    --local-time      stamp create_time in Asia/Shanghai local time (UTC+8)
    --reencode        report members re-encoded (json.dumps defaults: ASCII escapes, spaces)
    --swallow         swallow parse exceptions: the element is neither answered nor failed
    --die-on-sigterm  no SIGTERM handler: whatever it holds is lost
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import time
import urllib.error
import urllib.request

import redis

from crawlops.db import connect
from crawlops.harness.fakesite import page_url, parse
from crawlops.reasons import Failed


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--local-time", "--reencode", "--swallow", "--die-on-sigterm"):
        parser.add_argument(flag, action="store_true")
    args = parser.parse_args()
    r = redis.Redis.from_url(os.environ["CRAWLOPS_REDIS_URL"])
    conn = connect(os.environ["CRAWLOPS_MYSQL_URL"])
    base = os.environ["CRAWLOPS_SEARCH_URL"]
    stopping = []
    if not args.die_on_sigterm:
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    offset = dt.timedelta(hours=8) if args.local_time else dt.timedelta(0)

    def report(key: str, member: bytes) -> None:
        r.sadd(key, json.dumps(json.loads(member)).encode() if args.reencode else member)

    while not stopping:
        held = [(t.decode(), m) for t in r.smembers("crawlops:open_tasks") for m in r.spop(t, 4) or []]
        if not held:
            time.sleep(0.5)
            continue
        for n, (task_id, member) in enumerate(held):
            if stopping:
                for task, rest in held[n:]:
                    report(task + "_fail", rest)
                break
            e = json.loads(member)
            try:
                url = page_url(base, e["keyword"], e["marketplace"], e["page"])
                with urllib.request.urlopen(url) as page:  # noqa: S310 - the check's http:// site
                    results = parse(page.read().decode())
            except (urllib.error.HTTPError, Failed):  # reported failed, like a seed worker: no reason
                report(task_id + "_fail", member)
                continue
            except ValueError:
                if not args.swallow:
                    report(task_id + "_fail", member)
                continue
            if not isinstance(results, list) or not results:  # "nothing parsed, so it is empty": wrong
                report(task_id + "_empty", member)
                continue
            stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None) + offset
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, title, price, currency, "
                    "rating, review_count, page, position, create_time) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (task_id, e["keyword"], e["marketplace"], x.asin, x.title, x.price, x.currency, x.rating,
                         x.review_count, e["page"], x.position, stamp)
                        for x in results
                    ],
                )  # fmt: skip
            conn.commit()


if __name__ == "__main__":
    main()
