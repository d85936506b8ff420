"""Operator actions through the Crawl Ops app in Airflow's API server, against the real MariaDB
and Redis: a user who may edit the crawl DAGs re-drives a Dead task and releases quarantined
rows, audited under their name; a viewer is refused; bad input gets a 4xx and changes nothing."""

from __future__ import annotations

import pytest
from support.chains import crawl_until_dead

API = "/crawl-ops/api/actions"


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
