#!/usr/bin/env bash
# What `make cluster` needs beyond MariaDB and Redis (scripts/services.sh): PostgreSQL as
# Airflow's metadata database, started when it is down, with the `airflow` role and database.
# Safe to run again. Installing the server is scripts/bootstrap.sh --cluster's job.
set -euo pipefail

PG_DB=${CRAWLOPS_CLUSTER_PG_DB:-airflow_crawlops}
PG_USER=${CRAWLOPS_CLUSTER_PG_USER:-airflow}
PG_PASSWORD=${CRAWLOPS_CLUSTER_PG_PASSWORD:-airflow}

if [ -n "${CRAWLOPS_CLUSTER_PG_URL:-}" ]; then
  echo "CRAWLOPS_CLUSTER_PG_URL is set: using that PostgreSQL, nothing started or created here"
  exit 0
fi

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }

if ! pg_up; then
  echo "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 60); do pg_up && break; sleep 1; done
  pg_up || { echo "PostgreSQL did not come up" >&2; exit 1; }
fi

# As the postgres superuser: over TCP where trust auth allows it, else through the local socket.
if psql -w -h 127.0.0.1 -U postgres -d postgres -c "SELECT 1" >/dev/null 2>&1; then
  admin=(psql -w -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
else
  admin=(runuser -u postgres -- psql -d postgres -v ON_ERROR_STOP=1 -qtA)
fi
if [ -z "$("${admin[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" ]; then
  "${admin[@]}" -c "CREATE ROLE \"$PG_USER\" LOGIN PASSWORD '$PG_PASSWORD'"
fi
if [ -z "$("${admin[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]; then
  "${admin[@]}" -c "CREATE DATABASE \"$PG_DB\" OWNER \"$PG_USER\""
fi
echo "PostgreSQL is up; Airflow metadata database: $PG_DB (role $PG_USER)"
