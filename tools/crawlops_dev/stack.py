"""The local stack behind `make demo` / `make stop`: Airflow standalone + the simulated crawler fleet.

    python -m crawlops_dev.stack start    # schema, demo config, simulator, Airflow; waits for both DAGs
    python -m crawlops_dev.stack stop     # stops everything start started, by pid
    python -m crawlops_dev.stack status   # what runs, and its memory

With ``PROMETHEUS=1`` (``CRAWLOPS_PROMETHEUS``) Prometheus and Alertmanager run beside it
(``crawlops_dev.observability``).

Airflow runs with its embedded default metadata database (SQLite) under ``$AIRFLOW_HOME``,
sized for a small machine (``AIRFLOW__CORE__PARALLELISM=4``); the connections come from
the environment (``AIRFLOW_CONN_CRAWL_MYSQL`` / ``AIRFLOW_CONN_CRAWL_REDIS``, set by the
Makefile). Each process group's pid is kept in ``$AIRFLOW_HOME/pids``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from crawlops_dev import channels
from crawlops_dev.story import DEMO_SETTINGS

HOME = Path(os.environ.get("AIRFLOW_HOME", ".airflow")).resolve()
PIDS = HOME / "pids"
PORT = int(os.environ.get("CRAWLOPS_UI_PORT", "8080"))
URL = f"http://localhost:{PORT}"
USER, PASSWORD = "admin", os.environ.get("CRAWLOPS_UI_PASSWORD", "admin")
# A read-only user beside it: sees every page, may not act (the operator actions refuse it).
VIEWER, VIEWER_PASSWORD = "viewer", os.environ.get("CRAWLOPS_VIEWER_PASSWORD", "viewer")
PASSWORDS = {USER: PASSWORD, VIEWER: VIEWER_PASSWORD}
DAG_IDS = ("amazon_task_dispatch", "amazon_data_supervision")


# The demo's simulated crawler fleet: two worker processes on the kit, five elements a second each.
SIMULATOR = [sys.executable, "-m", "crawlops.harness.simulator", "--workers", "2", "--elements-per-second", "5"]


def airflow_env() -> dict[str, str]:
    """Settings for a small machine; the execution API follows the API port."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(HOME),
        "AIRFLOW__API__PORT": str(PORT),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{URL}/execution/",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin,{VIEWER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(HOME / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # The demo's hours are small and its history two days: a lower volume floor, and
        # volume bands from one past point (crawlops_dev.story.DEMO_SETTINGS).
        **{name: os.environ.get(name, value) for name, value in DEMO_SETTINGS.items()},
        **{name: os.environ.get(name, value) for name, value in channels.demo_channels().items()},
        **_observability_env(),
    }


def start_channels(home: Path, env: dict[str, str]) -> int:
    """The receiver standing in for the demo's alert channels (``crawlops_dev.channels``)."""
    command = [sys.executable, "-m", "crawlops_dev.alert_receiver", "--port", str(channels.CHANNELS_PORT),
               "--home", str(home), "--file", channels.CHANNEL_MESSAGES]  # fmt: skip
    return _spawn("channels", command, env=env, home=home)


def _observability_env() -> dict[str, str]:
    """The scrape token and Airflow's StatsD metrics when the demo runs with ``PROMETHEUS=1``."""
    from crawlops_dev import observability

    return observability.airflow_env(HOME) if observability.wanted() else {}


def _spawn(name: str, command: list[str], env: dict[str, str] | None = None, home: Path = HOME) -> int:
    """Start ``command`` in a session of its own, its output in ``home/<name>.log``, its pid in ``home/pids``."""
    log = (home / f"{name}.log").open("ab")
    process = subprocess.Popen(
        command,
        env=env or airflow_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=home.parent,
    )
    (home / "pids" / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def _running(home: Path = HOME) -> dict[str, int]:
    alive = {}
    pids = home / "pids"
    for pid_file in sorted(pids.glob("*.pid")) if pids.exists() else []:
        pid = int(pid_file.read_text())
        if _alive(pid):
            alive[pid_file.stem] = pid
        else:
            pid_file.unlink()
    return alive


def _alive(pid: int) -> bool:
    """The process exists and has not exited: a child that exited stays a zombie (and answers
    ``kill(pid, 0)``) until its parent reaps it, so it is reaped here when it is ours."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _session_members(sessions: set[int]) -> dict[int, int]:
    """pid -> resident KB of every live process whose session is one of ``sessions``."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            # fields[0]: state (Z = zombie, already gone); fields[3]: the session id
            if fields[0] == "Z" or int(fields[3]) not in sessions:
                continue
            status = (stat.parent / "status").read_text()
            members[int(stat.parent.name)] = int(
                next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
            )
        except (OSError, IndexError, ValueError):
            continue
    return members


def memory_mb(home: Path = HOME) -> float:
    """Resident memory of every process in the stack's sessions (process groups), in MB."""
    return sum(_session_members(set(_running(home).values())).values()) / 1024


class Api:
    """Just enough of Airflow's REST API to wait for runs and trigger one."""

    def __init__(self, url: str = URL, password: str = PASSWORD) -> None:
        import requests

        self.url = url
        self.http = requests.Session()
        token = self.http.post(f"{url}/auth/token", json={"username": USER, "password": password}, timeout=10)
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; a 5xx is retried a few times (standalone's SQLite answers "database is
        locked" while the scheduler writes)."""
        for attempt in range(5):
            response = self.http.request(method, f"{self.url}/api/v2{path}", timeout=10, **kwargs)
            if response.status_code < 500 or attempt == 4:
                break
            time.sleep(2)
        response.raise_for_status()
        return response.json()

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self._send("GET", path, params=params)

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        return self._send("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})["dag_run_id"]

    def unpause(self, dag_id: str) -> None:
        self._send("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"])


class Died(RuntimeError):
    """A component of the stack exited while the stack was waiting for it: no use waiting longer."""


def _wait(what: str, check, timeout: float, every: float = 3.0, home: Path = HOME) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except Died:
            raise
        except Exception as exc:  # the API may not be up yet
            result = exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s (last: {result!r}); see {home}/*.log")
        time.sleep(every)


def _healthy(url: str = URL) -> bool:
    import requests

    return requests.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200


def crawl_redis() -> Any:
    """The crawl queues' Redis as the stack's components see it: ``CRAWLOPS_REDIS_URL``, else the
    ``crawl_redis`` connection (``AIRFLOW_CONN_CRAWL_REDIS``), else the local one's ``CRAWLOPS_REDIS_DB``."""
    import redis

    if url := os.environ.get("CRAWLOPS_REDIS_URL"):
        return redis.Redis.from_url(url)
    conn = json.loads(os.environ.get("AIRFLOW_CONN_CRAWL_REDIS") or "{}")
    db = conn.get("extra", {}).get("db", os.environ.get("CRAWLOPS_REDIS_DB", "1"))
    return redis.Redis(host=conn.get("host", "127.0.0.1"), port=int(conn.get("port", 6379)), db=int(db))


def _seed_history(conn: Any) -> None:
    """The last 48 hours, through the package's code (crawlops_dev.story), before anything else
    runs: neither the simulator nor a scheduled run may touch the hours while they are seeded."""
    import logging

    from crawlops.settings import Settings, dag_timezone
    from crawlops_dev import story

    for name, value in DEMO_SETTINGS.items():
        os.environ.setdefault(name, value)
    r = crawl_redis()
    url = os.environ.get("CRAWLOPS_MYSQL_URL", "mysql://crawlops:crawlops@127.0.0.1:3306/crawl")
    print(f"seeding the last {story.HOURS} hours of history (dispatch, simulated crawl, checks) ...", flush=True)
    logging.getLogger("crawlops").setLevel(logging.CRITICAL + 1)  # the checks log every finding
    try:
        done = story.seed(conn, r, Settings.load(), sa_url=story.sqlalchemy_url(url), tz=dag_timezone(),
                          progress=lambda line: print(line, flush=True))  # fmt: skip
    finally:
        logging.getLogger("crawlops").setLevel(logging.NOTSET)
        r.close()
    print(f"demo history: {done.summary()}", flush=True)


def all_alive(home: Path, names: list[str]) -> bool:
    """Raise ``Died`` with the end of its log when one of ``names`` has exited; False otherwise,
    so that ``all_alive(...) or check()`` reads as the check."""
    running = _running(home)
    for name in names:
        if name not in running:
            tail = (home / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
            raise Died(f"{name} exited; the end of {home / name}.log:\n" + "\n".join(tail))
    return False


def start_observability(home: Path, api_port: int, env: dict[str, str]) -> dict[str, Any]:
    """Prometheus, Alertmanager, the webhook receiver and the StatsD exporter
    (``crawlops_dev.observability``) started in ``home``, each waited for."""
    from crawlops_dev import observability

    names = []
    for name, command in observability.prepare(home, api_port):
        _spawn(name, command, env=env, home=home)
        names.append(name)
    for what, url in observability.readiness():
        _wait(what, lambda url=url: all_alive(home, names) or observability.ready(url), timeout=60, every=1, home=home)
    return observability.facts()


def _start_observability() -> dict[str, Any]:
    from crawlops_dev import observability

    return start_observability(HOME, PORT, airflow_env()) if observability.wanted() else {}


def start() -> int:
    from crawlops.db import connect
    from crawlops.migrations import migrate
    from crawlops_dev.demo import load_demo_config

    if _running():
        print(f"already running: {_running()} (make stop first)")
        return 1
    began = time.monotonic()
    PIDS.mkdir(parents=True, exist_ok=True)
    (HOME / "passwords.json").write_text(json.dumps(PASSWORDS))
    airflow = str(Path(sys.executable).with_name("airflow"))
    # Airflow's metadata database migrates while the history is seeded.
    airflow_db = subprocess.Popen(
        [airflow, "db", "migrate"], env=airflow_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    conn = connect()
    migrate(conn)
    loaded = load_demo_config(conn)
    print(f"schema applied; demo config: {loaded or 'already there'}")
    _seed_history(conn)
    conn.close()
    output, _ = airflow_db.communicate()
    if airflow_db.returncode:
        print(output.decode(errors="replace")[-2000:], file=sys.stderr)
        raise subprocess.CalledProcessError(airflow_db.returncode, airflow_db.args)
    _spawn("simulator", SIMULATOR)
    start_channels(HOME, airflow_env())
    watching = _start_observability()
    _spawn("airflow", [airflow, "standalone"])
    print(f"Airflow starting on {URL} (log: {HOME}/airflow.log) ...", flush=True)
    _wait("Airflow API", _healthy, timeout=240)
    api = _wait("login", Api, timeout=60)
    for dag_id in DAG_IDS:
        _wait(f"{dag_id} parsed", lambda dag_id=dag_id: api.get(f"/dags/{dag_id}"), timeout=180)
        api.unpause(dag_id)  # a DAG that an earlier dag.test() created starts paused
    # Don't wait for the schedule: one dispatch of the last complete hour, then the hourly
    # checks of that hour and today's report so far on demand, so the Crawl Ops page has
    # numbers in every chart at once (the scheduled runs take over from there).
    runs = {
        "amazon_task_dispatch": api.trigger("amazon_task_dispatch", {}),
        "amazon_data_supervision": api.trigger("amazon_data_supervision", {"run_hourly": True, "run_daily": True}),
    }
    for dag_id, run_id in runs.items():
        state = _wait(
            f"{dag_id} run {run_id}",
            lambda dag_id=dag_id, run_id=run_id: (s := api.run_state(dag_id, run_id)) in ("success", "failed") and s,
            timeout=420,
        )
        print(f"  {dag_id}: {run_id} {state}", flush=True)
        if state != "success":
            print(f"  see the run in the UI and {HOME}/airflow.log", flush=True)
    _tell(watching)
    print(f"make demo took {time.monotonic() - began:.0f} s; make stop stops it all")
    return 0


def _tell(watching: dict[str, Any]) -> None:
    """Where everything is, once the stack is up."""
    reports = sorted((HOME / "reports").glob("daily-report-*.html"))
    print(f"\nAirflow UI: {URL}  (login {USER} / {PASSWORD}; read-only: {VIEWER} / {VIEWER_PASSWORD})")
    print(f'Crawl Ops page: {URL}/plugin/crawl-ops  ("Crawl Ops" in the navigation; JSON under {URL}/crawl-ops/api/)')
    print("both DAGs are unpaused and run on schedule; the simulated crawler fleet answers their tasks")
    print(f"daily report: {reports[-1] if reports else 'not written yet'}")
    print(channels.summary(HOME))
    if watching:
        from crawlops_dev import observability

        print(observability.summary(watching))
    print(f"memory of the whole stack: {memory_mb():.0f} MB")


def stop(home: Path = HOME) -> int:
    """SIGTERM each process group, wait until every process of the sessions is gone, SIGKILL what is left.

    Waiting only for the recorded pid is not enough: Airflow standalone's children (the
    api-server above all) keep shutting down after their parent has exited.
    """
    running = _running(home)
    sessions = set(running.values())
    for pid in sessions:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _session_members(sessions) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in _session_members(sessions):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for name in running:
        (home / "pids" / f"{name}.pid").unlink(missing_ok=True)
    print(f"stopped ({home.name}): {', '.join(running) or 'nothing was running'}")
    return 0


def status() -> int:
    running = _running()
    print(f"running: {running or 'nothing'}; memory {memory_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "status"
    sys.exit(start() if command == "start" else stop() if command == "stop" else status())
