"""The Prometheus side shipped in deploy/: the alert rules pass `promtool check rules` and their
unit tests (`promtool test rules`), and the rules and the Grafana dashboard name only metrics the
package exports (every `Family("crawlops_...")` of crawlops.metrics and the plugin's scrape)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "crawlops-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "crawlops-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "crawlops-dashboard.json"
SOURCES = (ROOT / "include" / "crawlops" / "metrics.py", ROOT / "plugins" / "crawlops_airflow" / "metrics.py")
METRIC = re.compile(r"(?<![/.])\bcrawlops_[a-z0-9_]+\b(?!/)")  # a metric, not a path


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool missing: scripts/bootstrap.sh installs Debian's prometheus package (make venv)"
    return path


def exported() -> set[str]:
    names = set()
    for source in SOURCES:
        names |= set(re.findall(r'Family\(\s*"(crawlops_[a-z0-9_]+)"', source.read_text()))
    return names


def test_the_rules_check_and_their_unit_tests_pass(promtool):
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 11 rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_rules_and_dashboard_name_only_exported_metrics():
    names = exported()
    assert len(names) >= 20 and "crawlops_dag_last_success_age_seconds" in names
    in_rules = set(METRIC.findall(RULES.read_text()))
    assert in_rules and in_rules <= names, sorted(in_rules - names)
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    in_dashboard = {m for e in exprs for m in METRIC.findall(e)}
    assert in_dashboard <= names, sorted(in_dashboard - names)
    assert {p["id"] for p in dashboard["panels"]} == set(range(1, len(dashboard["panels"]) + 1))
    # every rule routes: a severity, and the crawl object where the series has one
    for rule in re.findall(r"- alert: (\w+)", RULES.read_text()):
        assert rule.startswith("Crawlops"), rule
    assert RULES.read_text().count("severity:") == 11


def test_the_alertmanager_tree_and_the_local_stacks_configs_check(tmp_path):
    from crawlops_dev import observability

    amtool = shutil.which("amtool")
    assert amtool, "amtool missing: scripts/bootstrap.sh installs Debian's prometheus-alertmanager (make venv)"
    shipped = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
    local = tmp_path / "alertmanager.yml"
    local.write_text(yaml.safe_dump(observability.alertmanager_config()))
    for config in (shipped, local):
        checked = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    # the local stack runs the shipped routes, only its receivers' URLs and waits differ
    tree = yaml.safe_load(local.read_text())
    assert [r["receiver"] for r in tree["route"]["routes"]] == [
        r["receiver"] for r in yaml.safe_load(shipped.read_text())["route"]["routes"]
    ]
    assert tree["receivers"][0]["webhook_configs"][0]["url"].endswith(f":{observability.RECEIVER_PORT}/platform-oncall")
    (tmp_path / "metrics-token").write_text("t")
    prometheus = tmp_path / "prometheus.yml"
    prometheus.write_text(yaml.safe_dump(observability.prometheus_config(tmp_path, 8080)))
    checked = subprocess.run([shutil.which("promtool") or "promtool", "check", "config", str(prometheus)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert checked.returncode == 0 and "SUCCESS: 11 rules found" in checked.stdout, checked.stdout + checked.stderr


def test_airflows_statsd_lines_become_labelled_series():
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from crawlops_dev.statsd_exporter import Store, load_rules

    store = Store(load_rules())
    store.feed(
        "airflow.ti.finish,dag_id=amazon_data_supervision,task_id=task_health,state=success:1|c\n"
        "airflow.ti.finish,dag_id=amazon_data_supervision,task_id=task_health,state=success:1|c|@0.5\n"
        "airflow.ti.finish,dag_id=amazon_data_supervision,task_id=fleet,state=failed:1|c\n"
        "airflow.scheduler_heartbeat:1|c\n"
        "airflow.dagrun.duration.success,dag_id=amazon_task_dispatch:1500|ms\n"
        "airflow.executor.open_slots:6|g\nairflow.executor.open_slots:-2|g\n"
        "airflow.executor.open_slots.CeleryExecutor:3|g\n"
        "airflow.pool.open_slots.default_pool:128|g\n"
        "airflow.ti.queued.default.amazon_task_dispatch.push_tasks:2|g\n"
        "airflow.operator_successes:1|c|#dag_id:amazon_task_dispatch,operator_name:RetryTaskOperator\n"
        "not a statsd line\n"
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(store)
    series = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    finish = (("dag_id", "amazon_data_supervision"), ("state", "success"), ("task_id", "task_health"))
    assert series[("airflow_ti_finish_total", finish)] == 3.0  # 1 + 1 sampled at half the rate
    failed = (("dag_id", "amazon_data_supervision"), ("state", "failed"), ("task_id", "fleet"))
    assert series[("airflow_ti_finish_total", failed)] == 1.0
    assert series[("airflow_scheduler_heartbeat_total", ())] == 1.0
    duration = (("dag_id", "amazon_task_dispatch"),)
    assert series[("airflow_dagrun_duration_success_sum", duration)] == 1.5
    assert series[("airflow_dagrun_duration_success_count", duration)] == 1.0
    # the total beside the per-executor series: an empty label is an absent one to Prometheus
    assert series[("airflow_executor_open_slots", (("executor", ""),))] == 4.0
    assert series[("airflow_executor_open_slots", (("executor", "CeleryExecutor"),))] == 3.0
    assert series[("airflow_pool_open_slots", (("pool", "default_pool"),))] == 128.0
    queued = (("dag_id", "amazon_task_dispatch"), ("queue", "default"), ("task_id", "push_tasks"))
    assert series[("airflow_ti_queued_per_task", queued)] == 2.0
    ok = (("dag_id", "amazon_task_dispatch"), ("operator_name", "RetryTaskOperator"))
    assert series[("airflow_operator_successes_total", ok)] == 1.0  # DogStatsD tags too
    assert series[("statsd_exporter_lines_invalid", ())] == 1.0
