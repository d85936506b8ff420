"""The supervision DAG end to end, in process (dag.test), against the real MariaDB and Redis."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from crawlops import dispatch
from crawlops.model import UTC, hour_window_starting

pytestmark = pytest.mark.dagrun

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
HOUR = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"
HOURLY = [
    "validate_results",
    "volume_anomaly",
    "schema_drift",
    "completeness",
    "recrawl_incomplete",
    "quarantine_invalid",
]


@pytest.fixture
def dag(airflow_db, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    # A small hour: the volume floor scaled down with the test data.
    monkeypatch.setenv("CRAWLOPS__QUALITY__MIN_RECORDS_PER_HOUR", "100")
    return DagBag(dag_folder=str(DAGS_DIR)).get_dag("amazon_data_supervision")


def run(dag, window_end, **conf):
    """The run whose 5-minute window ends at ``window_end``."""
    dag_run = dag.test(logical_date=window_end, run_conf=conf or None)
    return dag_run.state, {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def crawl_the_hour(mysql, redis_client, settings, config, crawler, *, invalid=0):
    """Dispatch the hour, and let the crawlers answer it inside the hour (``invalid`` rows broken)."""
    config([("search_result", f"keyword {i}", "US", "hourly", 5) for i in range(30)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, HOUR, "UTC"))
    dispatch.push_window(mysql, redis_client, settings, HOUR)
    crawler.succeed(TASK, crawler.take(TASK, 150))
    with mysql.cursor() as cur:
        cur.execute("UPDATE amazon_search_result SET create_time = %s + INTERVAL id SECOND", (HOUR.naive()[0],))
        if invalid:
            cur.execute("UPDATE amazon_search_result SET price = -1 ORDER BY id LIMIT %s", (invalid,))
    mysql.commit()


def rows(mysql, sql, params=None):
    with mysql.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_hour_close_runs_every_check_and_a_clean_hour_passes(dag, mysql, redis_client, settings, config, crawler):
    crawl_the_hour(mysql, redis_client, settings, config, crawler)

    state, tis = run(dag, HOUR.end)

    assert state == "success"
    assert {t: tis[t] for t in ["system_check", "task_health", *HOURLY, "summarize"]} == dict.fromkeys(
        ["system_check", "task_health", *HOURLY, "summarize"], "success"
    )
    assert tis["daily_report"] == tis["retention"] == "skipped"  # the day does not close with this run
    assert rows(mysql, "SELECT suite_name, success, row_count FROM amazon_validation_run") == (
        ("amazon_search_result", 1, 150),
    )
    checks = dict(rows(mysql, "SELECT check_name, status FROM amazon_check_run"))
    assert checks["suite:amazon_search_result"] == "pass"
    assert checks["quarantine_invalid"] == "pass"
    # the volume check keeps the count it judged in the rollup the Crawl Ops page draws
    assert rows(mysql, "SELECT table_name, hour, row_count, history_points, anomalous FROM amazon_volume_hourly") == (
        ("amazon_search_result", HOUR.naive()[0], 150, 0, None),
    )


def test_a_dirty_hour_fails_its_suite_and_is_repaired(dag, mysql, redis_client, settings, config, crawler):
    crawl_the_hour(mysql, redis_client, settings, config, crawler, invalid=6)

    state, tis = run(dag, HOUR.end)

    assert tis["validate_results"] == "failed"  # red in the grid: the hour's data failed its suite
    assert tis["quarantine_invalid"] == "success" and state == "success"
    assert rows(mysql, "SELECT COUNT(*) FROM amazon_search_result_quarantine WHERE failed_rule = 'price_non_negative'")[
        0
    ] == (6,)
    assert rows(mysql, "SELECT COUNT(*) FROM amazon_search_result") == ((144,),)
    levels = rows(mysql, "SELECT level, check_name FROM amazon_alert ORDER BY level, check_name")
    assert ("ERROR", "invalid_data") in levels
    assert ("ERROR", "price_non_negative") in levels  # the suite names the rule that failed


def test_rows_lacking_a_required_field_are_recrawled_once_by_the_hour_close(
    dag, mysql, redis_client, settings, config, crawler
):
    crawl_the_hour(mysql, redis_client, settings, config, crawler)
    with mysql.cursor() as cur:  # 4 elements answered without a title
        cur.execute(
            "UPDATE amazon_search_result SET title = NULL WHERE (keyword, page) IN "
            "(('keyword 0', 1), ('keyword 0', 2), ('keyword 1', 1), ('keyword 2', 5))"
        )
        incomplete = cur.rowcount
    mysql.commit()

    _, tis = run(dag, HOUR.end)

    assert tis["validate_results"] == "failed" and tis["recrawl_incomplete"] == "success"  # title_not_null failed
    retry = rows(mysql, "SELECT task_source, element_count, task_status FROM amazon_task_information "
                 "WHERE task_id = %s", (TASK + "_fail",))  # fmt: skip
    assert retry == ((TASK, incomplete, "Pending"),)
    assert redis_client.scard(TASK + "_fail") == incomplete
    checks = dict(rows(mysql, "SELECT check_name, status FROM amazon_check_run"))
    assert checks["recrawl_incomplete"] == "repaired"

    run(dag, HOUR.end)  # the hour re-checked: nothing is sent twice
    assert redis_client.scard(TASK + "_fail") == incomplete
    assert rows(mysql, "SELECT COUNT(*) FROM amazon_task_element WHERE task_id = %s", (TASK + "_fail",)) == (
        (incomplete,),
    )


def test_a_run_inside_the_hour_checks_health_only(dag, mysql, redis_client, settings, config, crawler):
    crawl_the_hour(mysql, redis_client, settings, config, crawler)

    state, tis = run(dag, HOUR.end + dt.timedelta(minutes=5))

    assert state == "success"
    assert tis["task_health"] == "success"
    assert {tis[t] for t in HOURLY} == {"skipped"}
    assert rows(mysql, "SELECT COUNT(*) FROM amazon_validation_run") == ((0,),)


def test_rerunning_a_window_recomputes_the_same_rows(dag, mysql, redis_client, settings, config, crawler):
    crawl_the_hour(mysql, redis_client, settings, config, crawler, invalid=3)
    tables = [
        "amazon_validation_run",
        "amazon_check_run",
        "amazon_alert",
        "amazon_search_result_quarantine",
        "amazon_volume_hourly",
    ]

    run(dag, HOUR.end)
    first = {t: rows(mysql, f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables}
    run(dag, HOUR.end)
    second = {t: rows(mysql, f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables}

    assert first == second
    assert first["amazon_search_result_quarantine"] == 3
    assert first["amazon_volume_hourly"] == 1


def test_dry_run_repairs_nothing(dag, mysql, redis_client, settings, config, crawler):
    crawl_the_hour(mysql, redis_client, settings, config, crawler, invalid=2)

    run(dag, HOUR.end, dry_run=True)

    assert rows(mysql, "SELECT COUNT(*) FROM amazon_search_result_quarantine") == ((0,),)
    assert rows(mysql, "SELECT COUNT(*) FROM amazon_search_result") == ((150,),)


def test_unreachable_redis_fails_the_run_with_a_critical_alert(dag, mysql, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRAWL_REDIS", '{"conn_type": "redis", "host": "127.0.0.1", "port": 1, "extra": {"db": 15}}'
    )
    for task in dag.tasks:
        task.retries = 0

    state, tis = run(dag, HOUR.end)

    assert state == "failed"
    assert tis["system_check"] == "failed"
    assert set(rows(mysql, "SELECT level, check_name, subject FROM amazon_alert")) == {
        ("CRITICAL", "redis_reachable", ""),
        # The failure callbacks name each task that failed for good.
        ("ERROR", "task_failed", "amazon_data_supervision.system_check"),
        ("ERROR", "task_failed", "amazon_data_supervision.summarize"),
    }


def test_the_run_closing_a_day_writes_stores_and_sends_the_report(
    dag, mysql, redis_client, settings, config, crawler, dingtalk, monkeypatch, tmp_path
):
    import json

    monkeypatch.setenv("CRAWLOPS__REPORT__REPORTS_DIR", json.dumps(str(tmp_path)))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRAWL_DINGTALK",
        json.dumps({"conn_type": "http", "host": dingtalk.base_url, "password": dingtalk.token,
                    "extra": {"secret": dingtalk.secret}}),
    )  # fmt: skip
    crawl_the_hour(mysql, redis_client, settings, config, crawler)
    midnight = dt.datetime(2026, 11, 4, tzinfo=UTC)

    state, tis = run(dag, midnight)
    run(dag, midnight)  # re-running the day rewrites its report

    assert state == "success" and tis["daily_report"] == tis["retention"] == "success"
    (html_file,) = tmp_path.glob("daily-report-2026-11-03.html")
    html = html_file.read_text()
    for chart in ("chart-volume", "chart-quality", "chart-alerts"):
        assert f'id="{chart}"' in html
    assert html.count("<rect") >= 24  # a bar per hour at least
    assert "<script src" not in html and "https://" not in html
    assert rows(mysql, "SELECT report_date, LENGTH(html) > 1000 FROM amazon_daily_report") == (
        (dt.date(2026, 11, 3), 1),
    )
    reports = [m for m in dingtalk.messages if "2026-11-03" in m["markdown"]["title"]]
    assert len(reports) == 2 and "150" in reports[0]["markdown"]["text"].replace(",", "")


def test_the_run_closing_a_day_purges_what_is_past_retention_and_a_dry_run_only_counts_it(dag, mysql):
    import json

    midnight = dt.datetime(2026, 11, 4, tzinfo=UTC)
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_alert (level, source, check_name, subject, title, fingerprint, window_start, "
            "window_end, created_at) VALUES ('INFO', 's', 'old_check', %s, 't', %s, %s, %s, %s)",
            [(name, name * 40, at, at, at) for name, at in (("a", dt.datetime(2026, 8, 5)),  # 91 days before
                                                            ("b", dt.datetime(2026, 8, 7)))],  # 89 days before
        )  # fmt: skip
    mysql.commit()

    _, dry = run(dag, midnight, dry_run=True)
    assert dry["retention"] == "success"
    assert rows(mysql, "SELECT subject FROM amazon_alert WHERE check_name = 'old_check' ORDER BY subject") == (
        ("a",), ("b",))  # fmt: skip
    ((status, details),) = rows(mysql, "SELECT status, details FROM amazon_check_run WHERE check_name = 'retention'")
    counted = json.loads(details)
    assert status == "pass" and counted["dry_run"] is True and counted["tables"]["amazon_alert"]["rows"] == 1

    _, real = run(dag, midnight, dry_run=False)  # the same logical date: its run again, with this conf

    assert real["retention"] == "success"
    assert rows(mysql, "SELECT subject FROM amazon_alert WHERE check_name = 'old_check'") == (("b",),)
    ((window_start, window_end, details),) = rows(
        mysql, "SELECT window_start, window_end, details FROM amazon_check_run WHERE check_name = 'retention'"
    )  # one row per day: the real run rewrote the dry run's
    deleted = json.loads(details)
    assert (window_start, window_end) == (dt.datetime(2026, 11, 3), dt.datetime(2026, 11, 4))
    assert deleted["dry_run"] is False and deleted["now"] == "2026-11-04T00:00:00"
    assert deleted["tables"]["amazon_alert"] == {**deleted["tables"]["amazon_alert"], "rows": 1, "finished": True}
    assert deleted["tables"]["amazon_search_result"]["cutoff"] is None  # the crawlers' table: off


@pytest.fixture
def outage_state(airflow_db):
    from airflow.models.variable import Variable

    Variable.delete("crawlops_outage_state")
    yield lambda: Variable.get("crawlops_outage_state", default_var=None)
    Variable.delete("crawlops_outage_state")


def dingtalk_conn(monkeypatch, dingtalk):
    import json

    monkeypatch.setenv(
        "AIRFLOW_CONN_CRAWL_DINGTALK",
        json.dumps({"conn_type": "http", "host": dingtalk.base_url, "password": dingtalk.token,
                    "extra": {"secret": dingtalk.secret}}),
    )  # fmt: skip


def one_quick_retry(dag):
    """system_check retries once at once (its first attempt is what is tested); the rest never."""
    for task in dag.tasks:
        task.retries = 1 if task.task_id == "system_check" else 0
        task.retry_delay = dt.timedelta(0)
        task.retry_exponential_backoff = False


def test_mysql_down_is_told_to_dingtalk_on_the_first_attempt_without_mysql(
    dag, mysql, dingtalk, monkeypatch, outage_state
):
    import json
    import os

    dingtalk_conn(monkeypatch, dingtalk)
    working = os.environ["AIRFLOW_CONN_CRAWL_MYSQL"]
    down = json.loads(working) | {"port": 1}
    monkeypatch.setenv("AIRFLOW_CONN_CRAWL_MYSQL", json.dumps(down))

    one_quick_retry(dag)

    state, tis = run(dag, HOUR.end)

    assert state == "failed" and tis["system_check"] == "failed"
    (message,) = dingtalk.messages  # signed: the fake refuses a wrong signature
    assert "[CRITICAL] MySQL unreachable" in message["markdown"]["title"]
    assert "OperationalError" in message["markdown"]["text"]
    outage = json.loads(outage_state())["MySQL"]
    # Sent by the first failed check (system_check's first attempt); its retry and the
    # failure callbacks found it already told.
    assert (outage["first_sent_at_check"], outage["messages"]) == (1, 1) and outage["checks"] >= 2

    run(dag, HOUR.end + dt.timedelta(minutes=5))  # still down: deduplicated, no second message
    assert len(dingtalk.messages) == 1 and json.loads(outage_state())["MySQL"]["checks"] >= 2
    assert rows(mysql, "SELECT COUNT(*) FROM amazon_alert") == ((0,),)  # nothing could be stored

    monkeypatch.setenv("AIRFLOW_CONN_CRAWL_MYSQL", working)  # back
    run(dag, HOUR.end + dt.timedelta(minutes=10))

    recorded = rows(mysql, "SELECT level, check_name, subject, delivery_status FROM amazon_alert ORDER BY id")
    assert recorded[:2] == (
        ("CRITICAL", "outage", "MySQL", "sent"),  # recorded once back, not sent twice
        ("WARNING", "outage_recovered", "MySQL", "sent"),
    )
    assert [m["markdown"]["title"] for m in dingtalk.messages[1:]] and "MySQL" not in json.loads(outage_state())
    assert any("is back after" in m["markdown"]["text"] for m in dingtalk.messages[1:])


def test_redis_down_is_delivered_on_the_first_attempt(dag, mysql, dingtalk, monkeypatch):
    dingtalk_conn(monkeypatch, dingtalk)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRAWL_REDIS", '{"conn_type": "redis", "host": "127.0.0.1", "port": 1, "extra": {"db": 15}}'
    )

    one_quick_retry(dag)

    _, tis = run(dag, HOUR.end)

    assert tis["system_check"] == "failed"
    texts = [m["markdown"]["text"] for m in dingtalk.messages]
    assert sum("CRITICAL" in t and "Redis unreachable" in t for t in texts) == 1  # once, though checked twice
    # Delivered by the attempt that found it (one try), not held until the run's end.
    assert rows(mysql, "SELECT level, delivery_status, delivery_attempts FROM amazon_alert "
                       "WHERE check_name = 'redis_reachable'") == (("CRITICAL", "sent", 1),)  # fmt: skip


def test_a_rerun_after_repair_reads_repaired_and_resolves_what_no_longer_holds(
    dag, mysql, redis_client, settings, config, crawler
):
    from crawlops import dashboard, report
    from crawlops.model import Window

    crawl_the_hour(mysql, redis_client, settings, config, crawler, invalid=6)
    run(dag, HOUR.end)  # fails its suite; quarantine moves the 6 rows

    _, tis = run(dag, HOUR.end)  # an operator re-checks the hour: the data is clean now

    assert tis["validate_results"] == "success"
    assert rows(mysql, "SELECT success, first_success, verdict, quality_score FROM amazon_validation_run") == (
        (1, 0, "repaired", 1.0),
    )
    # The first run's findings that no longer hold are resolved, not current.
    assert set(
        rows(
            mysql,
            "SELECT check_name, resolved_at IS NOT NULL FROM amazon_alert "
            "WHERE check_name IN ('price_non_negative', 'invalid_data')",
        )
    ) == {
        ("price_non_negative", 1),
        ("invalid_data", 1),
    }
    day = Window(HOUR.start.replace(hour=0), HOUR.start.replace(hour=0) + dt.timedelta(days=1))
    built = report.build_daily_report(mysql, redis_client, settings, day, tz="UTC")
    quality = built.data.quality
    assert (quality.passed, quality.repaired, quality.failed) == (0, 1, 0)
    assert "1 repaired" in built.markdown
    span = dashboard.HourRange.of(HOUR.start, HOUR.end)
    (strip,) = [s for s in dashboard.quality_by_hour(mysql, span)["strips"] if s["kind"] == "suite"]
    assert strip["cells"][0]["status"] == "repaired" and strip["cells"][0]["quality_score"] == 1.0


def test_a_low_quality_hour_is_an_error_with_its_score(dag, mysql, redis_client, settings, config, crawler):
    crawl_the_hour(mysql, redis_client, settings, config, crawler, invalid=30)  # 120 of 150 good: 0.8

    run(dag, HOUR.end)

    assert rows(mysql, "SELECT quality_score FROM amazon_validation_run") == ((0.8,),)
    assert rows(mysql, "SELECT level FROM amazon_alert WHERE check_name = 'data_quality'") == (("ERROR",),)


def test_the_midnight_report_includes_the_hour_that_closes_the_day(
    dag, mysql, redis_client, settings, config, crawler, monkeypatch, tmp_path
):
    import json

    monkeypatch.setenv("CRAWLOPS__REPORT__REPORTS_DIR", json.dumps(str(tmp_path)))
    last = hour_window_starting(dt.datetime(2026, 11, 3, 23, tzinfo=UTC), "UTC")
    config([("search_result", f"keyword {i}", "US", "hourly", 5) for i in range(30)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, last, "UTC"))
    dispatch.push_window(mysql, redis_client, settings, last)
    task_id = f"search_result_{last.epoch}_hourly"
    crawler.succeed(task_id, crawler.take(task_id, 150))
    with mysql.cursor() as cur:
        cur.execute("UPDATE amazon_search_result SET create_time = %s + INTERVAL id SECOND", (last.naive()[0],))
    mysql.commit()

    _, tis = run(dag, last.end)  # the real task order of the run that closes the day

    assert tis["validate_results"] == "success" and tis["daily_report"] == "success"
    (stored,) = rows(mysql, "SELECT summary FROM amazon_daily_report")
    summary = json.loads(stored[0])
    # 23:00 is validated (the other 23 hours had no crawl and no checks in this test)
    (suite,) = summary["quality"]["suites"].values()
    assert suite["hours"][23]["verdict"] == "passed" and summary["quality"]["passed"] == 1


def test_check_hour_reruns_that_hours_checks_from_the_form(dag, mysql, redis_client, settings, config, crawler):
    crawl_the_hour(mysql, redis_client, settings, config, crawler)

    # Any logical date: the form's hour decides which hour is checked.
    state, tis = run(dag, HOUR.end + dt.timedelta(hours=7, minutes=35), check_hour=HOUR.start.isoformat())

    assert {t: tis[t] for t in HOURLY} == dict.fromkeys(HOURLY, "success") and state == "success"
    assert rows(mysql, "SELECT window_start, window_end, verdict FROM amazon_validation_run") == (
        (HOUR.naive()[0], HOUR.naive()[1], "passed"),
    )


def test_a_report_that_could_not_be_sent_is_sent_by_a_later_run(
    dag, mysql, redis_client, settings, config, crawler, dingtalk, monkeypatch, tmp_path
):
    import json

    monkeypatch.setenv("CRAWLOPS__REPORT__REPORTS_DIR", json.dumps(str(tmp_path)))
    dingtalk_conn(monkeypatch, dingtalk)
    crawl_the_hour(mysql, redis_client, settings, config, crawler)
    midnight = dt.datetime(2026, 11, 4, tzinfo=UTC)
    dingtalk.mode = "http500"  # DingTalk is down at midnight

    run(dag, midnight)

    assert rows(mysql, "SELECT status FROM amazon_check_run WHERE check_name = 'daily_report'") == (("unsent",),)
    assert rows(mysql, "SELECT sent_at IS NULL, send_error FROM amazon_daily_report") == ((1, "HTTP 500"),)

    dingtalk.mode = "ok"
    run(dag, midnight + dt.timedelta(minutes=5))  # any later run

    assert any("2026-11-03" in m["markdown"]["title"] for m in dingtalk.messages)
    assert rows(mysql, "SELECT sent_at IS NOT NULL FROM amazon_daily_report") == ((1,),)
    assert rows(mysql, "SELECT status FROM amazon_check_run WHERE check_name = 'daily_report'") == (("pass",),)


# -- Assets for validated hours: a consumer DAG (examples/) scheduled on the table's asset --------

CONSUMER = Path(__file__).resolve().parents[2] / "examples" / "validated_hour_consumer.py"
SEARCH_HOURS = "crawlops.validated_hours.amazon_search_result"


@pytest.fixture
def consumer(dag):
    """The example consumer registered beside the package's DAGs; asset events and queued
    consumer runs of earlier tests forgotten."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.asset import AssetDagRunQueue, AssetEvent
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, update

    bag = DagBag(dag_folder=str(CONSUMER))
    assert not bag.import_errors and list(bag.dags) == ["example_validated_search_hours"]
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == "example_validated_search_hours").values(
            is_paused=False))  # fmt: skip
        session.execute(delete(AssetDagRunQueue))
        session.execute(delete(AssetEvent))
    return bag.dags["example_validated_search_hours"]


def published() -> tuple[list[dict], list[str]]:
    """(the extras of the search table's validated-hour events, the DAG ids queued to run on them)."""
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == SEARCH_HOURS)
        ).all()
        queued = session.scalars(select(AssetDagRunQueue.target_dag_id)).all()
        return [dict(e.extra) for e in events], list(queued)


def test_a_passed_hour_is_an_asset_event_that_queues_the_consumer(
    dag, consumer, mysql, redis_client, settings, config, crawler
):
    crawl_the_hour(mysql, redis_client, settings, config, crawler)

    _, tis = run(dag, HOUR.end)

    assert tis["validate_results"] == "success"
    events, queued = published()
    assert events == [{"table": "amazon_search_result", "crawl_object": "search_result",
                       "hour_start": HOUR.start.isoformat(), "hour_end": HOUR.end.isoformat(),
                       "verdict": "passed", "quality_score": 1.0, "rows": 150}]  # fmt: skip
    assert queued == ["example_validated_search_hours"]  # the scheduler's trigger for the consumer's next run


def test_a_failed_hour_emits_nothing_and_its_repair_does(dag, consumer, mysql, redis_client, settings, config, crawler):
    crawl_the_hour(mysql, redis_client, settings, config, crawler, invalid=6)

    _, tis = run(dag, HOUR.end)  # fails its suite; quarantine moves the 6 rows

    assert tis["validate_results"] == "failed"
    assert published() == ([], [])  # the consumer is not triggered by a failed hour

    _, tis = run(dag, HOUR.end)  # re-checked after the repair

    events, queued = published()
    assert [(e["verdict"], e["rows"], e["hour_start"]) for e in events] == [("repaired", 144, HOUR.start.isoformat())]
    assert queued == ["example_validated_search_hours"]
