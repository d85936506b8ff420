"""Prometheus and Alertmanager beside a local stack: ``make demo PROMETHEUS=1``,
``make cluster PROMETHEUS=1`` (and always in ``make cluster-test``, whose watchdog test needs them).

What starts, each its own process group in the stack's home, next to the Airflow components:

- ``prometheus`` (Debian's ``prometheus``) on :9090, scraping the API server's
  ``/crawl-ops-metrics/metrics`` with the scrape token and the StatsD exporter, every 5 s, with
  the shipped rules (``deploy/prometheus/crawlops-rules.yml``), alerting to
- ``alertmanager`` (Debian's ``prometheus-alertmanager``) on :9093, with the shipped routing
  tree (``deploy/alertmanager/alertmanager.yml``), its webhooks pointed at
- ``alert-receiver`` on :9099 (``crawlops_dev.alert_receiver``, standing in for an on-call
  tool: what it receives is in ``<home>/alerts-received.jsonl``), and
- ``statsd-exporter`` on udp :9125 / :9102 (``crawlops_dev.statsd_exporter``): Airflow's own
  metrics (``[metrics] statsd_on``), named by ``deploy/prometheus/statsd-mapping.yml``.

Ports move with ``CRAWLOPS_PROMETHEUS_PORT``, ``CRAWLOPS_ALERTMANAGER_PORT``,
``CRAWLOPS_RECEIVER_PORT``, ``CRAWLOPS_STATSD_PORT`` and ``CRAWLOPS_STATSD_WEB_PORT``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs in the lock

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_PORT = int(os.environ.get("CRAWLOPS_PROMETHEUS_PORT", "9090"))
ALERTMANAGER_PORT = int(os.environ.get("CRAWLOPS_ALERTMANAGER_PORT", "9093"))
RECEIVER_PORT = int(os.environ.get("CRAWLOPS_RECEIVER_PORT", "9099"))
STATSD_PORT = int(os.environ.get("CRAWLOPS_STATSD_PORT", "9125"))
STATSD_WEB_PORT = int(os.environ.get("CRAWLOPS_STATSD_WEB_PORT", "9102"))
# The local stack's pace: a scrape and a rule evaluation every 5 s, notifications within seconds.
SCRAPE_INTERVAL = "5s"
GROUP_WAIT, GROUP_INTERVAL = "5s", "10s"


def wanted() -> bool:
    """``PROMETHEUS=1`` on make's command line (the Makefile passes it as ``CRAWLOPS_PROMETHEUS``)."""
    return os.environ.get("CRAWLOPS_PROMETHEUS", "") in ("1", "true", "yes")


def token(home: Path) -> str:
    """The scrape token the API server wants and Prometheus sends, made once per home."""
    path = home / "metrics-token"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def airflow_env(home: Path) -> dict[str, str]:
    """What every Airflow component of the stack gets: the scrape token for the API server's
    metrics, and Airflow's own metrics sent as StatsD to the exporter."""
    return {
        "CRAWLOPS_METRICS_TOKEN": token(home),
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(STATSD_PORT),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        # tags as labels (InfluxDB style), and no second copy under the old dotted names
        "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
        "AIRFLOW__METRICS__LEGACY_NAMES_ON": "False",
    }


def prometheus_config(home: Path, api_port: int) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(DEPLOY / "prometheus" / "crawlops-rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ALERTMANAGER_PORT}"]}]}]},
        "scrape_configs": [
            {
                "job_name": "crawlops",
                "metrics_path": "/crawl-ops-metrics/metrics",
                "authorization": {"credentials_file": str(home / "metrics-token")},
                "static_configs": [{"targets": [f"127.0.0.1:{api_port}"]}],
            },
            {"job_name": "airflow-statsd", "static_configs": [{"targets": [f"127.0.0.1:{STATSD_WEB_PORT}"]}]},
        ],
    }


def alertmanager_config() -> dict[str, Any]:
    """The shipped routing tree, its webhooks sent to the local receiver (path: the receiver's
    name) and its waits shortened to the local stack's pace."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    config["route"].update(group_wait=GROUP_WAIT, group_interval=GROUP_INTERVAL)
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"http://127.0.0.1:{RECEIVER_PORT}/{receiver['name']}"
    return config


def ready(url: str) -> bool:
    import requests

    return requests.get(url, timeout=3).status_code == 200


def prepare(home: Path, api_port: int) -> list[tuple[str, list[str]]]:
    """Write the configurations under ``<home>/observability``; the processes to start, by name
    (``crawlops_dev.stack.start_observability`` starts them and waits for ``readiness()``)."""
    missing = [b for b in ("prometheus", "prometheus-alertmanager") if not shutil.which(b)]
    if missing:
        raise RuntimeError(f"{' and '.join(missing)} missing: bash scripts/bootstrap.sh installs them")
    base = home / "observability"
    base.mkdir(parents=True, exist_ok=True)
    token(home)
    (base / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(home, api_port), sort_keys=False))
    (base / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(), sort_keys=False))
    # Every start begins clean: no series, silences or notification log of an earlier run.
    for data in ("prometheus-data", "alertmanager-data"):
        shutil.rmtree(base / data, ignore_errors=True)
    (home / "alerts-received.jsonl").unlink(missing_ok=True)
    python = sys.executable
    return [
        ("alert-receiver", [python, "-m", "crawlops_dev.alert_receiver", "--port", str(RECEIVER_PORT),
                            "--home", str(home)]),
        ("statsd-exporter", [python, "-m", "crawlops_dev.statsd_exporter", "--statsd-port", str(STATSD_PORT),
                             "--web-port", str(STATSD_WEB_PORT)]),
        ("alertmanager", ["prometheus-alertmanager", f"--config.file={base / 'alertmanager.yml'}",
                          f"--storage.path={base / 'alertmanager-data'}",
                          f"--web.listen-address=127.0.0.1:{ALERTMANAGER_PORT}", "--cluster.listen-address="]),
        ("prometheus", ["prometheus", f"--config.file={base / 'prometheus.yml'}",
                        f"--storage.tsdb.path={base / 'prometheus-data'}",
                        f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}", "--storage.tsdb.retention.time=2d"]),
    ]  # fmt: skip


def facts() -> dict[str, str]:
    return {
        "prometheus_url": f"http://127.0.0.1:{PROMETHEUS_PORT}",
        "alertmanager_url": f"http://127.0.0.1:{ALERTMANAGER_PORT}",
        "receiver_url": f"http://127.0.0.1:{RECEIVER_PORT}",
        "statsd_metrics_url": f"http://127.0.0.1:{STATSD_WEB_PORT}/metrics",
    }


def readiness() -> list[tuple[str, str]]:
    """(what, URL answering 200 once it is up) of each process."""
    found = facts()
    return [
        ("Prometheus", found["prometheus_url"] + "/-/ready"),
        ("Alertmanager", found["alertmanager_url"] + "/-/ready"),
        ("the alert receiver", found["receiver_url"] + "/received"),
        ("the StatsD exporter", found["statsd_metrics_url"]),
    ]


def summary(facts: dict[str, Any]) -> str:
    return (
        f"Prometheus {facts['prometheus_url']} (rules: deploy/prometheus/crawlops-rules.yml), "
        f"Alertmanager {facts['alertmanager_url']}, webhook receiver {facts['receiver_url']}/received, "
        f"Airflow's StatsD metrics {facts['statsd_metrics_url']}"
    )
