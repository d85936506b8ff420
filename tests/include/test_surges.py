"""Outcome surges judged per crawl object and marketplace, against the settings and the
marketplace's own history; throttles set and lifted (real MariaDB and Redis)."""

from __future__ import annotations

import datetime as dt

import pytest

from crawlops import surges, telemetry
from crawlops.findings import Level
from crawlops.model import UTC
from crawlops.store import outcomes as store_outcomes


def tally(answered=0, empty=0, **failed) -> surges.Tally:
    return surges.Tally(answered, empty, failed)


@pytest.mark.parametrize(
    ("now", "history", "kinds"),
    [
        (tally(50, 0, blocked=50), None, ["blocked"]),  # half the pages blocked: caught
        (tally(59, 0, blocked=41), tally(996, 0, blocked=4), ["blocked"]),  # 41 % against a usual 0.4 %
        (tally(50, 50), None, ["empty"]),  # half the pages empty: caught
        (tally(70, 30), None, []),  # keywords with fewer pages than max_pages: normal
        (tally(45, 55), tally(500, 450), []),  # usually half empty here: 55 % is no surge
        (tally(40, 0, http_503=30, parse_error=30), None, ["http_503", "parse_error"]),
        (tally(5, 0, blocked=10), None, []),  # too few answers for a verdict
        (tally(88, 0, blocked=12), tally(850, 0, blocked=150), []),  # 12 % blocked, usual 15 %
    ],
)
def test_judge_names_surges_against_limits_and_history(settings, now, history, kinds):
    key = ("search_result", "DE")

    found = surges.judge({key: now}, {key: history} if history else {}, settings.crawlers)

    assert [s.kind for s in found] == kinds


def put(mysql, minute, marketplace, answered, empty=0, **failed):
    counts = [("answered", "", answered), ("empty", "", empty)] + [("failed", r, n) for r, n in failed.items()]
    rows = [(minute, "search_result", marketplace, outcome, reason, n) for outcome, reason, n in counts if n]
    store_outcomes.upsert_minutes(mysql, rows)


def test_a_live_run_folds_redis_counts_throttles_and_lifts_the_throttle_when_the_share_falls(
    mysql, redis_client, settings
):
    now = dt.datetime.now(UTC)
    key = telemetry.minute_key(now - dt.timedelta(minutes=2))
    redis_client.hset(key, mapping={"search_result|DE|answered|": 30, "search_result|DE|failed|blocked": 20,
                                    "search_result|US|answered|": 50, "search_result|US|empty|": 10})  # fmt: skip

    details, findings = surges.check_outcomes(mysql, redis_client, settings, now)

    assert details["folded"] == 4 and [f.subject for f in findings] == ["search_result/DE/blocked"]
    assert findings[0].level == Level.ERROR and findings[0].title.startswith("DE: 40% of search_result pages blocked")
    assert telemetry.throttles(redis_client, ["DE", "US"]) == {"DE": settings.crawlers.throttle_interval_seconds}
    assert 0 < redis_client.ttl(telemetry.throttle_key("DE")) <= settings.crawlers.throttle_ttl_seconds
    again, _ = surges.check_outcomes(mysql, redis_client, settings, now)  # folding the same minute twice: the same
    assert again["by_marketplace"]["search_result/DE"]["total"] == 50

    redis_client.hset(key, mapping={"search_result|DE|answered|": 400})  # the throttled marketplace recovers
    details, findings = surges.check_outcomes(mysql, redis_client, settings, now)

    assert findings == [] and details["throttle_cleared"] == ["DE"]
    assert telemetry.throttles(redis_client, ["DE"]) == {}


def test_a_backfilled_run_judges_its_own_window_from_mysql_and_throttles_nothing(mysql, redis_client, settings):
    past = dt.datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
    for back in range(1, 4):
        put(mysql, (past - dt.timedelta(minutes=back * 5)).replace(tzinfo=None), "JP", 10, blocked=10)
    put(mysql, (past - dt.timedelta(days=2)).replace(tzinfo=None), "JP", 1000)  # history: no blocks

    details, findings = surges.check_outcomes(mysql, redis_client, settings, past)

    assert [f.subject for f in findings] == ["search_result/JP/blocked"] and "usual 0.0%" in findings[0].title
    assert details["judged_live"] is False and details["folded"] == 0
    assert "would throttle" in findings[0].action and telemetry.throttles(redis_client, ["JP"]) == {}
