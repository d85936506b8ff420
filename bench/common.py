"""What every benchmark shares: its database and Redis (migrated, by the same URLs), where
results go and which machine produced them. Benchmarks run as modules: ``python -m bench.dispatch_bench``."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

BENCH_MYSQL_URL = "mysql://crawlops:crawlops@127.0.0.1:3306/crawlops_bench"

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Stamp the result with the machine and time, and write it to bench/results/<name>.json."""
    result = {**result, "machine": machine(), "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


def bench_mysql(url: str | None = None) -> Any:
    """A connection to the benchmark database (``CRAWLOPS_BENCH_MYSQL_URL``), migrated."""
    from crawlops.db import connect
    from crawlops.migrations import migrate

    conn = connect(url or os.environ.get("CRAWLOPS_BENCH_MYSQL_URL", BENCH_MYSQL_URL))
    migrate(conn)
    return conn


def bench_redis(default_db: int = 14, env: str = "CRAWLOPS_BENCH_REDIS_DB") -> Any:
    """The benchmark's Redis database (``env`` names the variable that overrides ``default_db``)."""
    import redis

    return redis.Redis(host="127.0.0.1", port=6379, db=int(os.environ.get(env, str(default_db))))
