"""/crawl-ops-metrics/metrics through the real Airflow API server app, against the real MariaDB
and Redis: after a dispatch, a simulated crawl and the supervision checks, every value is
checked against an independent query of the tables it comes from; the scrape token guards it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from support.clock import inside_the_hour

from crawlops import actions, dispatch, lifecycle, quality, surges, telemetry
from crawlops.alerts import record_check, record_findings
from crawlops.findings import Finding, Level
from crawlops.harness import simulator
from crawlops.model import UTC, Window

TOKEN = "scrape-token-3f9a"  # noqa: S105 - a test's


@pytest.fixture
def scrape(app, monkeypatch):
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    monkeypatch.setenv("CRAWLOPS_METRICS_TOKEN", TOKEN)

    def get() -> dict[str, dict[tuple, float]]:
        with TestClient(app) as client:
            response = client.get("/crawl-ops-metrics/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        return {
            family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
            for family in text_string_to_metric_families(response.text)
        }

    return get


def one(mysql, sql, params=()):
    mysql.commit()
    with mysql.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_the_scrape_needs_the_token(app, monkeypatch):
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        monkeypatch.delenv("CRAWLOPS_METRICS_TOKEN", raising=False)
        off = client.get("/crawl-ops-metrics/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert off.status_code == 403 and "CRAWLOPS_METRICS_TOKEN" in off.json()["detail"]
        monkeypatch.setenv("CRAWLOPS_METRICS_TOKEN", TOKEN)
        assert client.get("/crawl-ops-metrics/metrics").status_code == 401
        wrong = client.get("/crawl-ops-metrics/metrics", headers={"Authorization": "Bearer not-it"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert client.get("/crawl-ops/api/overview").status_code == 401  # the page still wants an Airflow login


def test_values_match_the_tables_after_a_dispatch_a_crawl_and_the_checks(scrape, mysql, redis_client, settings, config):
    now = inside_the_hour(120)  # the scrape's closed hour must be the one written here
    top = now.replace(minute=0, second=0, microsecond=0)
    closed = Window(top - dt.timedelta(hours=1), top)
    config([("search_result", f"kw {i}", "US" if i % 2 else "DE", "hourly", 3) for i in range(6)]
           + [("product_detail", f"B0C12345{i:02d}", "US", "hourly", 1) for i in range(4)])  # fmt: skip
    plan = dispatch.plan_window(mysql, settings, closed, "UTC")
    dispatch.record_plan(mysql, settings, plan, dag_run_id="test")
    dispatch.push_window(mysql, redis_client, settings, closed)
    fleet = simulator.Behaviour(results_per_page=4, fail_rate=0.25, invalid_rate=0.0)
    simulator.crawl(mysql, redis_client, behaviour=fleet, rng=random.Random(3))
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.settle_finished(mysql, redis_client, settings)  # failures to retry tasks, queued again
    own = dataclasses.replace(settings, quality=dataclasses.replace(settings.quality, min_records_per_hour=1))
    for table in ("amazon_search_result", "amazon_product_detail"):
        verdict, _ = quality.check_volume(mysql, table, closed, own)
        quality.record_volume(mysql, table, closed, verdict, own.quality, dag_run_id="test")
    record_check(mysql, "retention", Window(closed.end - dt.timedelta(minutes=5), closed.end), status="unfinished")
    field = telemetry.outcome_field
    pipe = redis_client.pipeline()
    recent = {
        field("search_result", "DE", "answered"): 30,
        field("search_result", "DE", "failed", "blocked"): 10,
        field("search_result", "DE", "failed", "http_error"): 2,
        field("product_detail", "US", "empty"): 5,
    }
    telemetry.count_outcomes(pipe, now - dt.timedelta(minutes=4), recent)
    telemetry.count_outcomes(pipe, now - dt.timedelta(minutes=45), {field("search_result", "US", "answered"): 99})
    telemetry.beat(pipe, "worker-a", {"host": "h1"}, now)
    telemetry.beat(pipe, "worker-b", {"host": "h2"}, now - dt.timedelta(minutes=10))
    pipe.execute()
    surges.fold(mysql, redis_client, now, 60)
    five = Window(closed.end - dt.timedelta(minutes=5), closed.end)
    (acked, _) = record_findings(mysql, [Finding(Level.ERROR, "s", "success_rate", "low", subject="search_result"),
                                         Finding(Level.WARNING, "s", "freshness", "old", subject="search_result/DE")],
                                 window=five)  # fmt: skip
    actions.set_alert_status(mysql, acked, "acknowledged", actor="a", reason="on it")
    mysql.commit()
    airflow_facts(heartbeat_age=75, supervision_age=600)

    got = scrape()

    assert got["crawlops_scrape_error"] == {(): 0.0} and got["crawlops_redis_up"] == {(): 1.0}
    open_tasks = {((("crawl_object", t), ("status", s))): float(n) for t, s, n in one(
        mysql, "SELECT task_type, task_status, COUNT(*) FROM amazon_task_information "
        "WHERE task_status IN ('Pending', 'In Progress') GROUP BY task_type, task_status")}  # fmt: skip
    assert got["crawlops_open_tasks"] == open_tasks and open_tasks
    queued = {}
    for (task_id, task_type) in one(mysql, "SELECT task_id, task_type FROM amazon_task_information "
                                    "WHERE task_status IN ('Pending', 'In Progress')"):  # fmt: skip
        key = (("crawl_object", task_type),)
        queued[key] = queued.get(key, 0.0) + redis_client.scard(task_id)
    assert got["crawlops_queued_elements"] == queued and sum(queued.values()) > 0
    lag = got["crawlops_freshness_lag_seconds"]
    for table, name in (("amazon_search_result", "search_result"), ("amazon_product_detail", "product_detail")):
        for marketplace, newest in one(
            mysql, f"SELECT marketplace, MAX(create_time) FROM {table} GROUP BY marketplace"
        ):
            age = (dt.datetime.now(UTC).replace(tzinfo=None) - newest).total_seconds()
            assert abs(lag[(("crawl_object", name), ("marketplace", marketplace))] - age) < 30
    rollup = one(mysql, "SELECT table_name, row_count FROM amazon_volume_hourly WHERE hour = %s", (closed.naive()[0],))
    names = {"amazon_search_result": "search_result", "amazon_product_detail": "product_detail"}
    assert (
        got["crawlops_hour_rows"] == {(("crawl_object", names[t]),): float(n) for t, n in rollup} and len(rollup) == 2
    )
    settled = one(
        mysql,
        "SELECT task_type, SUM(element_count), SUM(answered_count), SUM(empty_count), SUM(lost_count) "
        "FROM amazon_task_information WHERE settled_at > UTC_TIMESTAMP() - INTERVAL 1 HOUR GROUP BY task_type",
    )
    assert {t for t, *_ in settled} == {"search_result", "product_detail"}
    for task_type, total, answered, empty, lost in settled:
        key = (("crawl_object", task_type),)
        assert got["crawlops_success_rate"][key] == pytest.approx(float(answered) / float(total))
        by_outcome = {dict(k)["outcome"]: v for k, v in got["crawlops_settled_elements_last_hour"].items()
                      if dict(k)["crawl_object"] == task_type}  # fmt: skip
        assert by_outcome["dispatched"] == total and by_outcome["empty"] == empty and by_outcome["lost"] == lost
        assert by_outcome["failed"] == total - answered - lost > 0  # the fleet failed a quarter
    assert got["crawlops_retention_unfinished"] == {(): 1.0}
    assert got["crawlops_check_failing"][(("check", "retention"),)] == 0.0
    raised = dict(one(mysql, "SELECT level, COUNT(*) FROM amazon_alert WHERE created_at >= UTC_TIMESTAMP() - "
                          "INTERVAL 1 HOUR GROUP BY level"))  # fmt: skip
    levels = ("CRITICAL", "ERROR", "WARNING", "INFO")
    assert got["crawlops_alerts_last_hour"] == {(("level", lv),): float(raised.get(lv, 0)) for lv in levels}
    live = one(mysql, "SELECT level, status, COUNT(*) FROM amazon_alert WHERE status IN ('open', 'acknowledged', "
                      "'expected') AND resolved_at IS NULL GROUP BY level, status")  # fmt: skip
    assert got["crawlops_alerts_live"] == {(("level", lv), ("status", st)): float(n) for lv, st, n in live}
    assert {(lv, st) for lv, st, _ in live} >= {("ERROR", "acknowledged"), ("WARNING", "open")}

    assert got["crawlops_dag_last_success_age_seconds"][(("dag_id", "amazon_data_supervision"),)] == pytest.approx(
        600, abs=30
    )
    assert got["crawlops_airflow_heartbeat_age_seconds"][(("component", "scheduler"),)] == pytest.approx(75, abs=30)
    # the crawlers' answers of the last 30 minutes, from amazon_crawl_outcome (the 45-minute-old ones left out)
    answers = {}
    for obj, market, outcome, reason, n in one(
        mysql,
        "SELECT crawl_object, marketplace, outcome, reason, SUM(elements) FROM amazon_crawl_outcome "
        "WHERE minute > UTC_TIMESTAMP() - INTERVAL 30 MINUTE GROUP BY 1, 2, 3, 4",
    ):
        labels = (("crawl_object", obj), ("marketplace", market), ("outcome", outcome), ("reason", reason))
        answers[labels] = float(n)
    seen = got["crawlops_crawl_answers_last_30m"]
    assert {k: v for k, v in seen.items() if v} == answers
    assert answers[(("crawl_object", "search_result"), ("marketplace", "DE"), ("outcome", "failed"),
                    ("reason", "blocked"))] == 10  # fmt: skip
    assert set(seen.values()) - set(answers.values()) <= {0.0}  # answered and empty are always there, 0 or not
    expected: dict[tuple, list[float]] = {}
    for labels, n in answers.items():
        key, outcome = labels[:2], dict(labels)["outcome"]
        good_total = expected.setdefault(key, [0.0, 0.0])
        good_total[0] += n if outcome in ("answered", "empty") else 0
        good_total[1] += n
    rate = got["crawlops_crawl_success_rate_last_30m"]
    assert rate == {k: pytest.approx(good / total) for k, (good, total) in expected.items()} and len(rate) >= 2
    beats = [score for _, score in redis_client.zrange(telemetry.WORKERS_KEY, 0, -1, withscores=True)]
    alive = sum(1 for score in beats if score >= now.timestamp() - settings.crawlers.worker_silence_seconds)
    assert got["crawlops_workers_alive"] == {(): float(alive)} and got["crawlops_workers_seen"] == {(): len(beats)}
    assert len(beats) - alive == 1  # worker-b, silent for ten minutes


def airflow_facts(*, heartbeat_age: int, supervision_age: int) -> None:
    """A scheduler whose newest heartbeat is ``heartbeat_age`` seconds old and a supervision run
    that succeeded ``supervision_age`` seconds ago, in Airflow's metadata database."""
    from airflow.jobs.job import Job
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunType

    now = dt.datetime.now(UTC)
    with create_session() as session:
        session.query(Job).delete()
        session.query(DagRun).filter(DagRun.dag_id == "amazon_data_supervision").delete()
        job = Job(job_type="SchedulerJob")
        job.latest_heartbeat = now - dt.timedelta(seconds=heartbeat_age)
        session.add(job)
        run = DagRun(dag_id="amazon_data_supervision", run_id="metrics-test", run_type=DagRunType.MANUAL,
                     state=DagRunState.SUCCESS)  # fmt: skip
        run.end_date = now - dt.timedelta(seconds=supervision_age)
        session.add(run)
