"""The Crawl Ops page through the real Airflow API server app, against the real MariaDB and Redis.

The app is Airflow's own (``airflow.api_fastapi.app.create_app``) with this repository's
plugins folder, so the mount, the login and the plugin registration are the production ones.
Every number is checked against an independent query of the tables (or SCARD in Redis).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import re
import sys

import pytest

from crawlops import dispatch, lifecycle, quality, report
from crawlops.alerts import record_check, record_findings
from crawlops.findings import Finding, Level
from crawlops.harness import simulator
from crawlops.model import UTC, Window, hour_window_starting

TZ = "UTC"
H0 = dt.datetime(2026, 10, 5, 6, tzinfo=UTC)
HOURS = [H0 + dt.timedelta(hours=k) for k in range(6)]
RANGE = {"start": H0.isoformat(), "end": (H0 + dt.timedelta(hours=6)).isoformat()}
RUN = "scheduled__2026-10-05T07:00:00+00:00"
ROUTES = ["/", "/openapi.json", "/api/overview", "/api/tasks/hourly", "/api/quality/hourly", "/api/volume/hourly",
          "/api/alerts", "/api/report/latest", "/report/latest", "/api/story", "/api/outcomes",
          "/api/fleet", "/api/actions", "/api/mutes"]  # fmt: skip
# POST, for users who may edit the crawl DAGs
ACTIONS = {"/api/actions/redrive", "/api/actions/release", "/api/actions/rerun", "/api/alerts/{alert_id}/{verb}",
           "/api/mutes", "/api/mutes/{mute_id}/end"}  # fmt: skip


@pytest.fixture
def client(app, token):
    """A browser-like client: the UI's session cookie of a read-only (VIEWER) user."""
    from fastapi.testclient import TestClient

    with TestClient(app, cookies={"_token": token("VIEWER")}) as c:
        yield c


def get(client, path, **params):
    response = client.get(f"/crawl-ops{path}", params={**RANGE, **params})
    assert response.status_code == 200, response.text
    return response.json()


def one(mysql, sql, params=()):
    with mysql.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def all_rows(mysql, sql, params=()):
    with mysql.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


# ---------------------------------------------------------------------------------------
# Seeded operations: four crawled hours with failures, retries and Dead tasks, one open hour


def operate(mysql, r, settings, config):
    config([("search_result", f"keyword {i}", "US", "hourly", 3) for i in range(4)])
    tight = dataclasses.replace(settings, dispatch=dataclasses.replace(settings.dispatch, retry_limit=1))
    rng = random.Random(5)
    fleet = simulator.Behaviour(results_per_page=2, fail_rate=0.3, invalid_rate=0.0)
    for hour in HOURS[:5]:
        window = hour_window_starting(hour, TZ)
        dispatch.record_plan(mysql, tight, dispatch.plan_window(mysql, tight, window, TZ))
        dispatch.push_window(mysql, r, tight, window)
        if hour == HOURS[4]:
            break  # the last hour is dispatched and not crawled yet: open, queued in Redis
        clean = dataclasses.replace(fleet, fail_rate=0.0) if hour == HOURS[0] else fleet  # a clean first hour
        simulator.crawl(mysql, r, behaviour=clean, rng=rng, clock=lambda h=hour: h + dt.timedelta(minutes=20))
        lifecycle.sync_statuses(mysql, r, tight)
        lifecycle.retry_failures(mysql, r, tight)
    simulator.crawl(
        mysql, r, behaviour=fleet, rng=rng, max_elements=3, clock=lambda: HOURS[4] + dt.timedelta(minutes=5)
    )
    lifecycle.sync_statuses(mysql, r, tight)


def insert_validation(mysql, hour, *, failures=()):
    outcomes = [{"name": "row_count_in_range", "success": True}] + [{"name": n, "success": False} for n in failures]
    with mysql.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_validation_run (suite_name, table_name, window_start, window_end, success, "
            "evaluated, failed, row_count, results, dag_run_id) "
            "VALUES ('amazon_search_result', 'amazon_search_result', %s, %s, %s, %s, %s, 40, %s, %s)",
            (hour.replace(tzinfo=None), (hour + dt.timedelta(hours=1)).replace(tzinfo=None), not failures,
             len(outcomes), len(failures), json.dumps({"outcomes": outcomes}), RUN),
        )  # fmt: skip
    mysql.commit()


@pytest.fixture
def seeded(mysql, redis_client, settings, config):
    operate(mysql, redis_client, settings, config)
    insert_validation(mysql, HOURS[0])
    insert_validation(mysql, HOURS[1], failures=("price_non_negative", "asin_format"))
    insert_validation(mysql, HOURS[2])
    insert_validation(mysql, HOURS[0] - dt.timedelta(hours=1), failures=("outside the range",))
    for hour, status, findings in ((HOURS[0], "pass", 0), (HOURS[1], "fail", 1), (HOURS[2], "pass", 0)):
        record_check(mysql, "volume_anomaly", hour_window_starting(hour, TZ), status=status, findings=findings,
                     dag_run_id=RUN)  # fmt: skip
    record_check(mysql, "suite:amazon_search_result", hour_window_starting(HOURS[1], TZ), status="fail")
    record_check(
        mysql, "quarantine_invalid", hour_window_starting(HOURS[2], TZ), status="fail", findings=1, dag_run_id=RUN
    )
    record_check(mysql, "completeness", hour_window_starting(HOURS[2], TZ), status="pass", dag_run_id="rerun")
    five = Window(HOURS[1], HOURS[1] + dt.timedelta(minutes=5))
    record_check(mysql, "task_health", five, status="fail", findings=2)  # a 5-minute check: not an hourly strip
    for hour in HOURS[:2]:  # the volume check judged the first two hours (their rollup rows)
        window = hour_window_starting(hour, TZ)
        verdict, _ = quality.check_volume(mysql, "amazon_search_result", window, settings)
        verdict = dataclasses.replace(verdict, points=7, mean=30.0, std=5.0, z=0.0, anomalous=hour == HOURS[1],
                                      direction="drop" if hour == HOURS[1] else None)  # fmt: skip
        quality.record_volume(mysql, "amazon_search_result", window, verdict, settings.quality, dag_run_id=RUN)
    findings = [
        (Level.ERROR, "volume_anomaly", "amazon_search_result", "fewer rows than usual", HOURS[1], 10),
        (Level.CRITICAL, "task_dead", "search_result_x", "a task is Dead", HOURS[2], 30),
        (Level.WARNING, "missing_data", "t1", "<b>missing</b> rows", HOURS[2], 20),
        (Level.INFO, "invalid_data", "t2", "info", HOURS[3], 40),
        (Level.ERROR, "invalid_data", "amazon_search_result", "3 rows quarantined", HOURS[2], 50),
        # what the first run of completeness found in HOURS[2]; the re-run ("rerun") passed
        (Level.WARNING, "missing_data", "search_result_y", "stale: elements without results", HOURS[2], 15),
        (
            Level.ERROR,
            "volume_anomaly",
            "amazon_search_result",
            "before the range",
            HOURS[0] - dt.timedelta(hours=3),
            0,
        ),
    ]
    for level, check, subject, title, hour, minutes in findings:
        finding = Finding(level, "amazon_data_supervision", check, title, subject=subject)
        if check == "task_dead":  # the dispatch DAG's finding (source), in the hour completeness checked
            finding = dataclasses.replace(finding, source="amazon_task_dispatch")
        (alert_id,) = record_findings(mysql, [finding], window=hour_window_starting(hour, TZ), dag_run_id=RUN)
        with mysql.cursor() as cur:
            cur.execute("UPDATE amazon_alert SET created_at = %s, last_seen_at = %s WHERE id = %s",
                        (*[(hour + dt.timedelta(minutes=minutes)).replace(tzinfo=None)] * 2, alert_id))  # fmt: skip
    mysql.commit()


# ---------------------------------------------------------------------------------------
# Login


def test_nothing_is_served_without_an_airflow_session(app, token, mysql):
    from fastapi.testclient import TestClient

    anonymous = TestClient(app)
    for route in ROUTES:
        response = anonymous.get(f"/crawl-ops{route}")
        assert response.status_code == 401, route
        assert response.json() == {"detail": "Not authenticated"}
        forged = anonymous.get(f"/crawl-ops{route}", cookies={"_token": "not-a-jwt"})
        assert forged.status_code == 403, route
        stranger = anonymous.get(f"/crawl-ops{route}", headers={"Authorization": f"Bearer {token(None)}"})
        assert stranger.status_code == 403, route  # logged in, but may not read the crawl DAGs' runs
        assert "runs of amazon_task_dispatch" in stranger.json()["detail"]
    viewer = anonymous.get("/crawl-ops/api/overview", headers={"Authorization": f"Bearer {token('VIEWER')}"})
    assert viewer.status_code == 200  # an API token works as well as the UI's cookie
    for public_docs in ("/docs", "/redoc", "/docs/oauth2-redirect"):  # FastAPI's defaults would skip the login
        assert anonymous.get(f"/crawl-ops{public_docs}").status_code == 404


def test_the_plugin_is_registered_in_the_navigation_and_mounted(client, token):
    plugins = client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {token('ADMIN')}"}).json()["plugins"]
    ours = [p for p in plugins if p["name"] == "crawl_ops"]
    assert len(ours) == 1  # and no module of the crawlops_airflow package loaded as a plugin file
    assert ours[0]["fastapi_apps"] == [{"app": "fastapi.applications.FastAPI", "url_prefix": "/crawl-ops",
                                        "name": "Crawl Ops"}]  # fmt: skip
    (view,) = ours[0]["external_views"]
    assert view["destination"] == "nav" and view["url_route"] == "crawl-ops" and view["href"] == "crawl-ops/"
    # .airflowignore keeps the plugin manager from importing the package's files as top-level modules
    files = {n: getattr(m, "__file__", None) or "" for n, m in list(sys.modules.items())}
    stray = [n for n, f in files.items() if "/plugins/crawlops_airflow/" in f and not n.startswith("crawlops_airflow")]
    assert stray == []


def test_the_endpoints_are_documented_in_openapi(client):
    schema = client.get("/crawl-ops/openapi.json").json()
    paths = schema["paths"]
    assert set(paths) == {r for r in ROUTES if r not in ("/", "/openapi.json")} | ACTIONS
    assert all("post" in paths[a] for a in ACTIONS)
    assert {a for a in ACTIONS if set(paths[a]) != {"post"}} == {"/api/mutes"}  # GET lists them
    for path in ("/api/overview", "/api/tasks/hourly", "/api/quality/hourly", "/api/volume/hourly", "/api/alerts"):
        get_op = paths[path]["get"]
        assert {p["name"] for p in get_op["parameters"]} >= {"start", "end"}
        assert "$ref" in get_op["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(schema["components"]["schemas"]) >= {"Overview", "TasksByHour", "QualityByHour", "VolumeByHour",
                                                     "Alerts", "LatestReport"}  # fmt: skip


# ---------------------------------------------------------------------------------------
# Numbers against the tables


def test_overview_counts_queues_in_redis_and_tasks_per_status(client, mysql, redis_client, seeded):
    data = get(client, "/api/overview")

    open_tasks = all_rows(mysql, "SELECT task_id, task_type FROM amazon_task_information "
                                 "WHERE task_status IN ('Pending', 'In Progress')")  # fmt: skip
    assert open_tasks  # the uncrawled hour
    queued = sum(redis_client.scard(t) for t, _ in open_tasks)
    failed = sum(redis_client.scard(f"{t}_fail") for t, _ in open_tasks)
    assert data["queues"] == {"search_result": {"open_tasks": len(open_tasks), "queued": queued,
                                                "failed_waiting": failed}}  # fmt: skip
    assert data["queued_total"] == queued > 0 and data["redis_error"] is None
    start, end = (h.replace(tzinfo=None) for h in (H0, H0 + dt.timedelta(hours=6)))
    in_range = "WHERE interval_start >= %s AND interval_start < %s GROUP BY 1"
    expected = dict(
        all_rows(mysql, f"SELECT task_status, COUNT(*) FROM amazon_task_information {in_range}", (start, end))
    )
    assert {s: n for s, n in data["status_counts"].items() if n} == expected
    assert {"Completed", "Dead"} <= set(expected)
    assert data["tasks_total"] == sum(expected.values())


def test_tasks_per_hour_put_each_task_in_one_outcome(client, mysql, seeded):
    data = get(client, "/api/tasks/hourly")

    assert data["hours"] == [h.isoformat().replace("+00:00", "Z") for h in HOURS]
    assert data["outcomes"] == ["completed", "retried", "failed", "dead", "open"]
    for i, hour in enumerate(HOURS):
        where, params = "interval_start = %s", (hour.replace(tzinfo=None),)

        def count(condition, where=where, params=params):
            return one(mysql, f"SELECT COUNT(*) FROM amazon_task_information t WHERE {where} AND {condition}", params)[
                0
            ]

        has_retry = "EXISTS (SELECT 1 FROM amazon_task_information r WHERE r.task_id = CONCAT(t.task_id, '_fail'))"
        assert data["series"]["completed"][i] == count("task_status = 'Completed'")
        assert data["series"]["retried"][i] == count(f"task_status = 'Failed' AND {has_retry}")
        assert data["series"]["failed"][i] == count(f"task_status = 'Failed' AND NOT {has_retry}")
        assert data["series"]["dead"][i] == count("task_status = 'Dead'")
        assert data["series"]["open"][i] == count("task_status IN ('Pending', 'In Progress')")
        assert sum(data["series"][o][i] for o in data["outcomes"]) == count("1")
    totals = data["totals"]
    assert totals["retried"] > 0 and totals["dead"] > 0 and totals["completed"] > 0 and totals["open"] > 0
    assert sum(totals.values()) == one(mysql, "SELECT COUNT(*) FROM amazon_task_information")[0]


def test_quality_strips_show_each_hour_and_what_failed(client, seeded):
    data = get(client, "/api/quality/hourly")

    strips = {s["name"]: s for s in data["strips"]}
    # suites first; no 5-minute or suite: rows
    assert list(strips) == ["amazon_search_result", "completeness", "quarantine_invalid", "volume_anomaly"]
    suite = strips["amazon_search_result"]
    assert suite["kind"] == "suite"
    assert [c and c["status"] for c in suite["cells"]] == ["pass", "fail", "pass", None, None, None]
    assert suite["cells"][1]["failures"] == ["price_non_negative", "asin_format"]
    assert suite["cells"][1]["failed"] == 2 and suite["cells"][1]["evaluated"] == 3
    assert (
        suite["cells"][1]["run"] == f"dags/amazon_data_supervision/runs/{RUN.replace(':', '%3A').replace('+', '%2B')}"
    )
    assert (suite["passed"], suite["failed"], suite["not_run"]) == (2, 1, 3)
    volume = strips["volume_anomaly"]
    assert [c and c["status"] for c in volume["cells"]] == ["pass", "fail", "pass", None, None, None]
    assert volume["cells"][1]["failures"] == ["fewer rows than usual"]  # the finding stored for that check and hour
    quarantine = strips["quarantine_invalid"]
    assert [c and c["status"] for c in quarantine["cells"]] == [None, None, "fail", None, None, None]
    assert quarantine["cells"][2]["failures"] == ["3 rows quarantined"]  # its findings are named invalid_data
    assert quarantine["cells"][2]["findings"] == 1
    # the re-run of completeness passed: neither its first run's finding nor dispatch's task_dead is listed
    rerun = strips["completeness"]["cells"][2]
    assert (rerun["status"], rerun["failures"], rerun["findings"]) == ("pass", [], 0)
    assert rerun["run"] == "dags/amazon_data_supervision/runs/rerun"


def test_volume_uses_the_rollup_where_judged_and_counts_the_rest(client, mysql, seeded):
    data = get(client, "/api/volume/hourly")

    hours = data["hours"]
    for i, hour in enumerate(HOURS):
        start = hour.replace(tzinfo=None)
        live = one(mysql, "SELECT COUNT(*) FROM amazon_search_result WHERE create_time >= %s AND create_time < %s",
                   (start, start + dt.timedelta(hours=1)))[0]  # fmt: skip
        assert hours[i]["rows"] == live, i  # nothing moved since the check: rollup and table agree
        assert hours[i]["source"] == ("rollup" if i < 2 else "live")
    assert [(h["band_low"], h["band_high"], h["anomalous"]) for h in hours[:2]] == [
        (15.0, 45.0, False),
        (15.0, 45.0, True),
    ]
    assert all(h["band_low"] is None for h in hours[2:])
    assert data["total_rows"] == sum(h["rows"] for h in hours) > 0
    assert data["anomalous_hours"] == 1


def test_alerts_newest_first_with_links_to_their_runs(client, seeded):
    data = get(client, "/api/alerts")

    assert data["by_level"] == {"CRITICAL": 1, "ERROR": 2, "WARNING": 2, "INFO": 1}  # not the one before the range
    assert [a["title"] for a in data["alerts"]] == ["info", "3 rows quarantined", "a task is Dead",
                                                   "<b>missing</b> rows", "stale: elements without results",
                                                   "fewer rows than usual"]  # fmt: skip
    newest, dead = data["alerts"][0], data["alerts"][2]
    assert newest["dag_id"] == "amazon_data_supervision" and newest["dag_run_id"] == RUN
    assert newest["run"].startswith("dags/amazon_data_supervision/runs/scheduled__2026-10-05T07%3A00")
    assert dead["dag_id"] == "amazon_task_dispatch" and dead["run"].startswith("dags/amazon_task_dispatch/runs/")
    limited = get(client, "/api/alerts", limit=2)
    assert [a["title"] for a in limited["alerts"]] == ["info", "3 rows quarantined"] and limited["truncated"]


def test_demo_story_only_where_make_demo_seeded_one(client, mysql):
    from crawlops.store import story

    with mysql.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {story.TABLE}")
    assert get(client, "/api/story") == {"faults": []}  # a real deployment: no table, no story
    story.ensure_table(mysql)
    try:
        story.record_hour(mysql, dt.datetime(2026, 10, 5, 6), fault=None, title=None, story=None)
        story.record_hour(mysql, dt.datetime(2026, 10, 5, 7), fault="volume_drop", title="Volume drop", story="why")
        assert get(client, "/api/story")["faults"] == [
            {"hour": "2026-10-05T07:00:00Z", "fault": "volume_drop", "title": "Volume drop", "story": "why"}
        ]
    finally:
        with mysql.cursor() as cur:
            cur.execute(f"DROP TABLE {story.TABLE}")


def test_latest_report_headline_and_page(client, mysql, redis_client, settings, seeded):
    assert client.get("/crawl-ops/api/report/latest").status_code == 404
    assert client.get("/crawl-ops/report/latest").status_code == 404
    day = Window(dt.datetime(2026, 10, 5, tzinfo=UTC), dt.datetime(2026, 10, 6, tzinfo=UTC))
    built = report.build_daily_report(mysql, redis_client, settings, day, tz=TZ)
    report.store_report(mysql, built, dag_run_id=RUN)

    data = client.get("/crawl-ops/api/report/latest").json()

    assert data["report_date"] == "2026-10-05" and data["dag_run_id"] == RUN
    assert data["tasks"]["tasks"] == one(mysql, "SELECT COUNT(*) FROM amazon_task_information")[0]
    assert data["quality"] == {"passed": 2, "failed": 2, "not_validated": 20}  # 05:00 is in the day too
    assert data["alerts"]["CRITICAL"] == 1
    page = client.get("/crawl-ops/report/latest")
    assert page.status_code == 200 and page.text == built.html


def test_outcomes_per_marketplace_and_reason_over_the_range_only(client, mysql):
    from crawlops.store import outcomes

    inside, outside = H0.replace(tzinfo=None), (H0 - dt.timedelta(minutes=1)).replace(tzinfo=None)
    outcomes.upsert_minutes(mysql, [
        (inside, "search_result", "DE", "answered", "", 60), (inside, "search_result", "DE", "failed", "blocked", 40),
        (inside + dt.timedelta(hours=2), "search_result", "US", "empty", "", 5),
        (outside, "search_result", "DE", "failed", "http_503", 99),
    ])  # fmt: skip

    data = get(client, "/api/outcomes")

    assert data["total"] == 105 and data["failed_by_reason"] == {"blocked": 40}
    de, us = data["markets"]
    assert (de["marketplace"], de["failed"], de["shares"]["blocked"]) == ("DE", {"blocked": 40}, 0.4)
    assert (us["marketplace"], us["empty"], us["shares"]["empty"]) == ("US", 5, 1.0)


def test_the_fleet_lists_kit_workers_alive_or_silent(client, mysql, redis_client):
    from crawlops import telemetry
    from crawlops.worker import WorkerClient

    WorkerClient(redis_client, mysql, worker_id="crawler-7:4242:abc").beat()
    redis_client.zadd(telemetry.WORKERS_KEY, {"crawler-9:1:old": dt.datetime.now(UTC).timestamp() - 3600})

    data = client.get("/crawl-ops/api/fleet").json()

    assert [(w["worker_id"], w["alive"]) for w in data["workers"]] == [("crawler-7:4242:abc", True),
                                                                        ("crawler-9:1:old", False)]  # fmt: skip
    assert data["alive"] == 1 and data["workers"][0]["pid"].isdigit()


# ---------------------------------------------------------------------------------------
# Ranges and the page


def test_ranges_are_whole_hours_and_bounded(client, mysql):
    default = client.get("/crawl-ops/api/tasks/hourly").json()
    assert len(default["hours"]) == 24  # the last 24 hours, the current one last
    now = dt.datetime.now(UTC)
    assert (
        dt.datetime.fromisoformat(default["hours"][-1])
        <= now
        < dt.datetime.fromisoformat(default["hours"][-1]) + dt.timedelta(hours=1)
    )
    naive = client.get(
        "/crawl-ops/api/tasks/hourly", params={"start": "2026-10-05T06:30", "end": "2026-10-05T08:10"}
    ).json()
    assert naive["hours"] == ["2026-10-05T06:00:00Z", "2026-10-05T07:00:00Z", "2026-10-05T08:00:00Z"]
    reversed_range = client.get(
        "/crawl-ops/api/tasks/hourly", params={"start": "2026-10-05T08:00Z", "end": "2026-10-05T06:00Z"}
    )
    assert reversed_range.status_code == 422 and "must end after it starts" in reversed_range.json()["detail"]
    too_long = client.get("/crawl-ops/api/alerts", params={"start": "2026-01-01T00:00Z", "end": "2026-03-01T00:00Z"})
    assert too_long.status_code == 422 and "31 days" in too_long.json()["detail"]
    assert client.get("/crawl-ops/api/alerts", params={"start": "not a date"}).status_code == 422


def test_the_page_is_self_contained(client):
    page = client.get("/crawl-ops/")

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text) == []  # no asset from elsewhere
    assert "<script src" not in text and "<link" not in text and "@import" not in text
    for endpoint in ("overview", "tasks/hourly", "quality/hourly", "volume/hourly", "alerts", "report/latest"):
        assert f'"{endpoint}"' in text  # every chart's numbers come from this app's endpoints
    for chart in ("queues", "statuses", "tasks", "quality", "volume", "alerts", "report"):
        assert f'id="{chart}"' in text


def test_overview_without_redis_shows_mysqls_side(mysql, seeded):
    import redis

    from crawlops import dashboard

    span = dashboard.HourRange.of(H0, H0 + dt.timedelta(hours=6))
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))

    data = dashboard.overview(mysql, gone, span)

    assert data["redis_error"].startswith("ConnectionError")
    open_tasks = one(
        mysql, "SELECT COUNT(*) FROM amazon_task_information WHERE task_status IN ('Pending', 'In Progress')"
    )
    assert data["queues"] == {"search_result": {"open_tasks": open_tasks[0], "queued": None, "failed_waiting": None}}
    assert data["queued_total"] is None and data["tasks_total"] > 0


def test_volume_shows_what_the_check_judged_and_marks_hours_it_never_did(client, mysql, seeded, monkeypatch):
    from crawlops import dashboard

    judged = one(mysql, "SELECT row_count FROM amazon_volume_hourly WHERE hour = %s", (HOURS[0].replace(tzinfo=None),))
    with mysql.cursor() as cur:  # rows arriving after the hour was judged change the table, not the verdict
        cur.execute(
            "INSERT INTO amazon_search_result (task_id, keyword, marketplace, page, create_time) "
            "VALUES ('late', 'kw', 'US', 1, %s)",
            (HOURS[0].replace(tzinfo=None) + dt.timedelta(minutes=59),),
        )
    mysql.commit()
    monkeypatch.setattr(dashboard, "LIVE_HOURS_MAX", 2)

    hours = get(client, "/api/volume/hourly")["hours"]

    assert hours[0]["rows"] == judged[0] and hours[0]["source"] == "rollup"
    assert [h["source"] for h in hours] == ["rollup", "rollup", "missing", "missing", "live", "live"]
    assert [h["rows"] for h in hours[2:4]] == [None, None]
    assert get(client, "/api/volume/hourly")["missing_hours"] == 2


def test_ranges_past_the_calendar_are_refused_not_crashed(client):
    for params in ({"end": "0001-01-01T00:30Z"}, {"end": "9999-12-31T23:30Z"}, {"start": "0001-01-01T00:00+05:00"}):
        response = client.get("/crawl-ops/api/tasks/hourly", params=params)
        assert response.status_code == 422, params


def test_the_pages_redis_client_gives_up_at_once_when_redis_is_down(client, mysql, seeded, monkeypatch):
    from crawlops_airflow import dashboard as app_module

    client_gen = app_module.impatient_redis()
    redis_client = next(client_gen)
    kwargs = redis_client.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == kwargs["socket_timeout"] == app_module.REDIS_TIMEOUT_SECONDS
    assert kwargs["retry"].get_retries() == 0  # redis-py would otherwise retry with backoff for seconds
    client_gen.close()
    monkeypatch.setenv("AIRFLOW_CONN_CRAWL_REDIS", json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": 1}))

    data = get(client, "/api/overview")

    assert data["redis_error"].startswith("ConnectionError") and data["queued_total"] is None
    assert data["queues"]["search_result"]["open_tasks"] > 0  # MySQL's side is still shown


# ---------------------------------------------------------------------------------------
# One read model: the page and the daily report say the same about the same day


def test_the_page_and_the_daily_report_agree_about_a_day(client, mysql, redis_client, settings, seeded):
    day = Window(H0, H0 + dt.timedelta(hours=24))
    data = report.build_daily_report(mysql, redis_client, settings, day, tz=TZ).data
    span = {"start": day.start.isoformat(), "end": day.end.isoformat()}

    page_quality = get(client, "/api/quality/hourly", **span)
    suites = {s["name"]: s for s in page_quality["strips"] if s["kind"] == "suite"}
    assert set(suites) == set(data.quality.suites) == {"amazon_search_result"}
    for label, suite in data.quality.suites.items():
        page_cells = suites[label]["cells"]
        assert len(page_cells) == len(suite.hours) == 24
        said = [c and (c["status"], c["quality_score"], c["row_count"], c["failures"]) for c in page_cells]
        word = {"passed": "pass", "repaired": "repaired", "failed": "fail"}  # the page speaks amazon_check_run's words
        written = [c and (word[c.verdict], c.quality_score, c.row_count, c.failures) for c in suite.hours]
        assert said == written
        assert (suites[label]["failed"], suites[label]["not_run"]) == (suite.failed, suite.not_validated) == (1, 21)

    page_volume = get(client, "/api/volume/hourly", **span)
    assert [(h["rows"], h["source"], h["band_low"], h["band_high"], h["anomalous"]) for h in page_volume["hours"]] == [
        (h.rows, h.source, h.band_low, h.band_high, h.anomalous) for h in data.volume.hours
    ]
    assert page_volume["total_rows"] == data.volume.total_rows > 0

    totals = get(client, "/api/tasks/hourly", **span)["totals"]
    tasks = data.tasks.total
    assert (totals["completed"], totals["dead"], totals["open"]) == (tasks.completed, tasks.dead, tasks.open)
    assert totals["retried"] + totals["failed"] == tasks.failed
    assert sum(totals.values()) == tasks.tasks > 0

    by_level = get(client, "/api/alerts", **span)["by_level"]
    assert by_level == data.alerts.by_level and sum(by_level.values()) == data.alerts.total > 0


def test_volume_of_another_crawl_object_and_an_unknown_one_refused(client, mysql, seeded):
    hour = HOURS[1].replace(tzinfo=None)
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_product_detail (task_id, asin, marketplace, title, create_time) "
            "VALUES (%s, %s, 'US', 't', %s)",
            [("product_detail_1_hourly", f"B0TEST{i:04d}", hour + dt.timedelta(minutes=i)) for i in range(7)],
        )
    mysql.commit()

    volume = get(client, "/api/volume/hourly", crawl_object="product_detail")
    assert volume["table"] == "amazon_product_detail"
    assert [h["rows"] for h in volume["hours"]] == [0, 7, 0, 0, 0, 0] and volume["total_rows"] == 7
    assert get(client, "/api/volume/hourly")["table"] == "amazon_search_result"  # the default is unchanged
    assert "product_review" in get(client, "/api/overview")["crawl_objects"]
    refused = client.get("/crawl-ops/api/volume/hourly", params={**RANGE, "crawl_object": "product_page"})
    assert refused.status_code == 422 and "product_page" in refused.json()["detail"]
