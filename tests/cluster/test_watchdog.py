"""The ops team's own stack around the running cluster: Prometheus scrapes the API server's
/crawl-ops-metrics/metrics and Airflow's StatsD metrics with the shipped rules, Alertmanager
routes with the shipped tree to a webhook receiver. The watchdog: the scheduler stops, the
alert reaches the platform on-call receiver within its threshold and ``for:``, and resolves
after a restart; a silence set through Alertmanager's API mutes it.

Run by `make cluster-test` (which starts the cluster with PROMETHEUS=1), after test_cluster.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.cluster

HOME = Path(os.environ.get("CRAWLOPS_CLUSTER_HOME", Path(__file__).resolve().parents[2] / ".airflow-cluster"))
WATCHDOG = "CrawlopsAirflowComponentDown"
THRESHOLD, FOR = 60, 60  # deploy/prometheus/crawlops-rules.yml: heartbeat age > 60 s for 1m
SLACK = 45  # a scrape and an evaluation (5 s each), Alertmanager's group_wait (5 s), the scheduler's own beat


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    info = json.loads((HOME / "cluster.json").read_text())
    assert "prometheus_url" in info, "the cluster runs without Prometheus: make cluster-test starts it with it"
    return info


def query(cluster, promql: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{cluster['prometheus_url']}/api/v1/query", params={"query": promql}, timeout=10)
    answer.raise_for_status()
    return answer.json()["data"]["result"]


def value(cluster, promql: str) -> float | None:
    result = query(cluster, promql)
    return float(result[0]["value"][1]) if result else None


def received(cluster) -> list[dict[str, Any]]:
    return requests.get(f"{cluster['receiver_url']}/received", timeout=10).json()


def watchdog_notes(cluster, status: str, since: int = 0) -> list[dict[str, Any]]:
    """Notifications after the ``since``-th about the scheduler's watchdog alert with ``status``."""
    return [
        note
        for note in received(cluster)[since:]
        for alert in note["payload"]["alerts"]
        if alert["labels"].get("alertname") == WATCHDOG
        and alert["labels"].get("component") == "scheduler"
        and alert["status"] == status
    ]


def wait_for(what: str, check, timeout: float, every: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def scheduler_beating(cluster) -> bool:
    age = value(cluster, 'crawlops_airflow_heartbeat_age_seconds{component="scheduler"}')
    return age is not None and age < 30


def test_prometheus_scrapes_the_package_and_airflows_own_metrics(cluster):
    wait_for("both targets up", lambda: value(cluster, 'min(up{job=~"crawlops|airflow-statsd"})') == 1, 120)
    assert value(cluster, "crawlops_scrape_error") == 0 and value(cluster, "crawlops_redis_up") == 1
    ages = {r["metric"]["dag_id"] for r in query(cluster, "crawlops_dag_last_success_age_seconds")}
    assert ages == {"amazon_task_dispatch", "amazon_data_supervision"}  # both first runs succeeded
    assert query(cluster, "crawlops_open_tasks") or query(cluster, "crawlops_settled_elements_last_hour")
    # Airflow's StatsD metrics, named and labelled by deploy/prometheus/statsd-mapping.yml
    wait_for("the scheduler's StatsD heartbeat", lambda: value(cluster, "airflow_scheduler_heartbeat_total"), 60)
    finished = query(cluster, 'airflow_ti_finish_total{dag_id="amazon_data_supervision"}')
    assert {r["metric"]["state"] for r in finished} >= {"success"}
    rules = requests.get(f"{cluster['prometheus_url']}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert sum(len(group["rules"]) for group in rules) == 11


def test_the_watchdog_pages_through_alertmanager_when_the_scheduler_stops_and_resolves(cluster):
    from crawlops_dev.cluster import start_component, stop_component

    wait_for("the scheduler heartbeating", lambda: scheduler_beating(cluster), 120)
    silences = requests.get(f"{cluster['alertmanager_url']}/api/v2/silences", timeout=10).json()
    assert not [s for s in silences if s["status"]["state"] == "active"], silences  # nothing mutes it beforehand
    seen = len(received(cluster))
    stop_component("scheduler")
    stopped = time.monotonic()
    try:
        (note, *_) = wait_for("the watchdog at the receiver", lambda: watchdog_notes(cluster, "firing", seen), 300)
        took = time.monotonic() - stopped
    finally:
        start_component("scheduler")
    print(f"the watchdog reached {note['path']} {took:.0f} s after the scheduler stopped")
    assert note["path"] == "/platform-oncall"  # routed by the shipped tree
    alert = next(a for a in note["payload"]["alerts"] if a["labels"]["alertname"] == WATCHDOG)
    assert alert["labels"]["severity"] == "critical" and "scheduler" in alert["annotations"]["summary"]
    assert took <= THRESHOLD + FOR + SLACK, took
    resolved = wait_for("resolved after the restart", lambda: watchdog_notes(cluster, "resolved", seen), 240)
    assert resolved[0]["path"] == "/platform-oncall"
    assert scheduler_beating(cluster)


def test_a_silence_set_through_alertmanager_mutes_the_watchdog(cluster):
    from crawlops_dev.cluster import start_component, stop_component

    alertmanager = cluster["alertmanager_url"]
    wait_for("the scheduler heartbeating", lambda: scheduler_beating(cluster), 120)
    now = dt.datetime.now(dt.UTC)
    silence = {
        "matchers": [
            {"name": "alertname", "value": WATCHDOG, "isRegex": False, "isEqual": True},
            {"name": "component", "value": "scheduler", "isRegex": False, "isEqual": True},
        ],
        "startsAt": now.isoformat(),
        "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
        "createdBy": "cluster-test",
        "comment": "scheduler maintenance",
    }
    created = requests.post(f"{alertmanager}/api/v2/silences", json=silence, timeout=10)
    assert created.status_code == 200, created.text
    silence_id = created.json()["silenceID"]
    seen = len(received(cluster))
    stop_component("scheduler")
    try:

        def suppressed() -> list[dict[str, Any]]:
            alerts = requests.get(f"{alertmanager}/api/v2/alerts", params={"filter": f'alertname="{WATCHDOG}"'},
                                  timeout=10).json()  # fmt: skip
            return [
                a for a in alerts if a["status"]["state"] == "suppressed" and silence_id in a["status"]["silencedBy"]
            ]

        wait_for("the watchdog firing, silenced", suppressed, 300)
        assert value(cluster, f'ALERTS{{alertname="{WATCHDOG}", alertstate="firing"}}') == 1  # Prometheus fires it
        time.sleep(20)  # two group intervals: a notification would have gone out by now
        assert watchdog_notes(cluster, "firing", seen) == []
    finally:
        start_component("scheduler")
        expired = requests.delete(f"{alertmanager}/api/v2/silence/{silence_id}", timeout=10)
    assert expired.status_code == 200, expired.text
    wait_for("the scheduler heartbeating again", lambda: scheduler_beating(cluster), 120)
