#!/usr/bin/env bash
# Start local MariaDB and Redis when they are down, then make sure the crawl database
# user and databases exist. Used by `make demo`, `make test` and CI.
set -euo pipefail

MYSQL_USER=${CRAWLOPS_MYSQL_USER:-crawlops}
MYSQL_PASSWORD=${CRAWLOPS_MYSQL_PASSWORD:-crawlops}
DATABASES=${CRAWLOPS_DATABASES:-"crawl crawlops_test crawlops_bench crawlops_bench_worker crawlops_check crawlops_history"}

mysql_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -u root status >/dev/null 2>&1 || mysqladmin status >/dev/null 2>&1; }
wait_for() { # name, check command
  for _ in $(seq 1 60); do
    if eval "$2"; then return 0; fi
    sleep 1
  done
  echo "$1 did not come up" >&2
  return 1
}

if ! mysql_up; then
  echo "starting MariaDB"
  install -d -o mysql -g mysql /run/mysqld 2>/dev/null || true
  daemon=/usr/sbin/mariadbd
  [ -x "$daemon" ] || daemon=/usr/sbin/mysqld
  start-stop-daemon --start --oknodo --background --exec "$daemon"
  wait_for MariaDB mysql_up
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_for Redis "redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1"
fi

# As root, over the local socket (Debian's default) or TCP with the empty root password.
sql=""
for db in $DATABASES; do
  sql+="CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
done
for host in localhost 127.0.0.1; do
  sql+="CREATE USER IF NOT EXISTS '$MYSQL_USER'@'$host' IDENTIFIED BY '$MYSQL_PASSWORD';"
  for db in $DATABASES; do
    sql+="GRANT ALL PRIVILEGES ON \`$db\`.* TO '$MYSQL_USER'@'$host';"
  done
done
mysql -u root -e "$sql" 2>/dev/null || mysql --protocol=tcp -h 127.0.0.1 -u root -e "$sql"
echo "MariaDB and Redis are up; databases: $DATABASES"
