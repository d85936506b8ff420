"""The distributed deployment, running: CeleryExecutor, two workers, PostgreSQL metadata.

Run by `make cluster-test`, which starts the cluster (`make cluster`), runs this file and stops
it. Where everything is comes from ``$CRAWLOPS_CLUSTER_HOME/cluster.json``, written by
``crawlops_dev.cluster start``: the tests' own conftest points the package at the test
databases, this file talks to the cluster's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from crawlops import objects
from crawlops.model import crawl_object_of

pytestmark = pytest.mark.cluster

HOME = Path(os.environ.get("CRAWLOPS_CLUSTER_HOME", Path(__file__).resolve().parents[2] / ".airflow-cluster"))
DISPATCH, SUPERVISION = "amazon_task_dispatch", "amazon_data_supervision"
TERMINAL = ("success", "failed")


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    info = json.loads((HOME / "cluster.json").read_text())
    from crawlops_dev.stack import Api

    info["api"] = Api(info["url"], info["password"])
    return info


@pytest.fixture(scope="module")
def crawl_db(cluster):
    from crawlops.db import connect

    conn = connect(cluster["mysql_url"])
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def crawl_redis(cluster):
    import redis

    return redis.Redis.from_url(cluster["redis_url"])


def task_instances(api, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    return api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]


def wait_for_runs(api, runs: dict[str, str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        states = {dag_id: api.run_state(dag_id, run_id) for dag_id, run_id in runs.items()}
        if all(state in TERMINAL for state in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(3)


def hour_floor(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def window_tasks(conn, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    conn.commit()  # a fresh snapshot
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, element_count, task_status FROM amazon_task_information "
            "WHERE interval_start >= %s AND interval_start < %s ORDER BY task_id",
            (start.replace(tzinfo=None), end.replace(tzinfo=None)),
        )
        return list(cur.fetchall())


def assert_dispatched_once(conn, crawl_redis, task_ids: list[str]) -> None:
    """Each task's manifest holds its element count of distinct elements, its Redis set holds
    only manifest elements, and no element was answered twice (a second push would hand the
    fleet taken elements again)."""
    with conn.cursor() as cur:
        for task_id in task_ids:
            cur.execute(
                "SELECT t.element_count, COUNT(e.element), COUNT(DISTINCT e.element) FROM amazon_task_information t "
                "LEFT JOIN amazon_task_element e ON e.task_id = t.task_id WHERE t.task_id = %s GROUP BY t.task_id",
                (task_id,),
            )
            count, rows, distinct = cur.fetchone()
            assert count == rows == distinct, (task_id, count, rows, distinct)
            cur.execute("SELECT element FROM amazon_task_element WHERE task_id = %s", (task_id,))
            manifest = {row[0] for row in cur.fetchall()}
            queued = {m.decode() for m in crawl_redis.smembers(task_id)}
            assert queued <= manifest, (task_id, sorted(queued - manifest)[:3])
            crawl_object = objects.get(crawl_object_of(task_id))  # its results table and key
            key = ", ".join(crawl_object.unique_key)
            cur.execute(
                f"SELECT {key}, COUNT(*) FROM {crawl_object.results_table} "
                f"WHERE task_id = %s GROUP BY {key} HAVING COUNT(*) > 1 LIMIT 3",
                (task_id,),
            )
            assert cur.fetchall() == (), f"{task_id}: result rows answered twice"


def test_both_dags_ran_green_on_the_celery_workers(cluster):
    """The first runs `make cluster` waited for (scheduled runs may be under way beside them)."""
    api = cluster["api"]
    workers = set(cluster["workers"])
    used: set[str] = set()
    for dag_id, run_id in cluster["first_runs"].items():
        assert api.run_state(dag_id, run_id) == "success", (dag_id, run_id)
        ran = [ti for ti in task_instances(api, dag_id, run_id) if ti["state"] == "success"]
        assert ran, dag_id
        for ti in ran:
            assert ti["hostname"] in workers, (dag_id, ti["task_id"], ti["hostname"])
            assert ti["executor"] in (None, "CeleryExecutor"), ti["executor"]
        used |= {ti["hostname"] for ti in ran}
    print(f"task instances ran on: {sorted(used)}")


def running_on_workers(api, runs: dict[str, str], workers: list[str]) -> list[tuple[str, str, int, str]]:
    """(dag id, task id, map index, worker) of every task instance of ``runs`` running on one of
    ``workers`` (the hourly checks are mapped over the crawl objects: one task id, several instances)."""
    return [
        (dag_id, ti["task_id"], ti.get("map_index", -1), ti["hostname"])
        for dag_id, run_id in runs.items()
        for ti in task_instances(api, dag_id, run_id)
        if ti["state"] == "running" and ti["hostname"] in workers
    ]


def test_a_celery_worker_killed_mid_task_is_recovered_by_the_other(cluster, crawl_db, crawl_redis):
    from crawlops_dev.cluster import kill_worker, restart_worker

    api = cluster["api"]
    # An hour no other run dispatches: three days back, away from the demo's 48 hours of history.
    start = hour_floor(dt.datetime.now(dt.UTC)) - dt.timedelta(hours=72)
    runs = {
        DISPATCH: api.trigger(DISPATCH, {"interval_start": start.isoformat()}),
        SUPERVISION: api.trigger(SUPERVISION, {"run_hourly": True}),
    }
    # Kill the worker of the first task seen running. A task takes about 2 s: if it finished
    # between the look and the kill, nothing of it was lost; start the worker again and wait
    # for the next one.
    killed: list[tuple[str, str, str]] = []
    deadline = time.monotonic() + 240
    while not killed and time.monotonic() < deadline:
        seen = running_on_workers(api, runs, cluster["workers"])
        if not seen:
            time.sleep(0.3)
            continue
        worker = seen[0][3]
        kill_worker(worker)
        killed_at = time.monotonic()
        time.sleep(1)  # what had reported its end before the kill shows it now
        killed = [ti for ti in running_on_workers(api, runs, [worker]) if ti in seen]
        if not killed:
            restart_worker(int(worker.rsplit("-", 1)[1]))
            time.sleep(10)
    assert killed, "no task instance was caught running on a worker"
    worker = killed[0][3]
    print(f"killed {worker} while it ran {', '.join(f'{d}.{t}[{m}]' for d, t, m, _ in killed)}")
    try:
        states = wait_for_runs(api, runs, timeout=600)
        recovered = time.monotonic() - killed_at
        assert states == {DISPATCH: "success", SUPERVISION: "success"}, states
        survivor = next(w for w in cluster["workers"] if w != worker)
        for dag_id, task_id, map_index, _ in killed:
            ti = next(
                ti
                for ti in task_instances(api, dag_id, runs[dag_id])
                if (ti["task_id"], ti.get("map_index", -1)) == (task_id, map_index)
            )
            assert ti["try_number"] >= 2, ti
            assert ti["hostname"] == survivor, ti
            tries = ti["try_number"]
            print(f"{dag_id}.{task_id}: try {tries} succeeded on {survivor}, {recovered:.0f} s after the kill")
    finally:
        restart_worker(int(worker.rsplit("-", 1)[1]))  # leave the cluster whole for the next test

    tasks = window_tasks(crawl_db, start, start + dt.timedelta(hours=1))
    assert tasks, f"nothing dispatched for {start}"
    assert len({t[0] for t in tasks}) == len(tasks)
    assert_dispatched_once(crawl_db, crawl_redis, [t[0] for t in tasks])


def test_a_backfill_of_six_hours_gives_six_tasks(cluster, crawl_db, crawl_redis):
    # Six hours four days back, none of them starting a day in the DAG's timezone (a daily task,
    # or on Mondays a weekly one, would join the hourly ones).
    tz = ZoneInfo(cluster["timezone"])
    first = hour_floor(dt.datetime.now(dt.UTC)) - dt.timedelta(hours=96)
    while any((first + dt.timedelta(hours=h)).astimezone(tz).hour == 0 for h in range(6)):
        first -= dt.timedelta(hours=1)
    last = first + dt.timedelta(hours=5)
    from crawlops_dev.cluster import cluster_env

    backfill = subprocess.run(
        [
            str(Path(sys.executable).with_name("airflow")),
            *("backfill", "create", "--dag-id", DISPATCH),
            *("--from-date", first.isoformat(), "--to-date", last.isoformat()),
            *("--reprocess-behavior", "completed"),
        ],
        env=cluster_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr[-2000:]
    api = cluster["api"]
    found: dict[str, str] = {}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        runs = api.get(f"/dags/{DISPATCH}/dagRuns", run_type="backfill", order_by="-run_after", limit=50)["dag_runs"]
        found = {
            run["dag_run_id"]: run["state"]
            for run in runs
            if first <= dt.datetime.fromisoformat(run["data_interval_start"]) <= last
        }
        if len(found) == 6 and all(state in TERMINAL for state in found.values()):
            break
        time.sleep(5)
    assert len(found) == 6, found
    assert set(found.values()) == {"success"}, found

    tasks = window_tasks(crawl_db, first, last + dt.timedelta(hours=1))
    # Retry tasks (<task_id>_fail) of elements the simulated fleet failed may join them.
    # One task per (crawl object, hour): six for each crawl object with hourly config rows.
    dispatched = [task_id for task_id, _, _ in tasks if not task_id.endswith("_fail")]
    per_object = Counter(crawl_object_of(task_id) for task_id in dispatched)
    assert per_object and set(per_object.values()) == {6}, tasks
    assert len(dispatched) == len(set(dispatched)) == 6 * len(per_object), tasks
    assert all(task_id.endswith("_hourly") for task_id in dispatched), tasks
    assert_dispatched_once(crawl_db, crawl_redis, [t[0] for t in tasks])


def test_the_cluster_keeps_its_metadata_in_postgresql_and_its_broker_apart(cluster):
    """Asked of the running servers: the runs are rows of the PostgreSQL metadata database, the
    Celery workers hold connections to the broker Redis, which is not the crawl queues' Redis."""
    import psycopg2
    import redis

    pg = urlsplit(cluster["pg_url"])
    conn = psycopg2.connect(
        host=pg.hostname, port=pg.port or 5432, user=pg.username, password=pg.password, dbname=pg.path.lstrip("/")
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT dag_id, run_id FROM dag_run WHERE run_id = ANY(%s)", (list(cluster["first_runs"].values()),)
            )
            assert {run_id for _, run_id in cur.fetchall()} == set(cluster["first_runs"].values())
    finally:
        conn.close()
    broker = redis.Redis(host="127.0.0.1", port=cluster["broker_port"])
    clients = broker.client_list()
    assert len(clients) >= 1 + len(cluster["workers"]), clients  # this one, and each worker's
    assert cluster["broker_port"] != urlsplit(cluster["redis_url"]).port  # never the crawl queues' Redis
