"""What every benchmark shares: where results go and which machine produced them."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

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
