"""`make cluster`: the distributed deployment, natively on one machine, no containers.

    python -m crawlops_dev.cluster start    # every component below; waits for both DAGs green on Celery
    python -m crawlops_dev.cluster stop     # stops what start started (make stop does this too)
    python -m crawlops_dev.cluster status   # what runs, and its memory
    python -m crawlops_dev.cluster restart-worker N

What runs, each as its own process group under ``$CRAWLOPS_CLUSTER_HOME`` (default
``.airflow-cluster``), the way it would run on separate machines:

- PostgreSQL as Airflow's metadata database (the machine's server; ``scripts/cluster-services.sh``
  starts it and creates the ``airflow`` role and database);
- a broker Redis of its own on ``CRAWLOPS_BROKER_PORT`` (6380), apart from the crawl queues;
- api-server, scheduler, dag-processor, triggerer;
- two Celery workers, ``worker-1`` and ``worker-2``: each listens on the shared ``default`` queue
  and on a queue named after itself (``queue="worker-2"`` pins a task to it), records its own
  name as the task instances' hostname and serves its logs on its own port;
- the simulated crawler fleet (``crawlops.harness.simulator``) against the crawl MySQL and Redis;
- with ``PROMETHEUS=1`` (always in ``make cluster-test``): Prometheus, Alertmanager, a webhook
  receiver and a StatsD exporter (``crawlops_dev.observability``). The API server serves
  ``/crawl-ops-metrics/metrics`` (its token in ``metrics-token``) and every component sends
  Airflow's own metrics as StatsD, with or without them.

Every component is configured only through the environment (``cluster_env``), as it would be
on another machine; ``cluster.json`` in the home says where everything is, for the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawlops_dev import observability, stack

ROOT = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("CRAWLOPS_CLUSTER_HOME", ROOT / ".airflow-cluster")).resolve()
PORT = int(os.environ.get("CRAWLOPS_UI_PORT", "8080"))
URL = f"http://localhost:{PORT}"
BROKER_PORT = int(os.environ.get("CRAWLOPS_BROKER_PORT", "6380"))
PG_URL = os.environ.get(
    "CRAWLOPS_CLUSTER_PG_URL", "postgresql+psycopg2://airflow:airflow@127.0.0.1:5432/airflow_crawlops"
)
WORKERS = ("worker-1", "worker-2")
# Each worker serves its task logs on a port of its own: worker-1 on 8795, worker-2 on 8796
# (Airflow's defaults, 8793 for a worker and 8794 for the triggerer, stay free).
LOG_SERVER_PORT = 8795
# A task instance whose worker died is failed (and retried) after this many seconds without
# a heartbeat; Airflow's default is 300.
HEARTBEAT_TIMEOUT = int(os.environ.get("CRAWLOPS_HEARTBEAT_TIMEOUT", "60"))


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the Celery workers: the worker's own name, so the task
    instances say which worker ran them even when both run on one machine."""
    return os.environ.get("CRAWLOPS_WORKER_NAME") or socket.getfqdn()


def _secrets() -> dict[str, str]:
    """The secrets every component must share (JWT signing, connection encryption), made once."""
    path = HOME / "secrets.json"
    if not path.exists():
        from cryptography.fernet import Fernet

        path.write_text(json.dumps({"jwt": secrets.token_urlsafe(64), "fernet": Fernet.generate_key().decode()}))
        path.chmod(0o600)
    return json.loads(path.read_text())


# Where the crawl data lives, as ``start`` found it in the environment (the Makefile's defaults or
# the user's): kept in the home, so a worker started later (restart-worker, a test) joins the
# same MySQL and Redis whatever its own environment says.
CRAWL_SETTINGS = (
    "AIRFLOW_CONN_CRAWL_MYSQL",
    "AIRFLOW_CONN_CRAWL_REDIS",
    "CRAWLOPS_MYSQL_URL",
    "CRAWLOPS_REDIS_URL",
    "CRAWLOPS_REDIS_DB",
    "CRAWLOPS_TIMEZONE",
)


def _crawl_settings() -> dict[str, str]:
    path = HOME / "crawl-env.json"
    if not path.exists():
        HOME.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({name: os.environ[name] for name in CRAWL_SETTINGS if name in os.environ}))
        path.chmod(0o600)
    return json.loads(path.read_text())


def cluster_env(worker: int | None = None) -> dict[str, str]:
    """The environment of every component; ``worker`` (0-based) adds a Celery worker's own settings."""
    keys = _secrets()
    pg = PG_URL.split("://", 1)[1]
    env = {
        **stack.airflow_env(),
        **_crawl_settings(),
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": PG_URL,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{BROKER_PORT}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{pg}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__API__PORT": str(PORT),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{URL}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt"],
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(HOME / "passwords.json"),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        **observability.airflow_env(HOME),
    }
    if worker is not None:
        env["CRAWLOPS_WORKER_NAME"] = WORKERS[worker]
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "crawlops_dev.cluster.worker_hostname"
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(LOG_SERVER_PORT + worker)
    return env


def _airflow() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def _spawn_worker(index: int) -> int:
    name = WORKERS[index]
    command = [_airflow(), "celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", f"default,{name}"]
    return stack._spawn(name, command, env=cluster_env(index), home=HOME)


AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def start_component(name: str) -> int:
    """Start an Airflow component (``AIRFLOW_COMPONENTS``) of the cluster, after it was stopped."""
    if name in stack._running(HOME):
        raise RuntimeError(f"{name} runs already")
    return stack._spawn(name, [_airflow(), name], env=cluster_env(), home=HOME)


def stop_component(name: str, timeout: float = 60) -> None:
    """SIGTERM a component's process group and wait until all of it is gone (SIGKILL after ``timeout``)."""
    pid = stack._running(HOME)[name]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while stack._session_members({pid}) and time.monotonic() < deadline:
        stack._alive(pid)  # reaped when it is ours
        time.sleep(0.5)
    for member in stack._session_members({pid}):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    stack._alive(pid)
    (HOME / "pids" / f"{name}.pid").unlink(missing_ok=True)


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _broker_up() -> bool:
    import redis

    return bool(redis.Redis(host="127.0.0.1", port=BROKER_PORT, socket_timeout=2).ping())


def _crawl_redis_url() -> str:
    extra = json.loads(_crawl_settings().get("AIRFLOW_CONN_CRAWL_REDIS", "{}"))
    host, port = extra.get("host", "127.0.0.1"), extra.get("port", 6379)
    return f"redis://{host}:{port}/{extra.get('extra', {}).get('db', 1)}"


def _all_alive(started: list[str]) -> bool:
    return stack.all_alive(HOME, started)


def worker_tasks(api: stack.Api, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The run's task instances (id, state, try number, hostname)."""
    found = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]
    return [{k: ti.get(k) for k in ("task_id", "state", "try_number", "hostname", "queue", "executor")} for ti in found]


def start() -> int:
    """Start everything, wait for both DAGs' first runs; whatever fails, nothing is left running."""
    if stack._running(HOME):
        print(f"already running: {stack._running(HOME)} (make stop first)")
        return 1
    ports = [PORT, BROKER_PORT, *(LOG_SERVER_PORT + i for i in range(len(WORKERS)))]
    if observability.wanted():
        ports += [observability.PROMETHEUS_PORT, observability.ALERTMANAGER_PORT, observability.RECEIVER_PORT,
                  observability.STATSD_WEB_PORT]  # fmt: skip
    if taken := [port for port in ports if _port_taken(port)]:
        print(f"port(s) {taken} taken (make stop, or set CRAWLOPS_UI_PORT / CRAWLOPS_BROKER_PORT)")
        return 1
    try:
        return _start()
    except BaseException:
        stack.stop(HOME)
        raise


def _facts(watching: dict[str, Any]) -> dict[str, Any]:
    """Where everything is, for the tests (``cluster.json``)."""
    return {
        "url": URL,
        "password": stack.PASSWORD,
        "mysql_url": _crawl_settings().get("CRAWLOPS_MYSQL_URL", "mysql://root@127.0.0.1:3306/crawl"),
        "redis_url": _crawl_redis_url(),
        "pg_url": PG_URL,
        "broker_port": BROKER_PORT,
        "workers": list(WORKERS),
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "timezone": _crawl_settings().get("CRAWLOPS_TIMEZONE", "UTC"),
        "metrics_token_file": str(HOME / "metrics-token"),
        **watching,
    }


def _broker_and_metadata() -> None:
    """The broker Redis up, Airflow's metadata database migrated."""
    broker = ["redis-server", "--bind", "127.0.0.1", "--port", str(BROKER_PORT), "--save", "", "--appendonly", "no"]
    stack._spawn("broker", broker, env=cluster_env(), home=HOME)
    stack._wait("broker Redis", _broker_up, timeout=30, every=0.5, home=HOME)
    with (HOME / "db-migrate.log").open("w") as log:
        migrated = subprocess.run(  # noqa: S603 - our own venv's airflow
            [_airflow(), "db", "migrate"], env=cluster_env(), stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if migrated.returncode:
        raise stack.Died(f"airflow db migrate failed; see {HOME}/db-migrate.log")


def _start() -> int:
    from crawlops.db import connect
    from crawlops.migrations import migrate
    from crawlops_dev.demo import load_demo_config

    started = time.monotonic()
    (HOME / "pids").mkdir(parents=True, exist_ok=True)
    (HOME / "crawl-env.json").unlink(missing_ok=True)  # this start's environment decides
    os.environ.update(_crawl_settings())
    (HOME / "passwords.json").write_text(json.dumps(stack.PASSWORDS))
    _broker_and_metadata()
    conn = connect()
    migrate(conn)
    loaded = load_demo_config(conn)
    stack._seed_history(conn)  # the demo's 48 hours, so the first view has history (skipped when seeded)
    conn.close()
    print(
        f"metadata on {urlsplit(PG_URL).hostname}:{urlsplit(PG_URL).port}; crawl schema applied; "
        f"demo config: {loaded or 'already there'}"
    )
    watching = stack.start_observability(HOME, PORT, cluster_env()) if observability.wanted() else {}
    for name in AIRFLOW_COMPONENTS:
        start_component(name)
    for index in range(len(WORKERS)):
        _spawn_worker(index)
    simulator = [sys.executable, "-m", "crawlops.harness.simulator", "--workers", "2", "--elements-per-second", "5"]
    stack._spawn("simulator", simulator, env=cluster_env(), home=HOME)
    stack.start_channels(HOME, cluster_env())
    facts = _facts(watching)
    (HOME / "cluster.json").write_text(json.dumps(facts, indent=2))
    print(f"Airflow (CeleryExecutor) starting on {URL}; logs in {HOME}/*.log ...", flush=True)
    components = [*stack._running(HOME)]
    stack._wait("Airflow API", lambda: _all_alive(components) or stack._healthy(URL), timeout=300, home=HOME)
    api = stack._wait("login", lambda: stack.Api(URL), timeout=60, home=HOME)
    for dag_id in stack.DAG_IDS:
        stack._wait(
            f"{dag_id} parsed",
            lambda dag_id=dag_id: _all_alive(components) or api.get(f"/dags/{dag_id}"),
            timeout=240,
            home=HOME,
        )
        api.unpause(dag_id)
    runs = {
        "amazon_task_dispatch": api.trigger("amazon_task_dispatch", {}),
        "amazon_data_supervision": api.trigger("amazon_data_supervision", {"run_hourly": True}),
    }
    green = True
    for dag_id, run_id in runs.items():
        state = stack._wait(
            f"{dag_id} run {run_id}",
            lambda dag_id=dag_id, run_id=run_id: (
                _all_alive(components) or ((s := api.run_state(dag_id, run_id)) in ("success", "failed") and s)
            ),
            timeout=600,
            home=HOME,
        )
        hosts: dict[str, int] = {}
        for ti in worker_tasks(api, dag_id, run_id):
            if ti["hostname"]:
                hosts[ti["hostname"]] = hosts.get(ti["hostname"], 0) + 1
        print(f"  {dag_id}: {run_id} {state}; task instances per worker: {hosts}", flush=True)
        green = green and state == "success"
    facts["first_runs"] = runs
    (HOME / "cluster.json").write_text(json.dumps(facts, indent=2))
    print(f"\nAirflow UI: {URL}  (login {stack.USER} / {stack.PASSWORD})")
    print(f"Crawl Ops page: {URL}/plugin/crawl-ops")
    print(
        f"Celery workers: {', '.join(WORKERS)} (queues default + their own name); broker redis://127.0.0.1:{BROKER_PORT}"
    )
    if watching:
        print(observability.summary(watching))
    print(f"time to green: {time.monotonic() - started:.0f} s")
    print(f"memory of the whole stack: {stack.memory_mb(HOME):.0f} MB ({_memory_by_component()})")
    print("make stop stops it all")
    return 0 if green else 1


def _memory_by_component() -> str:
    parts = []
    for name, pid in stack._running(HOME).items():
        parts.append(f"{name} {sum(stack._session_members({pid}).values()) / 1024:.0f}")
    return ", ".join(parts) + " MB"


def kill_worker(name: str) -> list[int]:
    """SIGKILL every process of a worker's session, as if its machine died: the Celery worker, its
    pool processes and the task processes they run (each in a process group of its own)."""
    pid = stack._running(HOME)[name]
    members = [pid, *(member for member in stack._session_members({pid}) if member != pid)]
    for member in members:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    stack._alive(pid)  # reaped when it is ours
    return members


def restart_worker(number: int) -> int:
    """Start worker ``number`` (1-based) again, after it was stopped or killed."""
    index = number - 1
    running = stack._running(HOME)
    if WORKERS[index] in running:
        print(f"{WORKERS[index]} runs already (pid {running[WORKERS[index]]})")
        return 1
    print(f"{WORKERS[index]} started: pid {_spawn_worker(index)}")
    return 0


def stop() -> int:
    return stack.stop(HOME)


def status() -> int:
    running = stack._running(HOME)
    print(f"running: {running or 'nothing'}; memory {stack.memory_mb(HOME):.0f} MB")
    if running:
        print(_memory_by_component())
    return 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "restart-worker":
        return restart_worker(int(argv[2]))
    commands = {"start": start, "stop": stop, "status": status}
    if command not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[command]()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
