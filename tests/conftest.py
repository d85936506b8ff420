"""Test environment: the real local MariaDB and Redis, and an Airflow home of its own.

Tests use the database ``crawlops_test`` and Redis database 15, both emptied before each
test, so a test never sees another's rows or sets (and never touches the demo's data).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
MYSQL_URL = os.environ.get("CRAWLOPS_TEST_MYSQL_URL", "mysql://crawlops:crawlops@127.0.0.1:3306/crawlops_test")
REDIS_DB = int(os.environ.get("CRAWLOPS_TEST_REDIS_DB", "15"))

_mysql = urlsplit(MYSQL_URL)
os.environ.update(
    {
        "AIRFLOW_HOME": str(ROOT / ".airflow-test"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "CRAWLOPS_MYSQL_URL": MYSQL_URL,
        "AIRFLOW_CONN_CRAWL_MYSQL": json.dumps(
            {
                "conn_type": "mysql",
                "host": _mysql.hostname,
                "port": _mysql.port or 3306,
                "login": _mysql.username,
                "password": _mysql.password or "",
                "schema": _mysql.path.lstrip("/"),
                "extra": {"charset": "utf8mb4"},
            }
        ),
        "AIRFLOW_CONN_CRAWL_REDIS": json.dumps(
            {"conn_type": "redis", "host": "127.0.0.1", "port": 6379, "extra": {"db": REDIS_DB}}
        ),
    }
)
for name in [n for n in os.environ if n.startswith("CRAWLOPS__")]:
    del os.environ[name]  # a developer's shell overrides must not change test outcomes

TABLES = (
    "amazon_crawl_config",
    "amazon_task_information",
    "amazon_task_element",
    "amazon_search_result",
    "amazon_search_result_quarantine",
    "amazon_alert",
    "amazon_validation_run",
    "amazon_daily_report",
    "amazon_check_run",
    "amazon_alert_delivery",
    "amazon_volume_hourly",
)


@pytest.fixture(scope="session")
def _schema():
    from crawlops.db import connect
    from crawlops.migrations import migrate

    conn = connect(MYSQL_URL)
    migrate(conn)
    conn.close()


@pytest.fixture
def mysql(_schema):
    """A connection to the emptied test database."""
    from crawlops.db import connect

    conn = connect(MYSQL_URL)
    with conn.cursor() as cur:
        for table in TABLES:
            cur.execute(f"TRUNCATE TABLE {table}")
    conn.commit()
    yield conn
    conn.close()


@pytest.fixture
def redis_client():
    """Redis database REDIS_DB, flushed before the test."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def settings():
    from crawlops.settings import Settings

    return Settings.load()


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database (SQLite under .airflow-test), migrated once per session."""
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        check=True,
        capture_output=True,
    )
    from airflow import settings as airflow_settings

    airflow_settings.configure_orm()


class FakeCrawler:
    """Plays the crawlers' side of the protocol in tests: SPOP elements, write results or fail them."""

    def __init__(self, mysql, redis):
        self.mysql, self.redis = mysql, redis

    def take(self, task_id: str, count: int) -> list[str]:
        return [m.decode() for m in self.redis.spop(task_id, count) or []]

    def succeed(self, task_id: str, elements: list[str], rows_per_element: int = 1) -> None:
        rows = []
        for text in elements:
            e = json.loads(text)
            for position in range(1, rows_per_element + 1):
                rows.append((task_id, e["keyword"], e["marketplace"], f"B0{position:08d}", e["page"], position))
        with self.mysql.cursor() as cur:
            cur.executemany(
                "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, title, price, currency, "
                "rating, review_count, page, position) VALUES (%s, %s, %s, %s, 'item', 9.99, 'USD', 4.5, 10, %s, %s)",
                rows,
            )
        self.mysql.commit()

    def fail(self, task_id: str, elements: list[str]) -> None:
        if elements:
            self.redis.sadd(task_id + "_fail", *elements)

    def drain(self, task_id: str, *, fail_every: int = 0) -> tuple[list[str], list[str]]:
        """Take every element; fail each ``fail_every``-th one, answer the rest."""
        taken = self.take(task_id, 1_000_000)
        failed = [t for i, t in enumerate(sorted(taken)) if fail_every and i % fail_every == 0]
        done = [t for t in taken if t not in failed]
        self.succeed(task_id, done)
        self.fail(task_id, failed)
        return done, failed


@pytest.fixture
def crawler(mysql, redis_client):
    return FakeCrawler(mysql, redis_client)


def add_config(conn, rows):
    """Insert config rows: (crawl_object, target, marketplace, frequency, max_pages)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_crawl_config (crawl_object, target, marketplace, frequency, max_pages) "
            "VALUES (%s, %s, %s, %s, %s)",
            rows,
        )
    conn.commit()


@pytest.fixture
def config(mysql):
    return lambda rows: add_config(mysql, rows)


class FakeDingTalk:
    """A local stand-in for DingTalk's robot API that checks requests the way DingTalk does.

    errcode 300001 for an unknown token, 310000 for a missing, stale or wrong signature,
    130101 beyond 20 messages a minute per robot. ``mode`` makes it misbehave: "http500"
    answers 500, "hang" answers only after ``hang_seconds``.
    """

    def __init__(self, token: str, secret: str | None):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.token, self.secret = token, secret
        self.messages: list[dict] = []
        self.urls: list[str] = []
        self.sent_at: list[float] = []
        self.mode = "ok"
        self.hang_seconds = 3.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = fake.answer(self.path, body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, body: bytes) -> tuple[int, dict]:
        import base64
        import hashlib
        import hmac
        import time
        from urllib.parse import parse_qs, urlsplit

        self.urls.append(path)
        if self.mode == "hang":
            time.sleep(self.hang_seconds)
        if self.mode == "http500":
            return 500, {"errcode": -1, "errmsg": "system busy"}
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path != "/robot/send" or query.get("access_token") != self.token:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        if self.secret is not None:
            timestamp = query.get("timestamp", "")
            expected = base64.b64encode(
                hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256).digest()
            ).decode()
            fresh = timestamp.isdigit() and abs(time.time() * 1000 - int(timestamp)) < 3_600_000
            if not fresh or query.get("sign") != expected:
                return 200, {"errcode": 310000, "errmsg": "sign not match"}
        now = time.time()
        if len([t for t in self.sent_at if t > now - 60]) >= 20:
            return 200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
        self.sent_at.append(now)
        self.messages.append(json.loads(body))
        return 200, {"errcode": 0, "errmsg": "ok"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dingtalk():
    fake = FakeDingTalk(token="test-token-8f2c", secret="SEC-test-secret-91ab")
    yield fake
    fake.close()


@pytest.fixture
def channel(dingtalk, monkeypatch):
    """The ``crawl_dingtalk`` connection pointing at the fake DingTalk (signed robot)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRAWL_DINGTALK",
        json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": int(dingtalk.base_url.rsplit(":", 1)[1]),
                "password": dingtalk.token,
                "extra": {"secret": dingtalk.secret},
            }
        ),
    )
    return dingtalk
