"""The shape the import contracts (.importlinter) cannot state: no import cycle anywhere, no
module over 400 lines and no function over 60 outside tests and benches, except the ones
listed here with their reason (the list only shrinks)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("include", "plugins", "dags", "tools", "examples")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# (file, function): why it is longer, for now.
LONG_FUNCTIONS = {
    (
        "dags/amazon_data_supervision.py",
        "amazon_data_supervision",
    ): "a DAG function holds its tasks as nested functions",
    ("plugins/crawlops_airflow/dashboard.py", "create_app"): "one nested function per route of the app",
    ("include/crawlops/lifecycle/settle.py", "_settle"): "one task's settlement, its steps named; 72 lines",
    ("include/crawlops/lifecycle/sync.py", "sync_locked"): "one pass over the open tasks; to split further",
    ("include/crawlops/report/html.py", "render_html"): "the template's context; to split per section",
    ("include/crawlops/retention.py", "purge"): "every table's step in order",
    ("tools/crawlops_dev/cluster.py", "_start"): "dev tooling: the cluster's start, step by step",
}
LONG_MODULES = {
    "tools/crawlops_dev/story.py": "dev tooling: the demo's story",
}


def python_files():
    for folder in SOURCES:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_import_cycle_anywhere():
    graph = grimp.build_graph("crawlops", "crawlops_airflow", "crawlops_dev")
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.find_shortest_chain(importer=imported, imported=module):
                cycles.append((module, imported))
    assert cycles == []


def test_no_module_is_longer_than_400_lines_but_the_listed():
    long = {str(p.relative_to(ROOT)) for p in python_files() if len(p.read_text().splitlines()) > MAX_MODULE_LINES}
    assert long <= set(LONG_MODULES), sorted(long - set(LONG_MODULES))
    assert long == set(LONG_MODULES), f"no longer long, drop from the list: {sorted(set(LONG_MODULES) - long)}"


def test_no_function_is_longer_than_60_lines_but_the_listed():
    long = set()
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            is_function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if is_function and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                long.add((str(path.relative_to(ROOT)), node.name))
    assert long <= set(LONG_FUNCTIONS), sorted(long - set(LONG_FUNCTIONS))
    assert long == set(LONG_FUNCTIONS), f"no longer long, drop from the list: {sorted(set(LONG_FUNCTIONS) - long)}"
