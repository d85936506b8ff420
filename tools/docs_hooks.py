"""MkDocs hooks (mkdocs.yml ``hooks:``): the parts of the docs generated at build time.

A page asks for a part with a marker line ``<!-- generated: NAME -->``:

- ``settings-reference``: every section and key of ``include/config/crawlops.toml`` with its
  default, its environment variable and the comment above it, so the reference never drifts
  from the file the code reads;
- ``bench-results``: the benchmark tables from ``bench/results/*.json`` (what ``make bench``
  wrote last, with the machine and time each file records), so no figure is typed by hand.

An unknown marker fails the build.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_FILE = ROOT / "include" / "config" / "crawlops.toml"
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _documented_keys(text: str) -> list[tuple[str, str, str]]:
    """(section, key, its comment) in file order. A comment describes the keys that follow it
    up to a blank line or the next comment."""
    keys: list[tuple[str, str, str]] = []
    section, comment, carried = "", [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section, comment, carried = stripped[1:-1], [], ""
        elif stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
        elif not stripped:
            comment, carried = [], ""
        elif "=" in stripped and section:
            carried = " ".join(comment) or carried
            keys.append((section, stripped.split("=", 1)[0].strip(), carried))
            comment = []
    return keys


def settings_reference() -> str:
    text = SETTINGS_FILE.read_text("utf-8")
    values: dict[str, dict[str, Any]] = tomllib.loads(text)
    out: list[str] = []
    current = None
    for section, key, comment in _documented_keys(text):
        if section != current:
            current = section
            out += ["", f"### `[{section}]`", "", "| key | default | environment variable | what it does |",
                    "|---|---|---|---|"]  # fmt: skip
        top, _, table = section.partition(".")  # [alerts.escalation]: a table inside [alerts]
        default = json.dumps(values[top][table][key] if table else values[section][key])
        env = (f"CRAWLOPS__{top.upper()}__{table.upper()}" + f"='{{\"{key}\": ...}}'" if table
               else f"CRAWLOPS__{section.upper()}__{key.upper()}")  # fmt: skip
        out.append(f"| `{key}` | `{_cell(default)}` | `{env}` | {_cell(comment)} |")
    return "\n".join(out).lstrip("\n")


def bench_results() -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from bench import report
    from bench.common import RESULTS

    files = sorted(RESULTS.glob("*.json"))
    if not files:
        return "No results in `bench/results/` yet: `make bench` writes them."
    out = ["| figure | ours | floor | ratio | note |", "|---|---|---|---|---|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in report.rows()]
    out += ["", "Where each figure comes from:", "", "| file | measured at | machine |", "|---|---|---|"]
    for path in files:
        stamp = json.loads(path.read_text("utf-8"))
        out.append(f"| `{path.name}` | {stamp.get('at', '?')} | {_cell(str(stamp.get('machine', '?')))} |")
    return "\n".join(out)


PARTS = {"settings-reference": settings_reference, "bench-results": bench_results}


def on_page_markdown(markdown: str, **_: Any) -> str:
    def generate(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in PARTS:
            raise ValueError(f"unknown generated part {name!r} (known: {sorted(PARTS)})")
        return PARTS[name]()

    return MARKER.sub(generate, markdown)
