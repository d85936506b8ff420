#!/usr/bin/env bash
# Prepare a Debian machine (as root) for this package: the system packages mysqlclient
# builds against, MariaDB, Redis and the compose CLI when they are missing, then the Python
# environment in .venv from requirements.lock. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

need=()
# --browser: also Debian's chromium, for the browser test (make e2e).
[ "${1:-}" = "--browser" ] && { command -v chromium >/dev/null || need+=(chromium); }
# --cluster: also PostgreSQL, Airflow's metadata database in the distributed deployment (make cluster).
[ "${1:-}" = "--cluster" ] && { command -v pg_ctlcluster >/dev/null || need+=(postgresql); }
command -v pkg-config >/dev/null || need+=(pkg-config)
dpkg -s default-libmysqlclient-dev >/dev/null 2>&1 || need+=(default-libmysqlclient-dev)
[ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ] || need+=(mariadb-server mariadb-client)
command -v redis-server >/dev/null || need+=(redis-server)
# Prometheus and Alertmanager (Debian's packages): make test checks the shipped rules with promtool
# and the routing tree with amtool; make cluster-test (and PROMETHEUS=1) runs both.
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
# The compose CLI that tests/test_compose.py runs (`docker-compose config`: no engine needed).
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${need[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v uv >/dev/null; then
  "$PYTHON" -m pip install --quiet "uv==0.13.9"
fi
UV=$(command -v uv || echo "$PYTHON -m uv")

if [ ! -x .venv/bin/python ]; then
  $UV venv --quiet --python "$PYTHON" .venv
fi
$UV pip sync --quiet --python .venv/bin/python requirements.lock
$UV pip install --quiet --python .venv/bin/python --no-deps -e .
touch .venv/.installed
echo "python environment ready in .venv"
