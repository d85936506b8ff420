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
