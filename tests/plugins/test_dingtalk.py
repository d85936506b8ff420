"""DingTalkHook and CrawlAlertNotifier called directly, the way provider hooks and notifiers
are tested, against the fake DingTalk (it checks the signature like DingTalk does) and the
real MariaDB."""

from __future__ import annotations

import datetime as dt
import json
import types

import pytest

from crawlops.alerts import record_findings
from crawlops.findings import Finding, Level
from crawlops.model import UTC, Window
from crawlops_airflow.hooks import DingTalkHook
from crawlops_airflow.notifiers import CrawlAlertNotifier

NOON = Window(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), dt.datetime(2026, 11, 3, 13, tzinfo=UTC))
RUN_ID = "manual__2026-11-03T13:00:00+00:00"


@pytest.fixture(autouse=True)
def _airflow(airflow_db):
    """Variables (the settings override) are read from Airflow's metadata database."""


def context(**extra):
    return {"run_id": RUN_ID, "params": {}, "data_interval_start": NOON.start, "data_interval_end": NOON.end, **extra}


def delivery(mysql):
    with mysql.cursor() as cur:
        cur.execute("SELECT level, check_name, delivery_status FROM amazon_alert ORDER BY id")
        return cur.fetchall()


def test_hook_without_a_connection_gives_no_robot(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_CRAWL_DINGTALK", raising=False)
    assert DingTalkHook().get_conn() is None


def test_hook_reads_token_secret_and_host_and_its_robot_signs(channel):
    robot = DingTalkHook(timeout_seconds=3).get_conn()

    assert (robot.token, robot.secret, robot.base_url) == (channel.token, channel.secret, channel.base_url)
    robot.send_markdown("hello", "**signed**")  # the fake refuses a wrong signature
    assert channel.messages[-1]["markdown"]["title"] == "hello"


def test_hook_without_a_token_gives_no_robot(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CRAWL_DINGTALK", json.dumps({"conn_type": "http", "host": "127.0.0.1"}))
    assert DingTalkHook().get_conn() is None


def test_notify_delivers_the_runs_warnings_in_one_signed_message(mysql, channel):
    findings = [
        Finding(Level.WARNING, "amazon_task_dispatch", "queue_lost", "a queue was lost", subject="t1"),
        Finding(Level.ERROR, "amazon_task_dispatch", "volume_anomaly", "volume dropped", subject="results"),
        Finding(Level.INFO, "amazon_task_dispatch", "invalid_data", "two invalid rows", subject="results"),
    ]
    record_findings(mysql, findings, window=NOON, dag_run_id=RUN_ID)

    CrawlAlertNotifier().notify(context())

    assert len(channel.messages) == 1
    text = channel.messages[0]["markdown"]["text"]
    assert "a queue was lost" in text and "volume dropped" in text and "two invalid rows" not in text
    assert sorted(delivery(mysql)) == sorted(
        [("WARNING", "queue_lost", "sent"), ("ERROR", "volume_anomaly", "sent"), ("INFO", "invalid_data", "logged")]
    )


def test_notify_as_failure_callback_records_and_delivers_the_failure(mysql, channel):
    ti = types.SimpleNamespace(dag_id="amazon_task_dispatch", task_id="push_tasks", try_number=3)

    CrawlAlertNotifier(record_failure=True).notify(context(ti=ti, exception=ConnectionError("redis went away\nmore")))

    assert delivery(mysql) == (("ERROR", "task_failed", "sent"),)
    text = channel.messages[0]["markdown"]["text"]
    assert "amazon_task_dispatch.push_tasks" in text and "redis went away" in text and "more" not in text


def test_notify_never_raises_when_dingtalk_fails(mysql, channel):
    channel.mode = "http500"
    record_findings(
        mysql, [Finding(Level.ERROR, "s", "volume_anomaly", "volume dropped", subject="x")], window=NOON,
        dag_run_id=RUN_ID,
    )  # fmt: skip

    CrawlAlertNotifier().notify(context())

    assert delivery(mysql)[0][2] != "sent"
