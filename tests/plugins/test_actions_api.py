"""Operator actions through the Crawl Ops app in Airflow's API server, against the real MariaDB
and Redis: a user who may edit the crawl DAGs re-drives a Dead task and releases quarantined
rows, audited under their name; a viewer is refused; bad input gets a 4xx and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.chains import crawl_until_dead

API = "/crawl-ops/api/actions"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def as_role(app, token):
    from fastapi.testclient import TestClient

    clients = []

    def make(role: str):
        client = TestClient(app, headers={"Authorization": f"Bearer {token(role)}"})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def state(mysql, redis_client):
    mysql.commit()
    with mysql.cursor() as cur:
        cur.execute("SELECT task_id, task_status FROM amazon_task_information ORDER BY task_id")
        tasks = cur.fetchall()
        cur.execute("SELECT COUNT(*) FROM amazon_operator_action")
        audited = cur.fetchone()[0]
    return tasks, sorted(redis_client.keys()), audited


def test_an_editor_redrives_a_dead_task_and_a_viewer_may_only_read(
    as_role, mysql, redis_client, settings, config, crawler
):
    dead, failing = crawl_until_dead(mysql, redis_client, settings, config, crawler)
    before = state(mysql, redis_client)
    body = {"task_id": dead, "budget": 2, "reason": "proxies back", "confirm": True}

    viewer = as_role("VIEWER")
    refused = viewer.post(f"{API}/redrive", json=body)
    assert refused.status_code == 403 and "not allowed to act" in refused.json()["detail"]
    assert state(mysql, redis_client) == before

    done = as_role("USER").post(f"{API}/redrive", json=body)

    assert done.status_code == 200, done.text
    assert done.json()["retry_task"] == dead + "_fail" and done.json()["elements"] == len(failing)
    assert sorted(m.decode() for m in redis_client.smembers(dead + "_fail")) == sorted(failing)
    trail = viewer.get(API).json()["actions"]  # reading the audit trail is a reader's right
    assert [(a["action"], a["subject"], a["actor"], a["reason"]) for a in trail] == [
        ("redrive", dead, "user-USER", "proxies back")
    ]


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"task_id": "search_result_1_hourly"}, 404, "no task"),
        ({"task_id": "search_result_1793707200_hourly"}, 409, "not Dead"),
        ({"budget": 0}, 400, "budget"),
        ({"budget": 1000}, 400, "budget"),
        ({"confirm": False}, 400, "confirmed"),
        ({"reason": ""}, 422, "reason"),
    ],
)
def test_bad_actions_get_a_4xx_and_change_nothing(
    as_role, mysql, redis_client, settings, config, crawler, change, status, says
):
    dead, _ = crawl_until_dead(mysql, redis_client, settings, config, crawler)
    before = state(mysql, redis_client)

    answer = as_role("OP").post(f"{API}/redrive", json={"task_id": dead, "budget": 1, "reason": "x",
                                                          "confirm": True, **change})  # fmt: skip

    assert answer.status_code == status and says in str(answer.json()["detail"]), answer.text
    assert state(mysql, redis_client) == before


def test_release_of_an_unknown_rule_is_a_404(as_role, mysql, redis_client):
    before = state(mysql, redis_client)
    answer = as_role("ADMIN").post(f"{API}/release", json={"crawl_object": "search_result",
                                                            "rule": "price_non_negative", "reason": "x",
                                                            "confirm": True})  # fmt: skip
    assert answer.status_code == 404 and "no rows" in answer.json()["detail"]
    assert state(mysql, redis_client) == before


# --- alerts: acknowledge, expected, mute; re-run an hour's checks ------------------------


def live_alert(mysql) -> int:
    import datetime as dt

    from crawlops.alerts import record_findings
    from crawlops.findings import Finding, Level
    from crawlops.model import UTC, Window

    end = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    finding = Finding(Level.ERROR, "amazon_data_supervision", "success_rate", "search_result: 40%",
                      subject="search_result")  # fmt: skip
    (alert_id,) = record_findings(mysql, [finding], window=Window(end - dt.timedelta(minutes=5), end))
    return alert_id


def alert_state(mysql, alert_id):
    mysql.commit()
    with mysql.cursor() as cur:
        cur.execute("SELECT status, acted_by, action_note FROM amazon_alert WHERE id = %s", (alert_id,))
        return cur.fetchone()


def test_an_editor_acknowledges_an_alert_and_a_viewer_is_refused(as_role, mysql):
    alert_id = live_alert(mysql)
    body = {"reason": "alice is on it", "confirm": True}

    refused = as_role("VIEWER").post(f"/crawl-ops/api/alerts/{alert_id}/acknowledge", json=body)
    assert refused.status_code == 403 and alert_state(mysql, alert_id) == ("open", None, None)

    done = as_role("USER").post(f"/crawl-ops/api/alerts/{alert_id}/acknowledge", json=body)

    assert done.status_code == 200, done.text
    assert done.json()["status"] == "acknowledged" and done.json()["was"] == "open"
    assert alert_state(mysql, alert_id) == ("acknowledged", "user-USER", "alice is on it")
    expected = as_role("USER").post(f"/crawl-ops/api/alerts/{alert_id}/expected", json={**body, "reason": "upgrade"})
    assert expected.status_code == 200 and alert_state(mysql, alert_id)[0] == "expected"
    alerts = as_role("VIEWER").get("/crawl-ops/api/alerts").json()["alerts"]
    (shown,) = [a for a in alerts if a["id"] == alert_id]
    assert (shown["status"], shown["acted_by"], shown["action_note"]) == ("expected", "user-USER", "upgrade")
    assert shown["crawl_object"] == "search_result" and shown["occurrences"] == 1
    trail = as_role("VIEWER").get(API).json()["actions"]
    assert [(a["action"], a["actor"]) for a in trail] == [("expected", "user-USER"), ("acknowledged", "user-USER")]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/crawl-ops/api/alerts/999999/acknowledge", {}, 404),
        ("/crawl-ops/api/alerts/{id}/fixed", {}, 404),
        ("/crawl-ops/api/alerts/{id}/acknowledge", {"confirm": False}, 400),
        ("/crawl-ops/api/mutes", {"check": "success_rate", "minutes": 0}, 400),
        ("/crawl-ops/api/mutes", {"check": "success_rate", "minutes": 100000}, 400),
        ("/crawl-ops/api/mutes/999999/end", {}, 404),
        ("/crawl-ops/api/actions/rerun", {"hour": "2026-11-03T12:30:00"}, 400),
        ("/crawl-ops/api/actions/rerun", {"hour": "2099-01-01T00:00:00"}, 409),
    ],
)
def test_bad_alert_actions_get_a_4xx_and_change_nothing(as_role, mysql, path, body, status):
    alert_id = live_alert(mysql)

    answer = as_role("OP").post(path.format(id=alert_id), json={"reason": "x", "confirm": True, **body})

    assert answer.status_code == status, answer.text
    assert alert_state(mysql, alert_id) == ("open", None, None)
    with mysql.cursor() as cur:
        cur.execute("SELECT (SELECT COUNT(*) FROM amazon_operator_action) + (SELECT COUNT(*) FROM amazon_alert_mute)")
        assert cur.fetchone() == (0,)


def test_a_mute_is_listed_until_it_is_ended(as_role, mysql):
    op = as_role("OP")

    muted = op.post("/crawl-ops/api/mutes", json={"check": "success_rate", "subject": "product_review",
                                                  "minutes": 90, "reason": "deploy", "confirm": True})  # fmt: skip

    assert muted.status_code == 200, muted.text
    (mute,) = as_role("VIEWER").get("/crawl-ops/api/mutes").json()["mutes"]
    assert (mute["check"], mute["subject"], mute["actor"], mute["reason"]) == (
        "success_rate", "product_review", "user-OP", "deploy")  # fmt: skip
    ended = op.post(f"/crawl-ops/api/mutes/{mute['id']}/end", json={"reason": "deploy done", "confirm": True})
    assert ended.status_code == 200 and as_role("VIEWER").get("/crawl-ops/api/mutes").json() == {"mutes": []}
    again = op.post(f"/crawl-ops/api/mutes/{mute['id']}/end", json={"reason": "twice", "confirm": True})
    assert again.status_code == 404


def test_an_editor_reruns_an_hours_checks_as_a_supervision_run(as_role, mysql, airflow_db):
    import datetime as dt

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from crawlops.names import SUPERVISION_DAG

    bag = DagBag(dag_folder=str(ROOT / "dags" / "amazon_data_supervision.py"))
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    hour = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    body = {"hour": hour.isoformat(), "reason": "suite fixed", "confirm": True}
    assert as_role("VIEWER").post("/crawl-ops/api/actions/rerun", json=body).status_code == 403

    done = as_role("USER").post("/crawl-ops/api/actions/rerun", json=body)

    assert done.status_code == 200, done.text
    with create_session() as session:
        run = session.scalars(select(DagRun).where(DagRun.run_id == done.json()["run_id"])).one()
        assert run.dag_id == SUPERVISION_DAG and run.triggering_user_name == "user-USER"
        assert run.conf == {"check_hour": hour.isoformat(), "run_hourly": True}
        session.delete(run)  # no scheduler runs here: the queued run would only confuse later tests
    (audit,) = as_role("VIEWER").get(API).json()["actions"]
    assert (audit["action"], audit["actor"], audit["reason"]) == ("rerun", "user-USER", "suite fixed")
