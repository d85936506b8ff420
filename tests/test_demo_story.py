"""`make demo`'s seeded history (crawlops_dev.story) against the real MariaDB and Redis, no Airflow:
48 hours with the daily shape, each injected fault red where it should be and nowhere else,
and a second seeding that adds nothing."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from crawlops import dashboard, invariant
from crawlops.settings import Settings
from crawlops.store import story as store_story
from crawlops_dev import story
from crawlops_dev.demo import DEMO_CONFIG

NOW = dt.datetime(2026, 11, 30, 18, 20, tzinfo=dt.UTC)  # a Monday: weekly rows would be due at 00:00
CURRENT = NOW.replace(minute=0)


def hour(k: int) -> dt.datetime:
    return (CURRENT - dt.timedelta(hours=k)).replace(tzinfo=None)


@pytest.fixture
def demo_db(mysql, redis_client):
    with mysql.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {store_story.TABLE}")
    mysql.commit()
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_crawl_config (crawl_object, target, marketplace, frequency, priority, max_pages) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            DEMO_CONFIG,
        )
    mysql.commit()
    yield mysql
    with mysql.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {store_story.TABLE}")
    mysql.commit()


def _counts(conn) -> dict[str, int]:
    counts = {}
    with conn.cursor() as cur:
        for table in ("amazon_task_information", "amazon_task_element", "amazon_search_result",
                      "amazon_search_result_quarantine", "amazon_alert", "amazon_check_run",
                      "amazon_validation_run", "amazon_volume_hourly", store_story.TABLE):  # fmt: skip
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = int(cur.fetchone()[0])
    return counts


@pytest.mark.timeout(300)
def test_seeded_history_tells_the_story_once(demo_db, redis_client):
    conn = demo_db
    settings = Settings.load(environ=story.DEMO_SETTINGS)  # min_records_per_hour 100, anomaly_min_points 1...
    url = story.sqlalchemy_url(os.environ["CRAWLOPS_MYSQL_URL"])
    done = story.seed(conn, redis_client, settings, sa_url=url, tz="UTC", now=NOW)

    assert len(done.hours) == 48 and done.skipped == 0
    assert set(done.faults) == {"dead_task", "dirty_hour", "stopped_stream", "product_layout", "volume_drop"}
    assert len(done.reports) == 2  # the days that closed inside the 48 hours

    with conn.cursor() as cur:
        # one hourly root task per crawl object and seeded hour's window (plus the daily ones at 00:00), none weekly
        cur.execute(
            "SELECT task_type, COUNT(*), SUM(task_id LIKE '%\\_daily'), SUM(task_id LIKE '%\\_weekly') "
            "FROM amazon_task_information WHERE task_source IS NULL GROUP BY task_type"
        )
        roots = {r[0]: tuple(int(v or 0) for v in r[1:]) for r in cur.fetchall()}
        assert roots == {"search_result": (50, 2, 0), "product_detail": (48, 0, 0), "product_review": (48, 0, 0)}
        cur.execute("SELECT create_hour, COUNT(*) FROM amazon_search_result GROUP BY create_hour")
        rows = dict(cur.fetchall())
        cur.execute("SELECT hour, row_count, history_points, band_low, band_high, anomalous, direction "
                    "FROM amazon_volume_hourly WHERE table_name = 'amazon_search_result'")  # fmt: skip
        volume = {r[0]: r[1:] for r in cur.fetchall()}
        cur.execute("SELECT window_start, check_name, status FROM amazon_check_run "
                    "WHERE status NOT IN ('pass', 'no_channel')")  # fmt: skip
        red = {(r[0], r[1]): r[2] for r in cur.fetchall()}
        cur.execute("SELECT table_name, window_start, verdict FROM amazon_validation_run")
        by_table: dict[str, dict] = {}
        for table, start, verdict in cur.fetchall():
            by_table.setdefault(table, {})[start] = verdict
        verdicts = by_table["amazon_search_result"]
        cur.execute("SELECT create_hour, COUNT(*), SUM(title IS NULL) FROM amazon_product_detail GROUP BY create_hour")
        products = {r[0]: (int(r[1]), int(r[2])) for r in cur.fetchall()}
        cur.execute("SELECT level, check_name, window_start, occurrences FROM amazon_alert")
        incidents = cur.fetchall()
        alerts = {(r[1], r[2]): r[0] for r in incidents}
        seen = {(r[1], r[2]): r[3] for r in incidents}
        cur.execute("SELECT MAX(pushed_at), MAX(settled_at), MAX(created_at) FROM amazon_task_information")
        stamps = cur.fetchone()

    # 48 hours, each with its volume judged; the last 24 against a band (the same hour yesterday)
    assert sorted(volume) == [hour(k) for k in range(48, 0, -1)]
    assert all(volume[hour(k)][1] == 1 and volume[hour(k)][2] is not None for k in range(1, 25))
    # the daily shape: normal hours above min_records_per_hour, the afternoon above the night
    normal = [k for k in range(1, 49) if k not in (story.STOPPED, story.STOPPED - 1, story.DROP)]
    assert all(rows[hour(k)] >= 200 for k in normal)
    assert rows[hour(4)] > rows[hour(16)]  # 14:00 against 02:00
    # every stamp backdated into the seeded past
    assert all(stamp < NOW.replace(tzinfo=None) for stamp in stamps)

    stopped, catch_up = hour(story.STOPPED), hour(story.STOPPED - 1)
    five = catch_up  # the 5-minute run at :05 of the next hour, window [:00, :05)
    expected_red = {
        (hour(story.DEAD), "completeness"): "fail",
        (hour(story.DIRTY), "quarantine_invalid"): "fail",
        (stopped, "suite:amazon_search_result"): "fail",
        (stopped, "volume_anomaly"): "fail",
        (five, "freshness"): "fail",
        (five, "task_health"): "fail",
        (catch_up, "volume_anomaly"): "fail",
        (hour(story.DROP), "volume_anomaly"): "fail",
        # the stopped stream stops every crawl: each object's suite fails on its empty hour, and the
        # reviews (ten an hour) drop and spike like the search results; two product pages an hour do not
        (stopped, "suite:amazon_product_detail"): "fail",
        (stopped, "suite:amazon_product_review"): "fail",
        (stopped, "volume_anomaly:product_review"): "fail",
        (catch_up, "volume_anomaly:product_review"): "fail",
        # the product pages without their title: that suite alone, and the pages sent back once
        (hour(story.PRODUCT), "suite:amazon_product_detail"): "fail",
        (hour(story.PRODUCT), "recrawl_incomplete:product_detail"): "repaired",
    }
    assert red == expected_red  # and every other check of every object and hour passed
    assert products[hour(story.PRODUCT)] == (2, 2)  # both pages without a title
    assert products[hour(story.PRODUCT - 1)] == (4, 0)  # their re-crawl beside the hour's own
    assert by_table["amazon_product_detail"][hour(story.PRODUCT)] == "failed"
    assert verdicts[hour(story.PRODUCT)] == "passed"  # search, the same hour
    assert volume[stopped][4:] == (1, "drop") and volume[catch_up][4:] == (1, "spike")
    assert volume[hour(story.DROP)][4:] == (1, "drop")
    assert sum(1 for v in volume.values() if v[4]) == 3
    assert verdicts[hour(story.DIRTY)] == "repaired" and verdicts[stopped] == "failed"
    assert sum(1 for v in verdicts.values() if v == "passed") == 46

    assert alerts[("task_dead", hour(story.DEAD))] == "CRITICAL"
    assert alerts[("invalid_data", hour(story.DIRTY))] == "ERROR"
    assert alerts[("row_count", stopped)] == "ERROR"
    assert alerts[("freshness", five)] == "ERROR" and alerts[("task_timeout", five)] == "ERROR"
    assert alerts[("volume_anomaly", hour(story.DROP))] == "ERROR"
    # the stopped hour's drop and the catch-up's spike: one incident, seen twice, at its worst level
    assert alerts[("volume_anomaly", stopped)] == "ERROR" and seen[("volume_anomaly", stopped)] == 2
    assert ("volume_anomaly", catch_up) not in alerts
    assert not [key for key, level in alerts.items() if level == "CRITICAL" and key[0] != "task_dead"]
    assert invariant.element_fates(conn)["LOST"] == 0

    # the page's story: the five faults of the default 24 hours, each told
    faults = dashboard.story(conn, dashboard.HourRange.of(None, None, now=NOW))["faults"]
    assert [f["fault"] for f in faults] == [
        "dead_task",
        "dirty_hour",
        "stopped_stream",
        "product_layout",
        "volume_drop",
    ]
    assert "title_not_null" in faults[3]["story"] and "product_detail_" in faults[3]["story"]
    assert "repaired" in faults[1]["story"] and "spike" in faults[2]["story"] and "Dead" in faults[0]["story"]

    # a second seeding (another make demo) adds nothing
    before = _counts(conn)
    again = story.seed(conn, redis_client, settings, sa_url=url, tz="UTC", now=NOW + dt.timedelta(minutes=30))
    assert (again.hours, again.skipped, again.faults) == ([], 48, {})
    assert _counts(conn) == before

    # without the story table (any real deployment) the page has no story
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE {store_story.TABLE}")
    assert dashboard.story(conn, dashboard.HourRange.of(None, None, now=NOW)) == {"faults": []}
