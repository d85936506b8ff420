"""Alerts from real DAG runs reach the fake DingTalk, and no secret reaches the logs."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from crawlops.model import UTC

pytestmark = pytest.mark.dagrun

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
NOON = dt.datetime(2026, 11, 3, 12, tzinfo=UTC)
ROWS = [
    ("search_result", "usb c cable", "US", "hourly", 3),
    ("search_result", "", "US", "hourly", 3),
    ("search_result", "gaming mouse", "XX", "hourly", 3),
]


@pytest.fixture
def dispatch_dag(airflow_db, redis_client):  # a clean Redis: no sets left by other tests
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR)).get_dag("amazon_task_dispatch")


def all_logs(capfd, caplog) -> str:
    """Everything the run printed or logged: stdout/stderr, log records, Airflow's log files."""
    out, err = capfd.readouterr()
    files = [p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"], "logs").rglob("*.log")]
    return "\n".join([out, err, caplog.text, *files])


def alert_rows(mysql):
    with mysql.cursor() as cur:
        cur.execute("SELECT level, check_name, subject, title, delivery_status FROM amazon_alert ORDER BY id")
        return cur.fetchall()


def test_a_runs_warning_is_delivered_signed_and_no_secret_is_logged(
    dispatch_dag, mysql, config, channel, capfd, caplog
):
    config(ROWS)

    dispatch_dag.test(logical_date=NOON + dt.timedelta(hours=1))

    (message,) = channel.messages
    assert "2 config rows skipped: empty_target 1, unknown_marketplace 1" in message["markdown"]["text"]
    assert [row[4] for row in alert_rows(mysql)] == ["sent"]
    signs = [parse_qs(urlsplit(url).query)["sign"][0] for url in channel.urls]
    logs = all_logs(capfd, caplog)
    assert "config rows skipped" in logs  # the logs were captured
    for secret in [channel.token, channel.secret, *signs, *channel.urls]:
        assert secret not in logs


def test_a_task_that_fails_for_good_raises_an_error_alert_naming_it(dispatch_dag, mysql, config, channel, monkeypatch):
    config(ROWS[:1])
    monkeypatch.setenv("AIRFLOW_CONN_CRAWL_REDIS", '{"conn_type": "redis", "host": "127.0.0.1", "port": 1}')
    for task in dispatch_dag.tasks:
        task.retries = 0

    dag_run = dispatch_dag.test(logical_date=NOON + dt.timedelta(hours=1))

    assert dag_run.state == "failed"
    failures = [row for row in alert_rows(mysql) if row[1] == "task_failed"]
    assert [row[2] for row in failures] == ["amazon_task_dispatch.push_tasks"]
    assert dag_run.run_id in failures[0][3] and "Connection refused" in failures[0][3]
    assert any("amazon_task_dispatch.push_tasks failed" in m["markdown"]["text"] for m in channel.messages)


def test_without_a_channel_the_run_says_so_and_stores_the_alert(dispatch_dag, mysql, config, capfd, caplog):
    config(ROWS)

    dispatch_dag.test(logical_date=NOON + dt.timedelta(hours=1))

    assert [row[4] for row in alert_rows(mysql)] == ["no_channel"]
    assert all_logs(capfd, caplog).count("alert channels without a connection: crawl_dingtalk;") == 1
