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
from support.fakes import FakeCrawler, FakeDingTalk, add_config

ROOT = Path(__file__).resolve().parents[1]
MYSQL_URL = os.environ.get("CRAWLOPS_TEST_MYSQL_URL", "mysql://crawlops:crawlops@127.0.0.1:3306/crawlops_test")
REDIS_DB = int(os.environ.get("CRAWLOPS_TEST_REDIS_DB", "15"))

# The running stack's database (make demo's), for the tests against it (tests/e2e), before the
# environment below points the package at the test database.
os.environ.setdefault(
    "CRAWLOPS_STACK_MYSQL_URL", os.environ.get("CRAWLOPS_MYSQL_URL", "mysql://crawlops:crawlops@127.0.0.1:3306/crawl")
)
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
    "amazon_product_detail",
    "amazon_product_detail_quarantine",
    "amazon_product_review",
    "amazon_product_review_quarantine",
    "amazon_alert",
    "amazon_validation_run",
    "amazon_daily_report",
    "amazon_check_run",
    "amazon_alert_delivery",
    "amazon_volume_hourly",
    "amazon_crawl_outcome",
    "amazon_operator_action",
    "amazon_alert_send",
    "amazon_alert_mute",
    "amazon_alert_occurrence",
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


@pytest.fixture
def crawler(mysql, redis_client):
    return FakeCrawler(mysql, redis_client)


@pytest.fixture
def config(mysql):
    return lambda rows: add_config(mysql, rows)


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


# Airflow's own API server app (with this repository's plugins) and its users' tokens.
@pytest.fixture(scope="module")
def app(airflow_db):
    from airflow.api_fastapi.app import create_app

    return create_app()


@pytest.fixture(scope="module")
def token(app):
    """A JWT of the simple auth manager for a user of ``role`` (VIEWER, USER, OP, ADMIN; None: no role)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    def make(role: str | None) -> str:
        return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=f"user-{role}", role=role))

    return make
