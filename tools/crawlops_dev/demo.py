"""`make demo` / `make schema`: dispatch one real window on this machine, crawl it with the
simulated fleet, supervise it, and show the result.

    python -m crawlops_dev.demo schema   # apply the DDL to the demo database
    python -m crawlops_dev.demo run      # schema, demo config, dispatch, simulated crawl, supervision

The runs go through the real DAGs (``dag.test()`` in a child process, logs kept under
``$AIRFLOW_HOME/demo-runs``) against the ``crawl_mysql`` / ``crawl_redis`` connections.
The simulated crawl is timestamped inside the dispatched hour, so that the supervision run
closing that hour has the hour's data to judge.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from crawlops.crawl_config import STARTER_CONFIG, load_if_empty, read_rows
from crawlops.db import connect
from crawlops.migrations import current_version, migrate
from crawlops.model import UTC, last_complete_hour
from crawlops.settings import dag_timezone

# The starter config (a few keywords, plus malformed rows that are skipped with their reasons),
# the same file the compose init step loads: include/config/starter_config.toml.
DEMO_CONFIG = read_rows(STARTER_CONFIG)


def _schema() -> None:
    conn = connect()
    applied = migrate(conn)
    print(f"schema at version {current_version(conn)}; applied now: {', '.join(applied) or 'nothing'}")
    conn.close()


def load_demo_config(conn) -> int:
    return load_if_empty(conn, DEMO_CONFIG)


def _run_dag(dag_id: str, logical_date: dt.datetime, log_path: Path, conf: dict | None = None, **env: str) -> int:
    """Run a DAG once in a child process (Airflow logs to a file, not the terminal)."""
    code = (
        "import datetime as dt, json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "dag = DagBag(dag_folder=sys.argv[1]).get_dag(sys.argv[2])\n"
        "run = dag.test(logical_date=dt.datetime.fromisoformat(sys.argv[3]), run_conf=json.loads(sys.argv[4]))\n"
        "sys.exit(0 if run.state == 'success' else 1)\n"
    )
    airflow = Path(sys.executable).with_name("airflow")
    with log_path.open("w") as log:
        subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=log, stderr=subprocess.STDOUT)
        return subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                os.environ["AIRFLOW__CORE__DAGS_FOLDER"],
                dag_id,
                logical_date.isoformat(),
                json.dumps(conf or {}),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
            env={**os.environ, **env},
        ).returncode


def _print_summary(conn, redis_db: int, window) -> None:
    import redis

    r = redis.Redis(host="127.0.0.1", port=6379, db=redis_db)
    start, end = window.naive()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, task_status, element_count, created_at FROM amazon_task_information "
            "WHERE interval_start = %s AND interval_end = %s ORDER BY task_id",
            (start, end),
        )
        tasks = cur.fetchall()
        print(f"\nwindow {window} ({dag_timezone()} hours)")
        print(f"{'task id':45} {'status':12} {'elements':>8} {'in Redis':>8}")
        for task_id, status, count, _created in tasks:
            print(f"{task_id:45} {status:12} {count:>8} {r.scard(task_id):>8}")
        if tasks:
            cur.execute("SELECT element FROM amazon_task_element WHERE task_id = %s LIMIT 3", (tasks[0][0],))
            print("\nsample elements (Redis set members):")
            for (element,) in cur.fetchall():
                print("  ", element)
        cur.execute("SELECT COUNT(*), COUNT(DISTINCT task_id) FROM amazon_task_element")
        elements, with_manifest = cur.fetchone()
        print(f"\nmanifest: {elements} elements across {with_manifest} tasks in MySQL")


def _simulated_crawl(conn, redis_db: int, window) -> dict[str, int]:
    import random

    import redis

    from crawlops.harness import simulator

    rng = random.Random(window.epoch)
    start = window.start

    def inside_the_hour() -> dt.datetime:
        return start + dt.timedelta(seconds=rng.uniform(0, 3599))

    behaviour = simulator.Behaviour(results_per_page=16, fail_rate=0.05, invalid_rate=0.01)
    r = redis.Redis(host="127.0.0.1", port=6379, db=redis_db)
    return simulator.crawl(conn, r, behaviour=behaviour, rng=rng, clock=inside_the_hour)


def _print_supervision(conn, window) -> None:
    end = window.naive()[1]
    with conn.cursor() as cur:
        cur.execute(
            "SELECT check_name, status, findings FROM amazon_check_run WHERE window_end = %s ORDER BY check_name",
            (end,),
        )
        print(f"\nsupervision of {window}:")
        for check, status, findings in cur.fetchall():
            print(f"  {check:32} {status:8} {findings} findings")
        cur.execute(
            "SELECT level, check_name, title, COALESCE(action_taken, '') FROM amazon_alert "
            "WHERE window_end = %s ORDER BY FIELD(level, 'CRITICAL', 'ERROR', 'WARNING', 'INFO'), id",
            (end,),
        )
        findings = cur.fetchall()
        print("findings:" if findings else "findings: none")
        for level, check, title, action in findings:
            print(f"  {level:8} {check:22} {title}" + (f"\n{'':34}-> {action}" if action else ""))


def _print_report(conn, window) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT details FROM amazon_check_run WHERE check_name = 'daily_report' AND window_end = %s",
            (window.naive()[1],),
        )
        row = cur.fetchone()
    if row:
        details = json.loads(row[0])
        print(f"\ndaily report (the day so far): {details['html']}")
        print(f"  DingTalk: {details['dingtalk']}; stored in amazon_daily_report")


def _run() -> int:
    tz = dag_timezone()
    redis_db = int(os.environ.get("CRAWLOPS_REDIS_DB", "1"))
    conn = connect()
    applied = migrate(conn)
    print(f"schema at version {current_version(conn)}; applied now: {', '.join(applied) or 'nothing'}")
    loaded = load_demo_config(conn)
    print(f"demo config: {loaded} rows loaded" if loaded else "config table already has rows: left as it is")
    window = last_complete_hour(dt.datetime.now(UTC), tz)
    log_dir = Path(os.environ["AIRFLOW_HOME"]) / "demo-runs"
    log_dir.mkdir(parents=True, exist_ok=True)

    log_path = log_dir / f"dispatch-{window.epoch}.log"
    print(f"running amazon_task_dispatch for {window} (log: {log_path}) ...")
    if _run_dag("amazon_task_dispatch", window.end, log_path):
        print(f"the dispatch run failed; see {log_path}", file=sys.stderr)
        return 1
    for line in log_path.read_text().splitlines():
        if "skipped: " in line and "config row" in line and "[crawlops.dispatch]" in line:
            print("  " + line.split("[warning  ]")[-1].split("[crawlops")[0].strip())
    _print_summary(conn, redis_db, window)

    crawled = _simulated_crawl(conn, redis_db, window)
    print(f"\nsimulated crawler fleet: {crawled}")
    log_path = log_dir / f"supervision-{window.epoch}.log"
    print(f"running amazon_data_supervision for the run closing {window.end:%H:%M} (log: {log_path}) ...")
    # The demo hour is small: the volume floor is lowered through the settings override.
    status = _run_dag(
        "amazon_data_supervision",
        window.end,
        log_path,
        {"run_daily": True},  # the day's report so far, on demand
        CRAWLOPS__QUALITY__MIN_RECORDS_PER_HOUR="100",
    )
    _print_supervision(conn, window)
    _print_report(conn, window)
    if status:
        print(f"the supervision run failed; see {log_path}", file=sys.stderr)
        return 1
    print("\nrun `make demo` again: the same window is found dispatched and supervision recomputes the same rows.")
    conn.close()
    return 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "run"
    if command == "schema":
        _schema()
        return 0
    if command == "run":
        return _run()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
