"""Alert channels from Airflow connections, through CrawlAlertNotifier: two DingTalk robots
(the fake checks signatures like DingTalk) and one Apprise connection (a local JSON webhook
stands in for Feishu, WeCom, Slack...), routed by the settings, against the real MariaDB."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crawlops.alerts import record_findings
from crawlops.findings import Finding, Level
from crawlops.model import UTC, Window
from crawlops_airflow.notifiers import CrawlAlertNotifier
from tests.support.fakes import FakeDingTalk

RUN_ID = "manual__crawl-alerts"
APPRISE_TOKEN = "hook-9f8e7d6c5b4a"  # noqa: S105 (the fake webhook's)


@pytest.fixture(autouse=True)
def _airflow(airflow_db):
    """Variables (the settings override) are read from Airflow's metadata database."""


class FakeWebhook:
    """A JSON webhook (what Apprise's ``json://`` posts to): ``status`` is what it answers."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.paths.append(self.path)
                if fake.status == 200:
                    fake.bodies.append(json.loads(body))
                self.send_response(fake.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _dingtalk_conn(fake: FakeDingTalk) -> str:
    port = int(fake.base_url.rsplit(":", 1)[1])
    return json.dumps({"conn_type": "dingtalk", "host": f"http://127.0.0.1:{port}", "password": fake.token,
                       "extra": {"secret": fake.secret}})  # fmt: skip


@pytest.fixture
def stack(monkeypatch):
    """Connections crawl_dingtalk, crawl_dingtalk_product (DingTalk) and crawl_feishu (Apprise),
    and routes: product objects' ERRORs to the product robot and Feishu, naming their owner;
    every DE alert also to Feishu; the rest to the default robot."""
    robots = {
        "crawl_dingtalk": FakeDingTalk(token="tok-default-1a2b3c", secret="SEC-default-4d5e6f"),
        "crawl_dingtalk_product": FakeDingTalk(token="tok-product-7a8b9c", secret="SEC-product-0d1e2f"),
    }
    webhook = FakeWebhook()
    for name, fake in robots.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", _dingtalk_conn(fake))
    apprise_path = f"json://127.0.0.1:{webhook.port}/hooks/{APPRISE_TOKEN}"
    feishu = {"conn_type": "apprise", "extra": {"config": [{"path": apprise_path}]}}
    monkeypatch.setenv("AIRFLOW_CONN_CRAWL_FEISHU", json.dumps(feishu))
    routes = [
        {"name": "product", "crawl_objects": ["product_detail", "product_review"], "levels": ["ERROR", "CRITICAL"],
         "channels": ["crawl_dingtalk_product", "crawl_feishu"], "owner": "product team",
         "at_mobiles": ["13800000001"], "at_user_ids": ["prod-lead"]},
        {"name": "DE", "marketplaces": ["DE"], "channels": ["crawl_feishu", "crawl_dingtalk"], "owner": "DE desk",
         "at_user_ids": ["de-oncall"]},
    ]  # fmt: skip
    monkeypatch.setenv("CRAWLOPS__ALERTS__ROUTES", json.dumps(routes))
    yield robots, webhook
    for fake in robots.values():
        fake.close()
    webhook.close()


def window() -> Window:
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    end = now - dt.timedelta(minutes=now.minute % 5)
    return Window(end - dt.timedelta(minutes=5), end)


FINDINGS = [
    Finding(Level.ERROR, "amazon_data_supervision", "success_rate", "product_detail: 41%", subject="product_detail"),
    Finding(Level.WARNING, "amazon_data_supervision", "success_rate", "product_review: 90%", subject="product_review"),
    Finding(Level.ERROR, "amazon_data_supervision", "crawl_outcomes", "DE blocked 60%",
            subject="search_result/DE/blocked"),
    Finding(Level.ERROR, "amazon_data_supervision", "freshness", "US stale", subject="search_result/US"),
]  # fmt: skip


def notify():
    CrawlAlertNotifier().notify({"run_id": RUN_ID, "params": {}})


def test_routing_reaches_each_channel_with_its_mentions(mysql, stack):
    robots, webhook = stack
    record_findings(mysql, FINDINGS, window=window(), dag_run_id=RUN_ID)

    notify()

    (product,) = robots["crawl_dingtalk_product"].messages
    assert "product_detail: 41%" in product["markdown"]["text"]
    assert "product_review" not in product["markdown"]["text"] and "DE blocked" not in product["markdown"]["text"]
    assert product["at"] == {"atMobiles": ["13800000001"], "atUserIds": ["prod-lead"], "isAtAll": False}
    (default,) = robots["crawl_dingtalk"].messages
    text = default["markdown"]["text"]
    assert all(s in text for s in ("product_review: 90%", "DE blocked", "US stale")) and "41%" not in text
    assert default["at"]["atUserIds"] == ["de-oncall"]  # the DE alert is in this message
    (feishu,) = webhook.bodies
    assert "product_detail: 41%" in feishu["message"] and "DE blocked" in feishu["message"]
    assert "US stale" not in feishu["message"]
    assert all(who in feishu["message"] for who in ("@13800000001", "@prod-lead", "@de-oncall"))
    with mysql.cursor() as cur:
        cur.execute("SELECT subject, delivery_status, owner, channels FROM amazon_alert ORDER BY id")
        assert cur.fetchall() == (
            ("product_detail", "sent", "product team", "crawl_dingtalk_product,crawl_feishu"),
            ("product_review", "sent", None, "crawl_dingtalk"),
            ("search_result/DE/blocked", "sent", "DE desk", "crawl_feishu,crawl_dingtalk"),
            ("search_result/US", "sent", None, "crawl_dingtalk"),
        )


def test_a_failing_channel_fails_alone_retries_and_no_secret_reaches_a_log(mysql, stack, caplog, capfd):
    robots, webhook = stack
    webhook.status = 500
    record_findings(mysql, FINDINGS, window=window(), dag_run_id=RUN_ID)

    with caplog.at_level(logging.DEBUG):
        notify()

    assert len(robots["crawl_dingtalk_product"].messages) == 1 and len(robots["crawl_dingtalk"].messages) == 1
    assert len(webhook.paths) == 1 and webhook.bodies == []
    with mysql.cursor() as cur:
        cur.execute("SELECT channel, status, attempts FROM amazon_alert_send ORDER BY channel, id")
        by_channel = cur.fetchall()
        cur.execute("SELECT subject, delivery_status FROM amazon_alert ORDER BY id")
        summary = cur.fetchall()
    assert {row for row in by_channel if row[0] == "crawl_feishu"} == {("crawl_feishu", "failed", 1)}
    assert {row[1] for row in by_channel if row[0] != "crawl_feishu"} == {"sent"}
    assert dict(summary)["product_detail"] == "failed" and dict(summary)["search_result/US"] == "sent"
    # The webhook is back: only Feishu's sends are tried again, after their backoff.
    webhook.status = 200
    with mysql.cursor() as cur:
        cur.execute("UPDATE amazon_alert_send SET next_attempt_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND")
    mysql.commit()
    with caplog.at_level(logging.DEBUG):
        notify()
    assert len(webhook.bodies) == 1 and len(robots["crawl_dingtalk"].messages) == 1
    logs = caplog.text + "".join(capfd.readouterr())
    secrets = [APPRISE_TOKEN, *(f.token for f in robots.values()), *(f.secret for f in robots.values())]
    assert "crawl_feishu" in logs  # the failure was logged ...
    assert [s for s in secrets if s in logs] == []  # ... and no token, secret or webhook path with it
