"""The daily report against the real MariaDB and Redis: a simulated day, checked against the tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import random
import re
import statistics

import pytest
import redis

from crawlops import dispatch, lifecycle, report
from crawlops.alerts import record_findings
from crawlops.findings import Finding, Level
from crawlops.harness import simulator
from crawlops.model import UTC, Window, day_ending, hour_window_starting

TZ = "UTC"
DAY = day_ending(Window(dt.datetime(2026, 11, 3, 23, 55, tzinfo=UTC), dt.datetime(2026, 11, 4, tzinfo=UTC)), TZ)
CRAWLED = [DAY.start + dt.timedelta(hours=h) for h in range(4)]  # 00:00 .. 03:00 have work
BEFORE, AFTER = DAY.start - dt.timedelta(hours=1), DAY.end  # neighbours that must not count
HOSTILE = "<script>alert(1)</script>"
RUN_URL = "http://localhost:8080/dags/amazon_data_supervision/runs/scheduled__2026-11-04"


def one(mysql, sql, params=()):
    with mysql.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def rows_per_hour(mysql, window):
    """Independent of create_hour and quality.hourly_counts: ranges of create_time."""
    start, end = window.naive()
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT TIMESTAMPDIFF(HOUR, %s, create_time), COUNT(*) FROM amazon_search_result "
            "WHERE create_time >= %s AND create_time < %s GROUP BY 1",
            (start, start, end),
        )
        return {int(h): int(n) for h, n in cur.fetchall()}


def insert_history(mysql, hour, count):
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, page, position, create_time) "
            "VALUES ('history', 'kw', 'US', 'B000000000', 1, %s, %s)",
            [(i % 100, hour + dt.timedelta(seconds=i)) for i in range(count)],
        )
    mysql.commit()


def insert_validation(mysql, suite, hour, *, success, failed=0, rows=100):
    with mysql.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_validation_run (suite_name, table_name, window_start, window_end, success, "
            "evaluated, failed, row_count) VALUES (%s, 'amazon_search_result', %s, %s, %s, 21, %s, %s)",
            (suite, hour.replace(tzinfo=None), (hour + dt.timedelta(hours=1)).replace(tzinfo=None), success, failed,
             rows),
        )  # fmt: skip
    mysql.commit()


def alert(mysql, level, check, subject, title, hour):
    finding = Finding(level, "amazon_data_supervision", check, title, subject=subject)
    record_findings(mysql, [finding], window=hour_window_starting(hour, TZ))


def build_day(mysql, r, settings, config):
    """A realistic day: hourly dispatch, a simulated fleet that fails some elements, retries, Dead tasks,
    the suite's verdicts, alerts, and a 14-day history for the volume band."""
    config([("search_result", f"keyword {i}", "US", "hourly", 4) for i in range(5)])
    config([("search_result", HOSTILE, "US", "hourly", 2)])
    tight = dataclasses.replace(settings, dispatch=dataclasses.replace(settings.dispatch, retry_limit=1))
    rng = random.Random(11)
    fleet = simulator.Behaviour(results_per_page=3, fail_rate=0.12, vanish_rate=0.05, empty_rate=0.05, invalid_rate=0.0)
    for hour in [BEFORE, *CRAWLED, AFTER]:
        window = hour_window_starting(hour, TZ)
        dispatch.record_plan(mysql, tight, dispatch.plan_window(mysql, tight, window, TZ))
        dispatch.push_window(mysql, r, tight, window)
        simulator.crawl(mysql, r, behaviour=fleet, rng=rng, clock=lambda h=hour: h + dt.timedelta(minutes=20))
        lifecycle.sync_statuses(mysql, r, tight)
        lifecycle.retry_failures(mysql, r, tight)
    with mysql.cursor() as cur:  # everything above happened "now": spread the task timings over the day
        cur.execute(
            "UPDATE amazon_task_information SET pushed_at = interval_end + INTERVAL 1 MINUTE, "
            "finished_at = IF(finished_at IS NULL, NULL, interval_end + INTERVAL (61 + CRC32(task_id) % 3000) SECOND)"
        )
    mysql.commit()
    lifecycle.settle_finished(mysql, r, tight, now=dt.datetime.now(UTC) + dt.timedelta(days=1))  # the lost ones

    observed = rows_per_hour(mysql, DAY)
    for days in range(1, 15):
        for h in range(3):  # history like the day: inside the band
            insert_history(mysql, CRAWLED[h] - dt.timedelta(days=days), observed[h] + days % 3 - 1)
        insert_history(mysql, CRAWLED[3] - dt.timedelta(days=days), 3 * observed[3] + days % 3)  # a drop today

    suite = "amazon_search_result"
    for h, hour in enumerate(CRAWLED):
        insert_validation(mysql, suite, hour, success=h != 1, failed=2 if h == 1 else 0, rows=observed[h])
    insert_validation(mysql, suite, BEFORE, success=False, failed=5)  # the day before: not counted

    alert(mysql, Level.CRITICAL, "task_dead", "search_result_x_hourly_fail", "task is Dead", CRAWLED[2])
    alert(mysql, Level.CRITICAL, "redis_reachable", "", "the day before", BEFORE)  # not counted
    for i, check in enumerate(("rule:price_non_negative", "volume_anomaly", "invalid_data")):
        alert(mysql, Level.ERROR, check, "amazon_search_result", f"error {i}", CRAWLED[i + 1])
    for i in range(4):
        alert(mysql, Level.WARNING, "missing_data", f"task {i}", f"warning {i}", CRAWLED[i])
    alert(mysql, Level.WARNING, "missing_data", HOSTILE, HOSTILE, CRAWLED[3])  # the newest WARNING
    for i in range(3):
        alert(mysql, Level.INFO, "invalid_data", f"info {i}", f"info {i}", CRAWLED[i])
    return observed


@pytest.fixture
def day(mysql, redis_client, settings, config):
    return build_day(mysql, redis_client, settings, config)


def build(mysql, r, settings, run_url=RUN_URL):
    return report.build_daily_report(mysql, r, settings, DAY, tz=TZ, run_url=run_url)


def test_task_statistics_match_the_tables(mysql, redis_client, settings, day):
    built = build(mysql, redis_client, settings)
    start, end = DAY.naive()
    in_day = "interval_start >= %s AND interval_start < %s"
    stats = built.data.tasks.by_type["search_result"]

    def count(where, *params):
        sql = f"SELECT COUNT(*) FROM amazon_task_information WHERE {where}"
        return one(mysql, sql, params)[0]

    assert built.day == dt.date(2026, 11, 3)
    assert count(f"NOT ({in_day})", start, end) > 0  # neighbours exist and are left out
    assert stats.dispatched == count(f"{in_day} AND task_source IS NULL", start, end) == 4
    assert stats.retried == count(f"{in_day} AND task_source IS NOT NULL", start, end)
    statuses = {"completed": ["Completed"], "failed": ["Failed"], "dead": ["Dead"], "open": ["Pending", "In Progress"]}
    for key, names in statuses.items():
        marks = ", ".join(["%s"] * len(names))
        assert getattr(stats, key) == count(f"{in_day} AND task_status IN ({marks})", start, end, *names), key
    assert stats.completed > 0 and stats.failed > 0 and stats.retried > 0 and stats.dead > 0

    # Answered = the task's own result rows or empty answers, counted from the tables.
    elements, answered, empty, failed = one(
        mysql,
        "SELECT SUM(t.element_count), SUM((SELECT COUNT(*) FROM amazon_task_element e WHERE e.task_id = t.task_id "
        "AND (e.empty_at IS NOT NULL OR EXISTS (SELECT 1 FROM amazon_search_result s WHERE s.task_id = t.task_id "
        "AND s.keyword = e.target AND s.page = e.page AND s.marketplace = e.marketplace)))), "
        "SUM((SELECT COUNT(*) FROM amazon_task_element e WHERE e.task_id = t.task_id AND e.empty_at IS NOT NULL)), "
        f"SUM(t.failed_count) FROM amazon_task_information t WHERE {in_day} AND t.settled_at IS NOT NULL",
        (start, end),
    )
    assert stats.success_rate == pytest.approx(float(answered) / float(elements), abs=1e-6)
    assert stats.empty_elements == empty > 0 and stats.lost_elements > 0
    # Lost elements are not successes: the old "dispatched minus failed" would be higher.
    assert stats.success_rate < (float(elements) - float(failed)) / float(elements)
    assert 0 < stats.success_rate < 1

    with mysql.cursor() as cur:
        cur.execute(
            f"SELECT TIMESTAMPDIFF(SECOND, pushed_at, finished_at) FROM amazon_task_information "
            f"WHERE {in_day} AND task_status IN ('Completed', 'Failed', 'Dead')",
            (start, end),
        )
        durations = sorted(int(d) for (d,) in cur.fetchall())
    assert len(set(durations)) > 3  # the timings differ, so the percentile is tested
    assert stats.p95_seconds == durations[-(-95 * len(durations) // 100) - 1]  # nearest rank
    assert stats.mean_seconds == pytest.approx(statistics.fmean(durations), abs=0.1)
    assert built.data.tasks.total.p95_seconds == stats.p95_seconds  # one crawl object: same figures
    assert built.data.tasks.total.dispatched == 4
    json.dumps(built.data.to_json())  # JSON-serializable throughout


def test_the_stored_summary_reads_back_as_the_same_report(mysql, redis_client, settings, day):
    built = build(mysql, redis_client, settings)

    stored = report.ReportData.from_json(json.loads(report.summary_json(built.data)))

    assert stored == built.data  # every typed record survives the summary column
    assert report.render_markdown(stored) == built.markdown and report.render_html(stored) == built.html
    too_long = dataclasses.replace(
        built.data, alerts=dataclasses.replace(built.data.alerts, top=built.data.alerts.top * 2000)
    )
    slim = report.ReportData.from_json(json.loads(report.summary_json(too_long)))
    assert slim.truncated and len(slim.alerts.top) == 3 and slim.volume.hours == []
    assert all(s.hours == [] for s in slim.quality.suites.values())
    assert (slim.tasks, slim.quality.failed, slim.volume.total_rows) == (
        built.data.tasks, built.data.quality.failed, built.data.volume.total_rows,
    )  # fmt: skip


def test_volume_quality_and_alerts_match_the_tables(mysql, redis_client, settings, day):
    data = build(mysql, redis_client, settings).data
    volume = data.volume.hours

    assert len(volume) == 24 and data.hours[0] == "00:00"
    assert [e.rows for e in volume] == [day.get(h, 0) for h in range(24)]
    assert data.volume.total_rows == sum(day.values())
    for h in range(3):
        assert volume[h].band_low <= volume[h].rows <= volume[h].band_high, h
        assert volume[h].outside is False
    assert volume[3].rows < volume[3].band_low and volume[3].outside is True
    assert all(e.band_low is None and e.outside is None for e in volume[4:])  # too little history
    assert data.volume.outside_band == 1

    suite = data.quality.suites["amazon_search_result"]
    assert [c is not None for c in suite.hours] == [h < 4 for h in range(24)]
    assert [c.success for c in suite.hours[:4]] == [True, False, True, True]
    assert suite.hours[1].failed == 2 and suite.hours[2].row_count == day[2]
    assert (data.quality.passed, data.quality.failed, data.quality.not_validated) == (3, 1, 20)

    start, end = DAY.naive()
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT level, COUNT(*) FROM amazon_alert WHERE window_start >= %s AND window_start < %s GROUP BY level",
            (start, end),
        )
        by_level = dict(cur.fetchall())
    assert data.alerts.by_level == {"CRITICAL": 1, "ERROR": 3, "WARNING": 5, "INFO": 3} == by_level
    top = data.alerts.top
    assert len(top) == 10
    assert [a.level for a in top] == ["CRITICAL"] + ["ERROR"] * 3 + ["WARNING"] * 5 + ["INFO"]
    assert top[0].title == "task is Dead"  # the day before's CRITICAL is not in this day
    assert [a.title for a in top[1:4]] == ["error 2", "error 1", "error 0"]  # newest first within a level

    system = data.system
    assert system.mysql.reachable and system.redis.reachable
    assert system.redis.used_memory > 0
    open_tasks = one(
        mysql, "SELECT COUNT(*) FROM amazon_task_information WHERE task_status IN ('Pending', 'In Progress')"
    )
    assert system.queues["search_result"].open_tasks == open_tasks[0] > 0


def test_markdown_is_a_compact_summary(mysql, redis_client, settings, day):
    built = build(mysql, redis_client, settings)
    text, stats = built.markdown, built.data.tasks.by_type["search_result"]

    assert len(text) < 4000
    assert text.startswith("### Crawl daily report 2026-11-03")
    assert f"search_result: 4 dispatched, {stats.completed} completed, {stats.failed} failed" in text
    assert "3 of 4 validated hours passed, 1 failed (amazon_search_result 01:00)" in text
    assert "1 hours outside the expected band: 03:00" in text
    assert "CRITICAL 1 · ERROR 3 · WARNING 5 · INFO 3" in text
    assert "Redis reachable" in text
    assert f"[Open the run in Airflow]({RUN_URL})" in text
    assert HOSTILE not in text and "&lt;script&gt;" in text


def test_store_report_rewrites_the_days_row(mysql, redis_client, settings, day):
    first = build(mysql, redis_client, settings)
    report.store_report(mysql, first, dag_run_id="run-1")
    alert(mysql, Level.CRITICAL, "task_dead", "another", "a second Dead task", CRAWLED[3])
    second = build(mysql, redis_client, settings)
    assert second.markdown != first.markdown

    report.store_report(mysql, second, dag_run_id="run-2")

    with mysql.cursor() as cur:
        cur.execute("SELECT report_date, markdown, html, summary, dag_run_id FROM amazon_daily_report")
        rows = cur.fetchall()
    assert len(rows) == 1
    report_date, markdown, page, summary, run_id = rows[0]
    assert (report_date, markdown, page, run_id) == (dt.date(2026, 11, 3), second.markdown, second.html, "run-2")
    assert json.loads(summary)["alerts"]["by_level"]["CRITICAL"] == 2


def test_write_html_is_self_contained_with_charts(mysql, redis_client, settings, day, tmp_path):
    built = build(mysql, redis_client, settings)

    path = report.write_html(built, tmp_path / "reports")
    page = path.read_text("utf-8")

    assert path == tmp_path / "reports" / "daily-report-2026-11-03.html"
    assert page == built.html
    charts = {m[1]: m[0] for m in re.finditer(r'<svg class="chart" id="(chart-[a-z]+)".*?</svg>', page, re.S)}
    assert set(charts) == {"chart-volume", "chart-quality", "chart-alerts"}
    assert charts["chart-volume"].count('<rect class="bar"') == 24
    assert charts["chart-volume"].count('<rect class="band"') == 4
    assert charts["chart-volume"].count(f'fill="{report.charts.BAD}"') == 1  # the hour outside its band
    assert charts["chart-quality"].count('<rect class="cell"') == 24
    assert charts["chart-quality"].count(f'fill="{report.charts.BAD}"') == 1
    assert charts["chart-alerts"].count('<rect class="bar"') == 4
    assert '<table id="task-table">' in page and "<td>4</td>" in page
    links = re.findall(r"https?://[^\s\"'<>)]*", page)
    assert links == [RUN_URL]
    assert not re.search(r"<script|<link|\ssrc=|@import|url\(", page, flags=re.I)
    assert HOSTILE not in page and html.escape(HOSTILE) in page

    report.write_html(dataclasses.replace(built, html="<p>rewritten</p>"), tmp_path / "reports")
    assert path.read_text("utf-8") == "<p>rewritten</p>"  # overwritten, not added
    assert [p.name for p in (tmp_path / "reports").iterdir()] == [path.name]


def test_unreachable_redis_still_yields_a_report(mysql, redis_client, settings, config):
    config([("search_result", "kw", "US", "hourly", 3)])
    window = hour_window_starting(CRAWLED[0], TZ)
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, window, TZ))
    dispatch.push_window(mysql, redis_client, settings, window)
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)

    built = report.build_daily_report(mysql, down, settings, DAY, tz=TZ)

    redis_facts = built.data.system.redis
    assert redis_facts.reachable is False and "unreachable" in redis_facts.error
    assert built.data.system.queues == {"search_result": report.model.QueueDepth(open_tasks=1)}
    assert built.data.tasks.by_type["search_result"].dispatched == 1
    assert "**Redis unreachable**" in built.markdown
    assert "unreachable</b>" in built.html


def test_empty_day_in_a_local_timezone(mysql, redis_client, settings):
    tz = "Asia/Shanghai"
    local_midnight = dt.datetime(2026, 11, 4, tzinfo=UTC) - dt.timedelta(hours=8)
    day = day_ending(Window(local_midnight - dt.timedelta(minutes=5), local_midnight), tz)
    insert_history(mysql, day.start + dt.timedelta(minutes=30), 7)  # local 00:30 = UTC 16:30 the day before
    alert(mysql, Level.ERROR, "x", "", "the local day before", day.start - dt.timedelta(hours=1))

    built = report.build_daily_report(mysql, redis_client, settings, day, tz=tz, run_url="javascript:alert(1)")

    assert built.day == dt.date(2026, 11, 3)
    assert built.data.hours[0] == "00:00" and len(built.data.hours) == 24
    assert built.data.volume.hours[0].hour == "2026-11-02T16:00:00+00:00"
    assert [e.rows for e in built.data.volume.hours][:2] == [7, 0]
    assert built.data.alerts.total == 0
    assert built.data.tasks.total.dispatched == 0 and built.data.tasks.total.success_rate is None
    assert "javascript:" not in built.markdown and 'href="javascript' not in built.html
    assert "no validation runs this day" in built.markdown


def test_the_report_shows_what_the_crawlers_saw_by_reason_and_marketplace(mysql, redis_client, settings, day):
    from crawlops.store import outcomes

    minute = CRAWLED[1].replace(tzinfo=None)
    outcomes.upsert_minutes(mysql, [
        (minute, "search_result", "DE", "answered", "", 60), (minute, "search_result", "DE", "failed", "blocked", 40),
        (minute, "search_result", "US", "answered", "", 90), (minute, "search_result", "US", "empty", "", 10),
        (BEFORE.replace(tzinfo=None), "search_result", "US", "failed", "http_503", 7),  # the day before
    ])  # fmt: skip

    built = build(mysql, redis_client, settings)

    seen = built.data.outcomes
    assert (seen.total, seen.failed_by_reason) == (200, {"blocked": 40})
    assert [(m.marketplace, m.failed, m.empty) for m in seen.markets] == [("DE", {"blocked": 40}, 0), ("US", {}, 10)]
    assert "**What the crawlers saw**: 200 answers; failures by reason: blocked 40" in built.markdown
    assert "highest shares: DE search_result: blocked 40.00%; US search_result: empty 10.00%" in built.markdown
    assert 'id="outcome-table"' in built.html and "<th>blocked</th>" in built.html
    stored = report.ReportData.from_json(json.loads(report.summary_json(built.data)))
    assert stored.outcomes == seen
