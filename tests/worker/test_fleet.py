"""Crawler liveness from the kit's heartbeats, on the real MariaDB and Redis: a SIGKILLed worker
raises the fleet ERROR while its task is open; a fleet that halves raises a WARNING; workers
without the kit (no heartbeat) are not judged."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crawlops import dispatch, telemetry
from crawlops.findings import Level
from crawlops.fleet import check_fleet
from crawlops.model import UTC, hour_window_starting
from crawlops.worker import WorkerClient

ROOT = Path(__file__).resolve().parents[2]
HOUR = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"


@pytest.fixture
def quick(settings):
    """Silent after a second, so the test need not wait two minutes."""
    return dataclasses.replace(settings, crawlers=dataclasses.replace(settings.crawlers, worker_silence_seconds=1))


def dispatch_hour(mysql, r, settings, config, keywords=8, pages=5):
    config([("search_result", f"kw {i}", "US", "hourly", pages) for i in range(keywords)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, HOUR, "UTC"))
    dispatch.push_window(mysql, r, settings, HOUR)


def now():
    return dt.datetime.now(UTC)


def test_a_sigkilled_worker_raises_the_liveness_error_while_its_task_is_open(mysql, redis_client, quick, config):
    dispatch_hour(mysql, redis_client, quick, config)
    env = {
        **os.environ,
        "CRAWLOPS_REDIS_URL": f"redis://127.0.0.1:6379/{redis_client.connection_pool.connection_kwargs['db']}",
        "PYTHONPATH": str(ROOT / "tests"),
        "SLOW_FETCH_SECONDS": "0.1",
    }
    worker = subprocess.Popen([sys.executable, "-m", "crawlops.worker", "support.slow_fetch:fetch", "--batch", "4"],
                              env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not telemetry.workers_seen(redis_client, now() - dt.timedelta(minutes=1)):
            assert time.monotonic() < deadline and worker.poll() is None, "the worker never beat"
            time.sleep(0.1)
        details, findings = check_fleet(redis_client, quick, now())
        assert (details["alive"], findings) == (1, [])
        (seen,) = details["workers"]
        assert seen["pid"] == str(worker.pid) and seen["objects"] in ("*", "search_result")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    time.sleep(1.5)

    details, findings = check_fleet(redis_client, quick, now())

    (down,) = findings
    assert (down.level, down.check, down.subject) == (Level.ERROR, "fleet_down", "fleet")
    assert details["queued"] > 0 and details["alive"] == 0 and details["open_tasks"] == 1
    assert f":{worker.pid}:" in down.action  # the worker id names host and pid


def test_a_fleet_that_halves_warns_and_a_fleet_without_the_kit_is_not_judged(mysql, redis_client, quick, config):
    dispatch_hour(mysql, redis_client, quick, config)
    assert check_fleet(redis_client, quick, now()) == (
        {"judged": False, "alive": 0, "silent": 0, "queued": 40, "open_tasks": 1, "workers": []},
        [],
    )  # seed workers beat nothing: judged by queue progress, as before
    staying, leaving = (WorkerClient(redis_client, mysql, worker_id=w) for w in ("host-a:1:x", "host-b:2:y"))
    staying.beat()
    leaving.beat()
    time.sleep(1.5)
    staying.beat()

    details, findings = check_fleet(redis_client, quick, now())

    (shrunk,) = findings
    assert (shrunk.level, shrunk.check) == (Level.WARNING, "fleet_shrunk")
    assert shrunk.title.startswith("1 of 2 crawler workers went silent") and "host-b:2:y" in shrunk.action
    assert (details["alive"], details["silent"]) == (1, 1)


def test_a_backfilled_run_judges_no_fleet(mysql, redis_client, quick, config):
    dispatch_hour(mysql, redis_client, quick, config)
    WorkerClient(redis_client, mysql).beat()
    time.sleep(1.5)

    details, findings = check_fleet(redis_client, quick, now() - dt.timedelta(days=2))

    assert findings == [] and details["judged"] is False
