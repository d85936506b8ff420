"""DAG parse time: `python dags/<file>.py` for each DAG file vs a file that only imports
airflow.sdk and defines one empty DAG (the floor), measured in the same run.

    python -m bench.parse_bench [--repeat 5]

Each figure is the best of ``--repeat`` fresh interpreter runs. Writes bench/results/parse.json.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import write_result

ROOT = Path(__file__).resolve().parents[1]
EMPTY_DAG = """
from airflow.sdk import dag

@dag(schedule=None)
def empty():
    pass

empty()
"""


def best_of(path: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, str(path)], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty_dag.py"
        empty.write_text(EMPTY_DAG)
        floor = best_of(empty, args.repeat)
    results = {"floor_seconds": round(floor, 3), "dags": {}}
    print(f"empty DAG (floor)                  {floor:6.3f} s")
    for path in sorted((ROOT / "dags").glob("*.py")):
        ours = best_of(path, args.repeat)
        results["dags"][path.name] = {"seconds": round(ours, 3), "over_floor_seconds": round(ours - floor, 3)}
        print(f"{path.name:34} {ours:6.3f} s   +{ours - floor:.3f} s over the floor")
    write_result("parse", results)


if __name__ == "__main__":
    main()
