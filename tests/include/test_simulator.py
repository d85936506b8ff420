from __future__ import annotations

import datetime as dt
import random

from crawlops import dispatch, lifecycle
from crawlops.harness import simulator
from crawlops.model import UTC, hour_window_starting

HOUR = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"


def test_simulated_fleet_follows_the_protocol(mysql, redis_client, settings, config):
    config([("search_result", f"keyword {i}", "US", "hourly", 5) for i in range(20)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, HOUR, "UTC"))
    dispatch.push_window(mysql, redis_client, settings, HOUR)
    behaviour = simulator.Behaviour(
        results_per_page=3, fail_rate=0.1, vanish_rate=0.05, empty_rate=0.05, invalid_rate=0.0
    )

    counts = simulator.crawl(mysql, redis_client, behaviour=behaviour, rng=random.Random(7))

    assert counts["answered"] + counts["empty"] + counts["failed"] + counts["vanished"] == 100
    assert counts["failed"] > 0 and counts["vanished"] > 0 and counts["empty"] > 0
    assert redis_client.scard(TASK + "_empty") == counts["empty"]
    assert counts["rows"] == 3 * counts["answered"]
    assert redis_client.scard(TASK + "_fail") == counts["failed"]
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*), COUNT(DISTINCT keyword, page) FROM amazon_search_result WHERE task_id = %s", (TASK,)
        )
        assert cur.fetchone() == (counts["rows"], counts["answered"])
    lifecycle.sync_statuses(mysql, redis_client, settings)
    # The vanished elements are still in flight as far as anyone can tell: the task waits.
    assert lifecycle.retry_failures(mysql, redis_client, settings)["waiting"] == {TASK: counts["vanished"]}
    later = dt.datetime.now(UTC) + dt.timedelta(seconds=settings.health.completeness_grace_seconds + 5)
    retried = lifecycle.retry_failures(mysql, redis_client, settings, now=later)["retries"]
    assert retried == {TASK + "_fail": counts["failed"] + counts["vanished"]}  # never the empty ones


def test_max_elements_leaves_the_rest_queued(mysql, redis_client, settings, config):
    config([("search_result", "kw", "US", "hourly", 10)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, HOUR, "UTC"))
    dispatch.push_window(mysql, redis_client, settings, HOUR)

    simulator.crawl(mysql, redis_client, max_elements=4, behaviour=simulator.Behaviour(fail_rate=0))

    assert redis_client.scard(TASK) == 6


def test_a_simulated_block_storm_in_one_marketplace_is_named_by_the_surge_check(mysql, redis_client, settings, config):
    from crawlops import surges, telemetry

    config([("search_result", f"keyword {i}", m, "hourly", 5) for i in range(20) for m in ("US", "DE")])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, HOUR, "UTC"))
    dispatch.push_window(mysql, redis_client, settings, HOUR)
    behaviour = simulator.Behaviour(fail_rate=0.0, invalid_rate=0.0, blocked_markets=(("DE", 0.5),))

    counts = simulator.crawl(mysql, redis_client, behaviour=behaviour, rng=random.Random(3))

    reasons = {why for why, _ in telemetry.fail_reasons(redis_client, TASK).values()}
    assert counts["failed"] > 30 and reasons == {"blocked"}
    _, findings = surges.check_outcomes(mysql, redis_client, settings, dt.datetime.now(UTC))
    assert [f.subject for f in findings] == ["search_result/DE/blocked"]
