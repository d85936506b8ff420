# Two commands matter: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python

# The demo's Airflow home, connections and database (the tests use their own, see tests/conftest.py).
export AIRFLOW_HOME ?= $(ROOT)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(ROOT)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(ROOT)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export CRAWLOPS_MYSQL_URL ?= mysql://crawlops:crawlops@127.0.0.1:3306/crawl
export CRAWLOPS_REDIS_DB ?= 1
export AIRFLOW_CONN_CRAWL_MYSQL ?= {"conn_type":"mysql","host":"127.0.0.1","port":3306,"login":"crawlops","password":"crawlops","schema":"crawl","extra":{"charset":"utf8mb4"}}
# PROMETHEUS=1 (make demo / make cluster): Prometheus, Alertmanager, a webhook receiver and a
# StatsD exporter beside the stack (tools/crawlops_dev/observability.py).
export CRAWLOPS_PROMETHEUS ?= $(PROMETHEUS)
export AIRFLOW_CONN_CRAWL_REDIS ?= {"conn_type":"redis","host":"127.0.0.1","port":6379,"extra":{"db":$(CRAWLOPS_REDIS_DB)}}

.PHONY: help venv services schema demo demo-once cluster cluster-test stop status e2e docs docs-build bench bench-dispatch-10m bench-scale bench-history soak test lint format lock clean

help:
	@echo "make demo      - .venv, MariaDB, Redis, schema, demo config, simulated crawlers and Airflow (UI on :8080)"
	@echo "make cluster   - the distributed deployment natively: PostgreSQL, Celery (2 workers), scheduler, ... (UI on :8080)"
	@echo "                 PROMETHEUS=1 (also for make demo): Prometheus :9090, Alertmanager :9093 with the shipped rules"
	@echo "make cluster-test - start the cluster, kill a Celery worker mid-task, backfill 6 hours, the watchdog alert, stop"
	@echo "make stop      - stop what make demo or make cluster started"
	@echo "make demo-once - in-process: one dispatch run, a simulated crawl, one supervision run, printed"
	@echo "make test      - lint + the whole test suite against the local MariaDB and Redis"
	@echo "make docs      - the documentation site on :8000 (MkDocs Material; make test builds it strict)"
	@echo "make e2e       - start the stack, drive the UI in headless Chromium, stop"
	@echo "make bench     - benchmarks against floors measured in the same run (about 7 minutes)"
	@echo "make bench-dispatch-10m - dispatch of 10M elements in one window against its floor, RSS per element (about 30 min)"
	@echo "make bench-scale - one manifest day: batched DELETE vs DROP PARTITION at 2M and 20M rows; capacity (8-13 min)"
	@echo "make bench-history - the checks at 1, 7 and 30 days of 1M elements a day (about 12 minutes)"
	@echo "make soak      - a full day at 100k elements an hour through the simulator"
	@echo "make schema - apply pending schema migrations to the demo database (python -m crawlops.migrations)"
	@echo "make lock   - re-resolve requirements.lock from requirements.txt"

$(VENV)/.installed: requirements.lock pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh

venv: $(VENV)/.installed

services:
	bash scripts/services.sh

schema: venv services
	$(PY) -m crawlops.migrations

demo: venv services
	$(PY) -m crawlops_dev.stack start

# CeleryExecutor with a PostgreSQL metadata database and a broker Redis on :6380, every component
# its own process group under .airflow-cluster (tools/crawlops_dev/cluster.py).
cluster: venv services
	bash scripts/bootstrap.sh --cluster
	bash scripts/cluster-services.sh
	$(PY) -m crawlops_dev.cluster start

# The tests against the running cluster; the cluster is stopped whatever the outcome.
cluster-test: venv services
	bash scripts/bootstrap.sh --cluster
	bash scripts/cluster-services.sh
	$(PY) -m crawlops_dev.cluster stop >/dev/null
	CRAWLOPS_PROMETHEUS=1 $(PY) -m crawlops_dev.cluster start && $(VENV)/bin/pytest -m cluster -v -s tests/cluster; \
		status=$$?; $(PY) -m crawlops_dev.cluster stop; exit $$status

stop:
	$(PY) -m crawlops_dev.stack stop
	$(PY) -m crawlops_dev.cluster stop

status:
	$(PY) -m crawlops_dev.stack status
	$(PY) -m crawlops_dev.cluster status

demo-once: venv services
	$(PY) -m crawlops_dev.demo run

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: venv services lint docs-build
	$(VENV)/bin/pytest

# The documentation site (mkdocs.yml, docs/): built strict (a broken link or anchor fails) in
# make test; served with live reload on :8000 by make docs.
docs-build: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 0.0.0.0:8000

# The stack is stopped whatever the outcome; the screenshots stay in .airflow/e2e/.
e2e: venv services
	bash scripts/bootstrap.sh --browser
	$(PY) -m crawlops_dev.stack stop >/dev/null
	$(PY) -m crawlops_dev.stack start && $(VENV)/bin/pytest -m e2e tests/e2e; \
		status=$$?; $(PY) -m crawlops_dev.stack stop; exit $$status

# Each figure against a floor measured in the same run; JSON in bench/results/, table at the end.
bench: venv services
	$(PY) -m bench.dispatch_bench --keywords 20000 --pages 5
	$(PY) -m bench.dispatch_bench --keywords 200000 --pages 5 --repeat 1
	$(PY) -m bench.dispatch_bench --keywords 300000 --pages 5 --repeat 1 --mixed
	$(PY) -m bench.validation_bench --rows 1000000
	$(PY) -m bench.validation_bench --rows 10000000
	$(PY) -m bench.health_bench --sizes 100000:200 1000000:2000
	$(PY) -m bench.parse_bench --repeat 10
	$(PY) -m bench.dashboard_bench
	$(PY) -m bench.worker_bench
	$(PY) -m bench.objects_bench
	$(PY) -m bench.report

# 10M elements in one window (2M config rows x 5 pages), one run of each: too long for make bench.
# Prints the RSS after planning (the config rows) and what record and push add beyond it, to
# compare with the 1M run of make bench; about 3 GB of manifest in the bench database while it runs.
bench-dispatch-10m: venv services
	$(PY) -m bench.dispatch_bench --keywords 2000000 --pages 5 --repeat 1

# Deleting one day of a 20M-row manifest (and of a 2M one, to see the scaling): batched DELETE
# against DROP PARTITION, plus bytes per element in Redis and per row in MySQL. Its own
# database (crawlops_scale) and Redis db 6; 8-13 minutes on 2 cores and 12 GB of disk while it
# runs. 100M rows would take 30-45 minutes to fill here: the per-day figures are extrapolated.
bench-scale: venv
	CRAWLOPS_DATABASES=crawlops_scale bash scripts/services.sh
	$(PY) -m bench.scale_bench --rows 20000000 --also-tenth --redis-elements 1000000 --result-rows 1000000

# Do the 5-minute and hourly checks stay flat as history grows? 1, 7 and 30 days of 1M elements a day
# (30M manifest rows at the end); smaller: make bench-history HISTORY_ARGS="--elements-per-day 300000".
bench-history: venv services
	$(PY) -m bench.history_bench $(HISTORY_ARGS)

# make test runs the same test scaled down (6 hours x 1,000 elements).
soak: venv services
	SOAK_HOURS=24 SOAK_KEYWORDS=20000 SOAK_RECORD=1 $(VENV)/bin/pytest tests/reliability/test_soak.py -v -s

lock:
	uv pip compile requirements.txt --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--no-header -q -o requirements.lock

clean:
	rm -rf .airflow .airflow-test .pytest_cache .ruff_cache .mypy_cache
