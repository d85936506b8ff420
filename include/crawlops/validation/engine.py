"""The validation of one window of a table with a suite, all in SQL, through GE's public 1.x API.

Validation pushes every metric down to SQL; no row of the table is loaded into Python.
A one-hour, hour-aligned UTC window is read through a TABLE asset partitioned on the
indexed ``create_hour`` column (batch = ``create_hour = window.start``); any other window
(or ``partition_column=None``) goes through a QUERY asset over ``create_time`` in
``[start, end)`` materialised in a temporary table. Either way the suite runs as a
``ValidationDefinition`` given the batch parameters and the suite parameters.

GE is imported on the first validation, not with this module (see
:mod:`crawlops.validation.gx_context`, which also caches the GE objects per process).
No Airflow imports here: the DAG adapters call these functions with a SQLAlchemy URL built
from the ``crawl_mysql`` connection.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crawlops.model import Window
from crawlops.validation import gx_context
from crawlops.validation.gx_context import STATE
from crawlops.validation.results import ValidationReport, report_from_results
from crawlops.validation.suite import check_identifier, suite_parameter_names

# The package's logger, as before the split: deployments may configure it by this name.
log = logging.getLogger("crawlops.validation")

#: Result format: counts and observed values only. partial_unexpected_count=0 keeps GE from
#: running an extra "fetch 20 unexpected values" query per failing rule.
_RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0, "include_unexpected_rows": False}

#: GE's statement materialising a QUERY batch on MySQL/MariaDB, and the name it gives the table.
_TEMP_TABLE = re.compile(r"CREATE TEMPORARY TABLE `?(gx_temp_[0-9a-f]{8})`? ")
#: ``.names``: the temporary tables GE created in this thread's running validation, else None.
_CREATED = threading.local()


def is_hour_window(window: Window) -> bool:
    """Whether the window is exactly one UTC hour starting on the hour."""
    start = window.start
    return window.end - start == dt.timedelta(hours=1) and (start.minute, start.second, start.microsecond) == (0, 0, 0)


def validate_window(
    sqlalchemy_url: str,
    table: str,
    suite_path: Path,
    window: Window,
    parameters: dict[str, Any],
    *,
    partition_column: str | None = "create_hour",
    window_column: str = "create_time",
) -> ValidationReport:
    """Validate the rows of ``table`` in ``window`` with the suite at ``suite_path``, all in SQL.

    Returns the report whatever the verdict; call :func:`raise_for_report` to turn a failed
    report into :class:`ValidationFailed`.
    """
    check_identifier(table, "table")
    check_identifier(window_column, "column")
    if partition_column is not None:
        check_identifier(partition_column, "column")
    started = time.perf_counter()
    raw, suite = gx_context.gx_suite(Path(suite_path))
    missing = suite_parameter_names(raw) - set(parameters)
    if missing:
        raise ValueError(f"suite {raw['name']} needs parameters {sorted(missing)}")

    from great_expectations.exceptions.exceptions import NoAvailableBatchesError

    results = None
    strategy = "query"
    if partition_column is not None and is_hour_window(window):
        definition = gx_context.partition_batch_definition(sqlalchemy_url, table, partition_column)
        # GE lists the partition values (SELECT DISTINCT over the column's index) and matches
        # the requested one against their str(): naive '2026-11-03 12:00:00'.
        start, _ = window.naive()
        try:
            results = _run_suite(definition, {partition_column: str(start)}, suite, parameters)
            strategy = "partition"
        except NoAvailableBatchesError:
            results = None  # no row in this hour at all; the query path reports the empty window
    if results is None:
        results = _validate_query(sqlalchemy_url, table, window, suite, parameters, column=window_column)
    report = report_from_results(raw, table, window, results)
    report.strategy = strategy
    report.seconds = time.perf_counter() - started
    log.info("%s (%s asset, %.2fs)", report.summary(), strategy, report.seconds)
    return report


def _run_suite(definition: Any, batch_parameters: dict[str, Any] | None, suite: Any, parameters: dict) -> Any:
    """Run the suite's ValidationDefinition on one batch of a batch definition (fetched once, by GE).

    The suite parameters go in as the run's expectation parameters. The result GE keeps in
    the context's validation results store is removed again: nothing reads it there, and an
    in-memory store would otherwise grow by one result per run for the life of the process.
    """
    validation = gx_context.validation_definition(definition, suite)
    with _temp_tables_dropped(definition.data_asset.datasource):
        results = validation.run(
            batch_parameters=batch_parameters,
            expectation_parameters=copy.deepcopy(parameters),
            result_format=copy.deepcopy(_RESULT_FORMAT),
        )
    gx_context.forget_results()
    return results


def _validate_query(url: str, table: str, window: Window, suite: Any, parameters: dict, *, column: str) -> Any:
    """The window as a QUERY asset, materialised once in a temporary table; the asset is removed after use."""
    start, end = window.naive()
    query = (
        f"SELECT * FROM {table} WHERE {column} >= '{start.isoformat(sep=' ')}' "  # noqa: S608 - checked names, datetimes
        f"AND {column} < '{end.isoformat(sep=' ')}'"
    )
    source = gx_context.datasource(url, temp_tables=True)
    name = f"{table}__window_{uuid.uuid4().hex}"
    with STATE.lock:
        asset = source.add_query_asset(name=name, query=query)
        definition = asset.add_batch_definition_whole_table(name=name)
    try:
        return _run_suite(definition, None, suite, parameters)
    finally:
        with STATE.lock:
            gx_context.forget_validation_definition(definition, suite)
            source.delete_asset(name=name)


@contextlib.contextmanager
def _temp_tables_dropped(source: Any) -> Iterator[None]:
    """Drop the temporary tables GE creates for a batch while the block runs, whatever its outcome.

    A temporary table would otherwise live as long as the pooled connection. GE does not say
    which table it made, so its ``CREATE TEMPORARY TABLE`` statements are seen through a
    SQLAlchemy event on the source's engine, in this thread only (another thread's tables
    are its own to drop). Sources without ``create_temp_table`` make none.
    """
    if not getattr(source, "create_temp_table", False):
        yield
        return
    import sqlalchemy as sa

    engine = source.get_execution_engine().engine
    if not sa.event.contains(engine, "before_cursor_execute", _record_temp_table):
        sa.event.listen(engine, "before_cursor_execute", _record_temp_table)
    created: list[str] = []
    _CREATED.names = created
    try:
        yield
    finally:
        _CREATED.names = None
        if created:
            with engine.connect() as conn:
                for name in dict.fromkeys(created):
                    conn.execute(sa.text(f"DROP TEMPORARY TABLE IF EXISTS `{name}`"))
                conn.commit()


def _record_temp_table(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    names = getattr(_CREATED, "names", None)
    if names is not None and statement.startswith("CREATE TEMPORARY TABLE"):
        match = _TEMP_TABLE.match(statement)
        if match:
            names.append(match.group(1))
