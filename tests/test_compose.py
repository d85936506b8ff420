"""docker-compose.yaml cannot run here (no Docker engine): check it against what the package needs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def pinned_airflow_version() -> str:
    match = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


def airflow_services(compose):
    return {name: svc for name, svc in compose["services"].items() if name.startswith("airflow-") and "build" in svc}


def test_celery_executor_with_a_broker_apart_from_the_crawl_queues(compose):
    services = compose["services"]
    for name, svc in airflow_services(compose).items():
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker_host = env["AIRFLOW__CELERY__BROKER_URL"].split("//")[1].split(":")[0]
        assert broker_host in services and broker_host != "crawl-redis", name
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["airflow-worker"]["healthcheck"]["test"]


def test_the_simulator_follows_the_airflow_connections(compose):
    simulator = compose["services"]["crawl-simulator"]
    env = simulator["environment"]
    redis = json.loads(airflow_services(compose)["airflow-scheduler"]["environment"]["AIRFLOW_CONN_CRAWL_REDIS"])
    mysql = json.loads(airflow_services(compose)["airflow-scheduler"]["environment"]["AIRFLOW_CONN_CRAWL_MYSQL"])
    assert env["CRAWLOPS_REDIS_URL"] == f"redis://{redis['host']}:{redis['port']}/{redis['extra']['db']}"
    assert env["CRAWLOPS_MYSQL_URL"].endswith(f"@{mysql['host']}:{mysql['port']}/{mysql['schema']}")
    assert simulator["entrypoint"] == ["python", "-m", "crawlops.simulator"]
    assert simulator["image"] == airflow_services(compose)["airflow-scheduler"]["image"]
    assert "./include:/opt/airflow/include" in simulator["volumes"]


def test_services_present(compose):
    assert {
        "airflow-db",
        "crawl-mysql",
        "crawl-redis",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "celery-broker",
        "crawl-simulator",
    } <= set(compose["services"])


def test_image_is_the_pinned_airflow(compose):
    version = pinned_airflow_version()
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert f"ARG AIRFLOW_VERSION={version}" in dockerfile
    for name, svc in airflow_services(compose).items():
        assert svc["build"]["args"]["AIRFLOW_VERSION"] == version, name
        assert svc["image"].endswith(":" + version), name


def test_dag_plugin_and_include_folders_are_mounted(compose):
    for name, svc in airflow_services(compose).items():
        targets = {v.split(":")[0]: v.split(":")[1] for v in svc["volumes"]}
        assert targets == {
            "./dags": "/opt/airflow/dags",
            "./plugins": "/opt/airflow/plugins",
            "./include": "/opt/airflow/include",
        }, name
        for folder in targets:
            assert (ROOT / folder).is_dir()


def test_connections_match_the_spec_and_the_services(compose):
    for name, svc in airflow_services(compose).items():
        env = svc["environment"]
        mysql = json.loads(env["AIRFLOW_CONN_CRAWL_MYSQL"])
        redis = json.loads(env["AIRFLOW_CONN_CRAWL_REDIS"])
        assert mysql["conn_type"] == "mysql" and mysql["host"] in compose["services"], name
        assert mysql["extra"]["charset"] == "utf8mb4"
        assert redis["conn_type"] == "redis" and redis["host"] in compose["services"], name
        assert isinstance(redis["extra"]["db"], int)
        mysql_env = compose["services"]["crawl-mysql"]["environment"]
        assert (mysql["login"], mysql["password"], mysql["schema"]) == (
            mysql_env["MYSQL_USER"],
            mysql_env["MYSQL_PASSWORD"],
            mysql_env["MYSQL_DATABASE"],
        )
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/")


def test_data_services_have_health_checks_and_airflow_waits_for_them(compose):
    for name in ("airflow-db", "crawl-mysql", "crawl-redis"):
        assert compose["services"][name]["healthcheck"]["test"], name
    for name, svc in airflow_services(compose).items():
        for dependency in ("airflow-db", "crawl-mysql", "crawl-redis", "celery-broker"):
            assert svc["depends_on"][dependency]["condition"] == "service_healthy", name


def test_crawl_redis_keeps_nothing_on_disk_like_production(compose):
    assert compose["services"]["crawl-redis"]["command"] == ["redis-server", "--save", "", "--appendonly", "no"]


def test_init_applies_the_schema_migrations_at_deploy(compose):
    command = " ".join(compose["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in command
    assert "python -m crawlops.migrations" in command


def test_the_api_server_can_serve_the_crawl_ops_page(compose):
    """The page is a plugin of the API server: it needs the plugins folder and the crawl connections."""
    api = compose["services"]["airflow-apiserver"]
    assert "./plugins:/opt/airflow/plugins" in api["volumes"]
    assert {"AIRFLOW_CONN_CRAWL_MYSQL", "AIRFLOW_CONN_CRAWL_REDIS"} <= set(api["environment"])
    assert "8080:8080" in api["ports"]
    assert (ROOT / "plugins" / "crawl_ops_plugin.py").is_file()
    assert "/opt/airflow/plugins" in (ROOT / "docker" / "Dockerfile").read_text()  # crawlops_airflow importable
