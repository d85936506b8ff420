"""Great Expectations, imported lazily: the validation of one window of a table, all in SQL.

Validation pushes every metric down to SQL; no row of the table is loaded into Python.
A one-hour, hour-aligned UTC window is read through a TABLE asset partitioned on the
indexed ``create_hour`` column (batch = ``create_hour = window.start``); any other window
(or ``partition_column=None``) goes through a QUERY asset over ``create_time`` in
``[start, end)`` materialised in a temporary table.

``great_expectations`` takes several seconds to import, so it is imported lazily inside
functions, once per process, with its logging and progress bars silenced. The GE context,
data source, assets, batch definitions and parsed suites are cached per process, so
repeated validations pay only for their SQL.

No Airflow imports here: the DAG adapters call these functions with a SQLAlchemy URL built
from the ``crawl_mysql`` connection.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import os
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from crawlops.model import Window
from crawlops.validation.results import ExpectationOutcome, ValidationReport
from crawlops.validation.suite import _IDENTIFIER, check_identifier, load_suite, suite_parameter_names

# The package's logger, as before the split: deployments may configure it by this name.
log = logging.getLogger("crawlops.validation")

# Set (unless already set) before GE is imported. GE 1.24.1 ships no analytics client at
# all (GX_ANALYTICS_ENABLED survives only in a docstring; the context is also built with
# analytics_enabled=False), so these two only matter for other GE releases. TQDM_DISABLE is
# honoured by the installed tqdm and backs up the context's progress_bars=False.
_GX_ENV = {
    "GX_ANALYTICS_ENABLED": "False",
    "GE_USAGE_STATS": "False",
    "TQDM_DISABLE": "1",
}
_GX_LOGGERS = ("great_expectations",)


# --------------------------------------------------------------------------------------
# Great Expectations, imported lazily and cached per process


class _GX:
    """The process's GE module, context and the objects built on it (each built once)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.module: Any = None
        self.import_seconds: float | None = None
        self.context: Any = None
        self.datasources: dict[str, Any] = {}
        self.batch_definitions: dict[tuple[str, str, str], Any] = {}
        self.suites: dict[tuple[str, float], tuple[dict[str, Any], Any]] = {}


_STATE = _GX()


def _quiet_gx_logging() -> None:
    """GE logs hundreds of DEBUG/INFO lines at import and per validation; keep only its errors.

    A deployment that set a level on these loggers itself keeps it.
    """
    for name in _GX_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)


def import_gx() -> Any:
    """Import great_expectations once, quietly; returns the module."""
    with _STATE.lock:
        if _STATE.module is None:
            for key, value in _GX_ENV.items():
                os.environ.setdefault(key, value)
            _quiet_gx_logging()
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import great_expectations as gx
            _STATE.import_seconds = time.perf_counter() - started
            # Run-time warnings raised inside GE (deprecations, "a more specific data source
            # type may be more appropriate") are GE's business, not the task log's.
            warnings.filterwarnings("ignore", module=r"great_expectations(\.|$)")
            _STATE.module = gx
        return _STATE.module


def gx_import_seconds() -> float | None:
    """How long the first import of great_expectations took in this process (None before it)."""
    return _STATE.import_seconds


def _context() -> Any:
    with _STATE.lock:
        if _STATE.context is None:
            gx = import_gx()
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            )
            _STATE.context = gx.get_context(mode="ephemeral", project_config=config)
        return _STATE.context


def _sqlalchemy_url(url: str) -> str:
    """A ``mysql://`` URL made explicit for SQLAlchemy: pymysql driver, utf8mb4."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"not a database URL: {url!r}")
    if scheme == "mysql":
        scheme = "mysql+pymysql"
    if scheme.startswith("mysql") and "charset=" not in rest:
        rest += ("&" if "?" in rest else "?") + "charset=utf8mb4"
    return f"{scheme}://{rest}"


def _datasource(url: str, *, temp_tables: bool = False) -> Any:
    """One SQL data source per (database URL, temp-table mode), its engine shared by every validation.

    ``temp_tables`` is the GE data source's ``create_temp_table``: the QUERY asset path
    materialises its window once in a temporary table; the partitioned TABLE asset path
    reads the base table through the ``create_hour`` index and needs none.
    """
    key = f"{url}#temp={temp_tables}"
    with _STATE.lock:
        source = _STATE.datasources.get(key)
        if source is None:
            context = _context()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "a more specific datasource may be more appropriate"
                source = context.data_sources.add_sql(
                    name=f"crawlops_{len(_STATE.datasources)}",
                    connection_string=_sqlalchemy_url(url),
                    create_temp_table=temp_tables,
                    kwargs=_engine_kwargs(temp_tables),
                )
            _STATE.datasources[key] = source
        return source


def _engine_kwargs(temp_tables: bool) -> dict[str, Any]:
    """SQLAlchemy engine options: pre-ping, so an hourly task survives a server restart between runs.

    A MySQL temporary table lives only in the connection that created it, and GE does not
    pin one connection for MySQL: the temp-table source gets exactly one pooled connection
    (no overflow, no recycling), so every query of a batch, and the final DROP, run where
    the table is.
    """
    if temp_tables:
        return {"pool_size": 1, "max_overflow": 0, "pool_pre_ping": True}
    return {"pool_size": 1, "max_overflow": 4, "pool_pre_ping": True, "pool_recycle": 3600}


def _partition_batch_definition(url: str, table: str, partition_column: str) -> Any:
    key = (url, table, f"partition:{partition_column}")
    with _STATE.lock:
        definition = _STATE.batch_definitions.get(key)
        if definition is None:
            from great_expectations.core.partitioners import PartitionerColumnValue

            source = _datasource(url)
            asset = source.add_table_asset(name=f"{table}__by_{partition_column}", table_name=table)
            # validate_partitioner=False: GE's check only knows yearly/monthly/daily partitioners.
            definition = asset.add_batch_definition(
                name=f"{table}__{partition_column}",
                partitioner=PartitionerColumnValue(column_name=partition_column),
                validate_partitioner=False,
            )
            _STATE.batch_definitions[key] = definition
        return definition


def _gx_suite(path: Path) -> tuple[dict[str, Any], Any]:
    """The parsed suite file and its GE ExpectationSuite, rebuilt when the file changes."""
    path = Path(path).resolve()
    key = (str(path), path.stat().st_mtime)
    with _STATE.lock:
        cached = _STATE.suites.get(key)
        if cached is None:
            gx = import_gx()
            raw = load_suite(path)
            suite = gx.ExpectationSuite(
                name=raw["name"],
                expectations=copy.deepcopy(raw["expectations"]),
                meta=copy.deepcopy(raw.get("meta") or {}),
            )
            if len(suite.expectations) != len(raw["expectations"]):
                # GE logs and drops an expectation it cannot parse; a suite must never shrink silently.
                built = {(e.meta or {}).get("name") for e in suite.expectations}
                lost = [e["meta"]["name"] for e in raw["expectations"] if e["meta"]["name"] not in built]
                raise ValueError(f"{path}: GE rejected expectations {lost}")
            _STATE.suites = {k: v for k, v in _STATE.suites.items() if k[0] != key[0]}
            cached = _STATE.suites[key] = (raw, suite)
        return cached


# --------------------------------------------------------------------------------------
# Validation


def is_hour_window(window: Window) -> bool:
    """Whether the window is exactly one UTC hour starting on the hour."""
    start = window.start
    return window.end - start == dt.timedelta(hours=1) and (start.minute, start.second, start.microsecond) == (0, 0, 0)


#: Result format: counts and observed values only. partial_unexpected_count=0 keeps GE from
#: running an extra "fetch 20 unexpected values" query per failing rule.
_RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0, "include_unexpected_rows": False}


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
    raw, suite = _gx_suite(Path(suite_path))
    missing = suite_parameter_names(raw) - set(parameters)
    if missing:
        raise ValueError(f"suite {raw['name']} needs parameters {sorted(missing)}")

    from great_expectations.exceptions.exceptions import NoAvailableBatchesError

    results = None
    strategy = "query"
    if partition_column is not None and is_hour_window(window):
        definition = _partition_batch_definition(sqlalchemy_url, table, partition_column)
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
    report = _report(raw, table, window, results)
    report.strategy = strategy
    report.seconds = time.perf_counter() - started
    log.info("%s (%s asset, %.2fs)", report.summary(), strategy, report.seconds)
    return report


def _run_suite(definition: Any, batch_parameters: dict[str, Any] | None, suite: Any, parameters: dict) -> Any:
    """Run the suite on one batch of a batch definition (fetched once, by the validator)."""
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(
        batch_definition=definition, result_format=copy.deepcopy(_RESULT_FORMAT), batch_parameters=batch_parameters
    )
    try:
        return validator.validate_expectation_suite(suite, expectation_parameters=copy.deepcopy(parameters))
    finally:
        _drop_temp_table(definition.data_asset.datasource, validator)


def _validate_query(url: str, table: str, window: Window, suite: Any, parameters: dict, *, column: str) -> Any:
    """The window as a QUERY asset, materialised once in a temporary table; the asset is removed after use."""
    start, end = window.naive()
    query = (
        f"SELECT * FROM {table} WHERE {column} >= '{start.isoformat(sep=' ')}' "  # noqa: S608 - checked names, datetimes
        f"AND {column} < '{end.isoformat(sep=' ')}'"
    )
    source = _datasource(url, temp_tables=True)
    name = f"{table}__window_{uuid.uuid4().hex}"
    with _STATE.lock:
        asset = source.add_query_asset(name=name, query=query)
        definition = asset.add_batch_definition_whole_table(name=name)
    try:
        return _run_suite(definition, None, suite, parameters)
    finally:
        with _STATE.lock:
            source.delete_asset(name=name)


def _drop_temp_table(source: Any, validator: Any) -> None:
    """Drop the batch's temporary table, if GE made one; it would otherwise live as long as the connection."""
    if not getattr(source, "create_temp_table", False):
        return
    try:  # GE internals: the temporary table's name is nowhere public
        batch = validator._wrapped_validator_cache.active_batch
        name = batch.data.selectable.name
    except AttributeError:
        return
    if not isinstance(name, str) or not name.startswith("gx_temp_") or not _IDENTIFIER.match(name):
        return
    import sqlalchemy as sa

    with source.get_execution_engine().engine.connect() as conn:
        conn.execute(sa.text(f"DROP TEMPORARY TABLE IF EXISTS `{name}`"))
        conn.commit()


def _exception_message(info: Any) -> str | None:
    """The error text of a GE result's exception_info, whichever of its shapes it has."""
    if not info:
        return None
    if "raised_exception" in info:  # one ExceptionInfo (or its dict form)
        return str(info.get("exception_message") or "error") if info.get("raised_exception") else None
    messages = [m for m in (_exception_message(v) for v in info.values() if isinstance(v, dict)) if m]
    return "; ".join(dict.fromkeys(messages)) or None  # {metric id: ExceptionInfo}, one per failed metric


def _report(raw: dict[str, Any], table: str, window: Window, results: Any) -> ValidationReport:
    order = {exp["meta"]["name"]: i for i, exp in enumerate(raw["expectations"])}
    outcomes = []
    row_count = element_count = None
    for result in results.results:
        config = result.expectation_config
        name = (config.meta or {}).get("name") or config.type
        res = dict(result.result or {})
        exception = _exception_message(result.exception_info)
        unexpected, percent = res.get("unexpected_count"), res.get("unexpected_percent")
        observed = res.get("observed_value")
        if config.type == "expect_table_row_count_to_be_between" and observed is not None:
            row_count = int(observed)
        if config.type == "expect_column_values_to_not_be_null" and res.get("element_count") is not None:
            element_count = int(res["element_count"])  # not-null rules see every row of the batch
        outcomes.append(
            ExpectationOutcome(
                name=name,
                expectation_type=config.type,
                column=config.kwargs.get("column"),
                success=bool(result.success) and exception is None,
                unexpected_count=None if unexpected is None else int(unexpected),
                unexpected_percent=None if percent is None else float(percent),
                observed_value=observed,
                exception=exception,
            )
        )
    outcomes.sort(key=lambda o: order.get(o.name, len(order)))  # GE reorders; report in suite order
    failed = sum(not o.success for o in outcomes)
    return ValidationReport(
        suite_name=raw["name"],
        table=table,
        window=window,
        success=failed == 0 and len(outcomes) == len(raw["expectations"]),
        evaluated=len(outcomes),
        failed=failed,
        row_count=row_count if row_count is not None else element_count,
        outcomes=outcomes,
    )
