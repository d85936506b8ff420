"""Volume anomaly, schema drift, completeness and quarantine against the real MariaDB and Redis."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from crawlops import dispatch, lifecycle, quality
from crawlops.alerts import record_findings
from crawlops.findings import Finding, Level
from crawlops.model import UTC, Window, hour_window_starting

HOUR = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"
SUITE_COLUMNS = {"task_id": "string", "price": "numeric", "create_time": "datetime"}


def insert_rows(mysql, rows):
    """rows: (task_id, keyword, marketplace, asin, price, rating, page, position, create_time)."""
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, title, price, currency, rating, "
            "review_count, page, position, create_time) VALUES (%s, %s, %s, %s, 't', %s, 'USD', %s, 1, %s, %s, %s)",
            rows,
        )
    mysql.commit()


def good_row(i, when, task=TASK):
    return (task, f"kw {i // 20}", "US", f"B0{i:08d}", 9.99, 4.5, 1, i % 20 + 1, when)


def hour_rows(hour_start, count, offset=0):
    return [good_row(offset + i, hour_start + dt.timedelta(seconds=i % 3600)) for i in range(count)]


# --- volume against history -------------------------------------------------------------


@pytest.mark.parametrize(
    ("observed", "history", "expected", "direction"),
    [
        (40_000, [40_000 + d for d in (-300, 200, 100, -50, 0, 250, -200, 150)], False, None),
        (5_000, [40_000 + d for d in (-300, 200, 100, -50, 0, 250, -200, 150)], True, "drop"),
        (90_000, [40_000 + d for d in (-300, 200, 100, -50, 0, 250, -200, 150)], True, "spike"),
        (5_000, [40_000, 41_000, 39_000], None, None),  # too little history: no verdict
        (1_010, [1_000] * 10, False, None),  # a flat history does not turn a wobble into an anomaly
    ],
)
def test_judge_volume(settings, observed, history, expected, direction):
    verdict = quality.judge_volume(observed, history, settings.quality)

    assert verdict.anomalous is expected
    assert verdict.direction == direction


def test_direction_setting_limits_what_is_flagged(settings):
    history = [40_000 + d for d in (-300, 200, 100, -50, 0, 250, -200, 150)]
    drops_only = dataclasses.replace(settings.quality, anomaly_direction="drop")

    assert quality.judge_volume(90_000, history, drops_only).anomalous is False
    assert quality.judge_volume(5_000, history, drops_only).anomalous is True


def test_hour_of_week_seasonality_steps_by_weeks(settings):
    weekly = dataclasses.replace(settings.quality, anomaly_seasonality="hour_of_week", anomaly_history_days=28)

    hours = quality.history_hours(dt.datetime(2026, 11, 3, 12), weekly)

    assert hours == [dt.datetime(2026, 11, 3, 12) - dt.timedelta(weeks=k) for k in range(1, 5)]


def test_volume_drop_against_a_synthetic_14_day_history(mysql, settings):
    start = HOUR.naive()[0]
    rows = []
    for day in range(1, 15):
        rows += hour_rows(start - dt.timedelta(days=day), 400 + (day % 3) * 10, offset=day * 1000)
    rows += hour_rows(start - dt.timedelta(hours=1), 5_000, offset=100_000)  # other hours do not count
    rows += hour_rows(start, 50, offset=200_000)
    insert_rows(mysql, rows)

    verdict, findings = quality.check_volume(mysql, "amazon_search_result", HOUR, settings)

    assert (verdict.observed, verdict.points) == (50, 14)
    assert verdict.anomalous is True and verdict.direction == "drop"
    assert [(f.level, f.check) for f in findings] == [(Level.ERROR, "volume_anomaly")]


def test_volume_with_too_little_history_gives_no_verdict(mysql, settings):
    start = HOUR.naive()[0]
    insert_rows(mysql, hour_rows(start - dt.timedelta(days=1), 400) + hour_rows(start, 10, offset=1000))

    verdict, findings = quality.check_volume(mysql, "amazon_search_result", HOUR, settings)

    assert verdict.anomalous is None and verdict.points == 1
    assert findings == []


# --- schema drift -----------------------------------------------------------------------


def test_no_drift_on_the_shipped_table(mysql):
    assert quality.check_schema_drift(mysql, "amazon_search_result", SUITE_COLUMNS) == []


@pytest.fixture
def drifted(mysql):
    """A copy of the results table with a dropped and a retyped column (temporary tables are not
    in information_schema, so a real one, dropped afterwards)."""
    with mysql.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS drifted")
        cur.execute("CREATE TABLE drifted LIKE amazon_search_result")
        cur.execute("ALTER TABLE drifted DROP COLUMN price, MODIFY task_id BIGINT NULL")
    yield "drifted"
    with mysql.cursor() as cur:
        cur.execute("DROP TABLE drifted")


def test_missing_and_retyped_columns_are_errors_that_name_them(mysql, drifted):
    findings = quality.check_schema_drift(mysql, drifted, SUITE_COLUMNS)

    assert {(f.level, f.subject) for f in findings} == {
        (Level.ERROR, "drifted.price"),
        (Level.ERROR, "drifted.task_id"),
    }
    assert any("bigint" in f.title for f in findings)


# --- completeness -----------------------------------------------------------------------


def finish_with_missing(mysql, redis_client, settings, config, crawler):
    config([("search_result", f"keyword {i}", "US", "hourly", 5) for i in range(2)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, HOUR, "UTC"))
    dispatch.push_window(mysql, redis_client, settings, HOUR)
    taken = crawler.take(TASK, 10)
    crawler.succeed(TASK, taken[:7])  # 3 taken by a worker that died
    lifecycle.sync_statuses(mysql, redis_client, settings)
    return taken


def test_missing_elements_of_finished_tasks_become_a_retry(mysql, redis_client, settings, config, crawler):
    taken = finish_with_missing(mysql, redis_client, settings, config, crawler)
    later = dt.datetime.now(UTC) + dt.timedelta(seconds=settings.health.completeness_grace_seconds + 5)
    hour = Window(later - dt.timedelta(hours=1), later)

    summary, findings = quality.check_completeness(mysql, redis_client, settings, hour)

    assert summary["missing"] == {TASK: 3}
    assert [(f.check, f.subject) for f in findings] == [("missing_data", TASK)]
    assert findings[0].title == f"{TASK}: 3 elements taken and never answered (lost 3)"
    assert findings[0].action.startswith(f"create retry task {TASK}_fail with its 3 unanswered elements, e.g. ")
    assert findings[0].action.count(" lost (taken by a worker and never answered)") == 3  # examples, with reasons
    assert sorted(m.decode() for m in redis_client.smembers(TASK + "_fail")) == sorted(taken[7:])
    # The next hour's account names the task settled in it; nothing is retried twice.
    next_hour = Window(later - dt.timedelta(minutes=1), later + dt.timedelta(minutes=59))
    again, findings = quality.check_completeness(mysql, redis_client, settings, next_hour)
    assert again["missing"] == {TASK: 3} and again["repair"]["retries"] == {}
    assert [(f.check, f.subject) for f in findings] == [("missing_data", TASK)]
    assert redis_client.scard(TASK + "_fail") == 3


def test_completeness_waits_for_the_grace_period(mysql, redis_client, settings, config, crawler):
    finish_with_missing(mysql, redis_client, settings, config, crawler)
    now = dt.datetime.now(UTC)

    summary, findings = quality.check_completeness(
        mysql, redis_client, settings, Window(now - dt.timedelta(hours=1), now)
    )

    assert summary["waiting"] == {TASK: 3} and summary["missing"] == {} and findings == []


# --- quarantine -------------------------------------------------------------------------


def count(mysql, table):
    with mysql.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        return cur.fetchone()[0]


def test_invalid_rows_move_to_quarantine_with_their_rule(mysql, settings):
    start = HOUR.naive()[0]
    rows = hour_rows(start, 300)
    bad = [
        (TASK, "kw x", "US", "B0BADPRICE", -1, 4.0, 2, 1, start),
        (TASK, "kw x", "US", "B000000001", 5, 7.5, 2, 2, start),
        (TASK, "kw x", "US", "b0lowercas", 5, 4.0, 2, 3, start),
        (TASK, "kw x", "XX", "B000000002", 5, 4.0, 2, 4, start),
        rows[0],  # a duplicate of the first row
    ]
    outside = [(TASK, "kw y", "US", "NOTANASIN", -5, 9, 1, 1, start - dt.timedelta(seconds=1))]
    insert_rows(mysql, rows + bad + outside)
    before = count(mysql, "amazon_search_result")

    summary, findings = quality.quarantine_invalid(mysql, "amazon_search_result", HOUR, settings, dag_run_id="r1")

    assert summary["by_rule"] == {
        "price_non_negative": 1,
        "rating_range": 1,
        "asin_format": 1,
        "marketplace_known": 1,
        "unique_result": 1,
    }
    assert count(mysql, "amazon_search_result") + count(mysql, "amazon_search_result_quarantine") == before
    assert count(mysql, "amazon_search_result_quarantine") == 5
    assert findings[0].level == Level.ERROR  # 5 of 305 is above 1 %
    with mysql.cursor() as cur:
        cur.execute("SELECT failed_rule, price, dag_run_id FROM amazon_search_result_quarantine ORDER BY id")
        assert ("price_non_negative", -1, "r1") in {(r, float(p), d) for r, p, d in cur.fetchall()}
    again, _ = quality.quarantine_invalid(mysql, "amazon_search_result", HOUR, settings)
    assert again["invalid"] == 0


def test_quarantine_dry_run_moves_nothing(mysql, settings):
    start = HOUR.naive()[0]
    insert_rows(mysql, [*hour_rows(start, 10), (TASK, "kw", "US", "B000000009", -1, 4.0, 9, 9, start)])

    summary, findings = quality.quarantine_invalid(mysql, "amazon_search_result", HOUR, settings, dry_run=True)

    assert summary["invalid"] == 1
    assert "would move" in findings[0].action
    assert count(mysql, "amazon_search_result_quarantine") == 0 and count(mysql, "amazon_search_result") == 11


# --- alerts -----------------------------------------------------------------------------


def test_a_rerun_updates_its_window_and_a_later_window_counts_one_more(mysql):
    finding = Finding(Level.WARNING, "amazon_data_supervision", "task_stalled", "stalled", subject=TASK)

    first = record_findings(mysql, [finding], window=HOUR, dag_run_id="a")
    again = record_findings(mysql, [dataclasses.replace(finding, title="still stalled")], window=HOUR, dag_run_id="b")
    other_window = hour_window_starting(dt.datetime(2026, 11, 3, 13, tzinfo=UTC), "UTC")
    record_findings(mysql, [finding], window=other_window)

    assert first == again
    with mysql.cursor() as cur:
        cur.execute("SELECT title, dag_run_id, occurrences, last_window_start FROM amazon_alert ORDER BY id")
        assert cur.fetchall() == (("stalled", None, 2, other_window.naive()[0]),)


# --- freshness (every 5-minute run, at the run's own time) ------------------------------


def fresh_setup(mysql, redis_client, settings, config, *, minutes_old, markets=("US", "DE")):
    """An open task for two marketplaces, pushed 2 hours ago; rows written ``minutes_old`` ago per market."""
    config([("search_result", f"kw {m}", m, "hourly", 2) for m in markets])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, HOUR, "UTC"))
    dispatch.push_window(mysql, redis_client, settings, HOUR)
    with mysql.cursor() as cur:
        cur.execute("UPDATE amazon_task_information SET pushed_at = UTC_TIMESTAMP() - INTERVAL 2 HOUR")
        for market, age in minutes_old.items():
            cur.execute(
                "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, page, position, create_time) "
                "VALUES (%s, 'kw', %s, 'B000000001', 1, 1, UTC_TIMESTAMP() - INTERVAL %s MINUTE)",
                (TASK, market, age),
            )
    mysql.commit()


def test_data_25_minutes_old_is_fresh(mysql, redis_client, settings, config):
    fresh_setup(mysql, redis_client, settings, config, minutes_old={"US": 25, "DE": 20})

    summary, findings = quality.check_freshness(mysql, settings, dt.datetime.now(UTC))

    assert findings == []
    assert 24 * 60 <= summary["scopes"]["search_result/US"]["age_seconds"] <= 26 * 60


def test_data_70_minutes_old_in_a_mid_hour_run_is_an_error_per_marketplace(mysql, redis_client, settings, config):
    fresh_setup(mysql, redis_client, settings, config, minutes_old={"US": 70, "DE": 10})

    _, findings = quality.check_freshness(mysql, settings, dt.datetime.now(UTC))

    assert [(f.level, f.check, f.subject) for f in findings] == [(Level.ERROR, "freshness", "search_result/US")]
    assert "70 min old" in findings[0].title


def test_when_every_marketplace_stopped_the_crawl_object_is_stale_too(mysql, redis_client, settings, config):
    fresh_setup(mysql, redis_client, settings, config, minutes_old={"US": 90, "DE": 75})

    _, findings = quality.check_freshness(mysql, settings, dt.datetime.now(UTC))

    assert sorted(f.subject for f in findings) == ["search_result", "search_result/DE", "search_result/US"]


def test_an_idle_crawl_is_not_stale(mysql, redis_client, settings, config, crawler):
    fresh_setup(mysql, redis_client, settings, config, minutes_old={"US": 600, "DE": 600})
    with mysql.cursor() as cur:  # every task finished long ago: nothing is being crawled
        cur.execute(
            "UPDATE amazon_task_information "
            "SET task_status = 'Completed', finished_at = UTC_TIMESTAMP() - INTERVAL 5 HOUR"
        )
    mysql.commit()

    summary, findings = quality.check_freshness(mysql, settings, dt.datetime.now(UTC))

    assert findings == [] and summary["scopes"] == {}


def test_a_crawl_resuming_after_an_idle_spell_gets_its_time(mysql, redis_client, settings, config):
    fresh_setup(mysql, redis_client, settings, config, minutes_old={"US": 600, "DE": 600})
    with mysql.cursor() as cur:  # the new hour's task was pushed 5 minutes ago
        cur.execute("UPDATE amazon_task_information SET pushed_at = UTC_TIMESTAMP() - INTERVAL 5 MINUTE")
    mysql.commit()

    assert quality.check_freshness(mysql, settings, dt.datetime.now(UTC))[1] == []
    # An hour later with still nothing, it is stale.
    later = dt.datetime.now(UTC) + dt.timedelta(minutes=61)
    assert len(quality.check_freshness(mysql, settings, later)[1]) == 3


# --- quality score ----------------------------------------------------------------------


def test_quality_score_is_the_share_of_rows_passing_every_rule(mysql, settings):
    from crawlops.validation import REQUIRED_COLUMNS

    start = HOUR.naive()[0]
    rows = []
    for i in range(100):
        price = -1 if i < 5 else 9.99  # 5 invalid
        title = None if 5 <= i < 8 else "item"  # 3 missing a required field
        rows.append((TASK, "kw", "US", f"B0{i:08d}", title, price, 4.5, 1, i + 1, start + dt.timedelta(seconds=i)))
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, title, price, rating, page, "
            "position, create_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    mysql.commit()

    score, count = quality.quality_score(mysql, "amazon_search_result", HOUR, settings, REQUIRED_COLUMNS)

    assert (score, count) == (0.92, 100)
    assert quality.quality_score_finding("amazon_search_result", HOUR, score, count, 0.9) == []
    (below,) = quality.quality_score_finding("amazon_search_result", HOUR, score, count, 0.95)
    assert (below.level, below.check, below.details["score"]) == (Level.ERROR, "data_quality", 0.92)
    assert settings.quality.data_quality_threshold == 0.9
    assert quality.quality_score(mysql, "amazon_search_result", Window(HOUR.end, HOUR.end + dt.timedelta(hours=1)),
                                 settings, REQUIRED_COLUMNS) == (None, 0)  # fmt: skip
