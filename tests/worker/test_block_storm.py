"""A block storm seen as one: the example Scrapy spider against a local site that answers half of
one marketplace's pages with Amazon's robot check (HTTP 200), on the real MariaDB and Redis.

Block pages end failed as ``blocked`` and are retried, never answered or empty; one supervision
run names the marketplace and the block and throttles it; the spider then slows down for that
marketplace only. The same crawl without blocks (keywords with fewer pages than ``max_pages``:
ordinary empties) raises nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawlops import dispatch, lifecycle, surges, telemetry
from crawlops.findings import Level
from crawlops.harness.fakesite import PageKind, SearchSite
from crawlops.model import empty_key, fail_key, hour_window_starting

ROOT = Path(__file__).resolve().parents[2]
MARKETS = ("US", "DE")
KEYWORDS = 8
MAX_PAGES = 5


def few_page_plan() -> dict:
    """Keyword n has 3 + n % 3 pages of results; the pages beyond say "no results" (normal empties)."""
    return {
        (f"keyword {n}", market, page): PageKind.EMPTY
        for market in MARKETS
        for n in range(KEYWORDS)
        for page in range(3 + n % 3 + 1, MAX_PAGES + 1)
    }


def current_hour() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)


def dispatch_hour(mysql, r, settings, config, start, keywords=KEYWORDS, pages=MAX_PAGES, prefix="keyword") -> str:
    config([("search_result", f"{prefix} {n}", m, "hourly", pages) for m in MARKETS for n in range(keywords)])
    window = hour_window_starting(start, "UTC")
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, window, "UTC"))
    (task_id,) = dispatch.push_window(mysql, r, settings, window)
    return task_id


def answered_count(mysql, r, task_id) -> int:
    mysql.commit()
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT COUNT(DISTINCT keyword, marketplace, page) FROM amazon_search_result WHERE task_id = %s", (task_id,)
        )
        rows = cur.fetchone()[0]
    return rows + r.scard(empty_key(task_id)) + r.scard(fail_key(task_id))


@contextlib.contextmanager
def spider(r, site: SearchSite) -> Iterator[subprocess.Popen]:
    env = {
        **os.environ,
        "CRAWLOPS_REDIS_URL": f"redis://127.0.0.1:6379/{r.connection_pool.connection_kwargs['db']}",
        "CRAWLOPS_SEARCH_URL": site.url,
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "examples/scrapy_search/spider.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_answered(mysql, r, task_id, total, process, timeout=90.0) -> None:
    deadline = time.monotonic() + timeout
    while answered_count(mysql, r, task_id) < total:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, f"{answered_count(mysql, r, task_id)} of {total} answered"
        time.sleep(0.3)
    time.sleep(1.5)  # the last answers' outcome counts are written with them; let a late flush land


@pytest.fixture
def fast(settings):
    """The throttle at half a second, so the test sees it in seconds."""
    return dataclasses.replace(settings, crawlers=dataclasses.replace(settings.crawlers, throttle_interval_seconds=0.5))


def test_block_pages_fail_as_blocked_are_retried_named_and_throttle_their_marketplace_only(
    mysql, redis_client, fast, config
):
    total = len(MARKETS) * KEYWORDS * MAX_PAGES
    with SearchSite(plan=few_page_plan(), blocked_markets={"DE": 0.5}) as site:
        task_id = dispatch_hour(mysql, redis_client, fast, config, current_hour())
        with spider(redis_client, site) as process:
            wait_answered(mysql, redis_client, task_id, total, process)

            blocked = {k for k in site.requests if site.kind(k) is PageKind.BLOCKED}
            assert blocked and {k[1] for k in blocked} == {"DE"}
            reasons = telemetry.fail_reasons(redis_client, task_id)
            failed = {m for m, (why, _) in reasons.items() if why == "blocked"}
            assert len(failed) == len(blocked) == redis_client.scard(fail_key(task_id))  # every block, only blocks
            assert not {m.decode() for m in redis_client.smembers(empty_key(task_id))} & failed  # never empty
            with mysql.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM amazon_search_result WHERE marketplace = 'DE' AND task_id = %s "
                            "AND (keyword, page) IN (" + ", ".join(["(%s, %s)"] * len(blocked)) + ")",
                            [task_id, *(x for k, _, p in blocked for x in (k, p))])  # fmt: skip
                assert cur.fetchone()[0] == 0  # never answered with rows

            details, findings = surges.check_outcomes(mysql, redis_client, fast, dt.datetime.now(dt.UTC))

            (surge,) = findings
            assert (surge.level, surge.subject) == (Level.ERROR, "search_result/DE/blocked")
            assert surge.title.startswith("DE: ") and "of search_result pages blocked (robot check)" in surge.title
            assert "throttled DE" in surge.action
            assert telemetry.throttles(redis_client, list(MARKETS)) == {"DE": 0.5}
            assert details["by_marketplace"]["search_result/US"]["failed"] == {}

            # The blocked pages go to a retry task, and next hour's work comes in both marketplaces:
            # the spider paces DE only (workers read the throttle flags every 5 s).
            time.sleep(5.5)
            site.requests_at.clear()
            site.blocked_markets = {}
            tracking = lifecycle.track(mysql, redis_client, fast)
            assert tracking.retries == {fail_key(task_id): len(blocked)}
            with mysql.cursor() as cur:
                cur.execute("UPDATE amazon_crawl_config SET enabled = 0")
            mysql.commit()
            second = dispatch_hour(mysql, redis_client, fast, config, current_hour() + dt.timedelta(hours=1),
                                   keywords=6, pages=1, prefix="later")  # fmt: skip
            wait_answered(mysql, redis_client, second, 12, process)
            wait_answered(mysql, redis_client, fail_key(task_id), len(blocked), process)

    de, us = sorted(site.requests_at["DE"]), sorted(site.requests_at["US"])
    de_gaps = [b - a for a, b in itertools.pairwise(de)]
    assert len(de) == 6 + len(blocked) and min(de_gaps) >= 0.4, de_gaps  # one request every 0.5 s
    assert us[-1] - us[0] < 0.5 * (len(de) - 1) / 2  # US went at full speed


def test_ordinary_empties_raise_nothing_and_throttle_nothing(mysql, redis_client, settings, config):
    total = len(MARKETS) * KEYWORDS * MAX_PAGES
    with SearchSite(plan=few_page_plan()) as site:
        task_id = dispatch_hour(mysql, redis_client, settings, config, current_hour())
        with spider(redis_client, site) as process:
            wait_answered(mysql, redis_client, task_id, total, process)

    details, findings = surges.check_outcomes(mysql, redis_client, settings, dt.datetime.now(dt.UTC))

    assert findings == []
    empty_share = details["by_marketplace"]["search_result/DE"]["shares"]["empty"]
    assert 0.2 < empty_share < settings.crawlers.empty_share_max  # 16 of 40 pages: normal, not a surge
    assert redis_client.scard(empty_key(task_id)) == len(few_page_plan())
    assert telemetry.throttles(redis_client, list(MARKETS)) == {}


def test_retry_after_is_waited_out_instead_of_failing_the_page(mysql, redis_client, settings, config):
    plan = {("keyword 0", "US", 1): PageKind.THROTTLED, ("keyword 0", "DE", 2): PageKind.THROTTLED}
    with SearchSite(plan=plan) as site:
        task_id = dispatch_hour(mysql, redis_client, settings, config, current_hour(), keywords=1, pages=2)
        with spider(redis_client, site) as process:
            wait_answered(mysql, redis_client, task_id, 4, process)

    assert redis_client.scard(fail_key(task_id)) == 0  # answered with rows after the wait
    assert {k: site.requests[k] for k in plan} == dict.fromkeys(plan, 2)  # 429, then the page
