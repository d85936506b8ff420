"""Hourly data-quality validation of a results table with a Great Expectations 1.x suite.

The suite is a JSON file in ``include/expectations/`` whose thresholds are GE suite
parameters (``{"$PARAMETER": "name"}``), filled at run time from the settings by
:func:`suite_parameters`, so the numbers live only in ``include/config/crawlops.toml``.

Validation pushes every metric down to SQL; no row of the table is loaded into Python.
A one-hour, hour-aligned UTC window is read through a TABLE asset partitioned on the
indexed ``create_hour`` column (batch = ``create_hour = window.start``); any other window
(or ``partition_column=None``) goes through a QUERY asset over ``create_time`` in
``[start, end)`` materialised in a temporary table.

``great_expectations`` takes several seconds to import, so it is imported lazily inside
functions, once per process, with its logging and progress bars silenced. The GE context,
data source, assets, batch definitions and parsed suites are cached per process, so
repeated validations pay only for their SQL.

No Airflow imports here: the DAG adapters call these functions with a SQLAlchemy URL and
a DB-API connection built from the ``crawl_mysql`` connection.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import re
import threading
import time
import uuid
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

from crawlops.db import Connection
from crawlops.model import Window
from crawlops.settings import Settings, include_dir

log = logging.getLogger(__name__)

DEFAULT_SUITE_PATH = include_dir() / "expectations" / "amazon_search_result.json"

#: Columns the suite requires to be filled, and the compound key it requires to be unique.
REQUIRED_COLUMNS = ("task_id", "keyword", "marketplace", "asin", "title", "price", "page", "position")
RESULT_KEY = ("task_id", "keyword", "page", "position")

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

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


# --------------------------------------------------------------------------------------
# Reports


@dataclasses.dataclass
class ExpectationOutcome:
    """One expectation's verdict; ``name`` is the suite's ``meta.name``, the rule name."""

    name: str
    expectation_type: str
    column: str | None
    success: bool
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: Any
    exception: str | None = None

    def describe(self) -> str:
        """Short text of what was found, for failure messages and alerts."""
        if self.exception:
            return f"{self.name}: error {self.exception}"
        if self.unexpected_count is not None:
            pct = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            return f"{self.name}: {self.unexpected_count} unexpected{pct}"
        return f"{self.name}: observed {_jsonable(self.observed_value)!r}"


@dataclasses.dataclass
class ValidationReport:
    suite_name: str
    table: str
    window: Window
    success: bool
    evaluated: int
    failed: int
    row_count: int | None
    outcomes: list[ExpectationOutcome]
    strategy: str = ""
    seconds: float | None = None

    def failed_outcomes(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def outcome(self, name: str) -> ExpectationOutcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "suite_name": self.suite_name,
            "table": self.table,
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
            "success": self.success,
            "evaluated": self.evaluated,
            "failed": self.failed,
            "row_count": self.row_count,
            "strategy": self.strategy,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "outcomes": [
                {
                    "name": o.name,
                    "expectation_type": o.expectation_type,
                    "column": o.column,
                    "success": o.success,
                    "unexpected_count": o.unexpected_count,
                    "unexpected_percent": o.unexpected_percent,
                    "observed_value": _jsonable(o.observed_value),
                    "exception": o.exception,
                }
                for o in self.outcomes
            ],
        }

    def summary(self) -> str:
        verdict = "passed" if self.success else f"failed {self.failed} of {self.evaluated}"
        return f"{self.suite_name} on {self.table} {self.window}: {verdict}, {self.row_count} rows"


class ValidationFailed(Exception):
    """A window failed its suite; ``.report`` has every outcome (like the GX provider's GXValidationFailed)."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        failed = "; ".join(o.describe() for o in report.failed_outcomes())
        super().__init__(
            f"Validation of {report.table} {report.window} with suite {report.suite_name} failed "
            f"{report.failed} of {report.evaluated} expectations: {failed}"
        )


def raise_for_report(report: ValidationReport) -> ValidationReport:
    """Raise :class:`ValidationFailed` when the report failed; return it otherwise."""
    if not report.success:
        raise ValidationFailed(report)
    return report


def report_findings(report: ValidationReport, *, source: str = "amazon_data_supervision") -> list[Any]:
    """One ERROR :class:`crawlops.alerts.Finding` per failed expectation, its check named by the rule.

    The subject is the table (and column), not the window, so the alert suppression window
    keeps an hourly repeat of the same broken rule from paging people every hour.
    """
    from crawlops.alerts import Finding, Level

    findings = []
    for o in report.failed_outcomes():
        findings.append(
            Finding(
                Level.ERROR,
                source,
                o.name,
                f"{report.table} {report.window}: {o.describe()}",
                subject=f"{report.table}.{o.column}" if o.column else report.table,
                details={
                    "suite": report.suite_name,
                    "window_start": report.window.start.isoformat(),
                    "window_end": report.window.end.isoformat(),
                    "row_count": report.row_count,
                    "expectation_type": o.expectation_type,
                    "unexpected_count": o.unexpected_count,
                    "unexpected_percent": o.unexpected_percent,
                    "observed_value": _jsonable(o.observed_value),
                    "exception": o.exception,
                },
            )
        )
    return findings


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return str(value)


# --------------------------------------------------------------------------------------
# Suite and parameters


def load_suite(path: Path | str = DEFAULT_SUITE_PATH) -> dict[str, Any]:
    """The suite file as a dict, checked for what the rest of this module relies on."""
    try:
        suite = json.loads(Path(path).read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(suite, dict) or not suite.get("name") or not isinstance(suite.get("expectations"), list):
        raise ValueError(f"{path}: not an expectation suite (needs 'name' and 'expectations')")
    names = []
    for i, exp in enumerate(suite["expectations"]):
        name = (exp.get("meta") or {}).get("name")
        if not exp.get("type") or not name:
            raise ValueError(f"{path}: expectation #{i} needs a 'type' and a meta 'name'")
        names.append(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate expectation names {duplicates}")
    return suite


def suite_parameters(settings: Settings, window: Window) -> dict[str, Any]:
    """Values for the suite's ``$PARAMETER`` placeholders, from the settings and the window.

    ``min_rows`` is ``min_records_per_hour`` scaled to the window's length (an hour: 1000).
    ``required_mostly`` and ``validity_mostly`` are both ``1 - error_rate_max`` (0.99): a
    required column may be null, and each validity rule may fail, in at most
    ``error_rate_max`` of the rows. Datetimes are naive UTC text, the way the DATETIME
    columns hold them; GE parses them when it compares them with a datetime metric.
    """
    quality = settings.quality
    _, end = window.naive()
    validity = round(1.0 - quality.error_rate_max, 10)
    hours = (window.end - window.start) / dt.timedelta(hours=1)
    return {
        "min_rows": math.ceil(quality.min_records_per_hour * hours),
        "required_mostly": quality.required_mostly,
        "validity_mostly": validity,
        "marketplaces": list(settings.dispatch.marketplaces),
        "window_end": end.isoformat(sep=" "),
        "window_start": window.naive()[0].isoformat(sep=" "),
    }


def suite_parameter_names(suite: dict[str, Any]) -> set[str]:
    """Every ``$PARAMETER`` name the suite uses."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "$PARAMETER" in value:
                found.add(value["$PARAMETER"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for exp in suite["expectations"]:
        walk(exp.get("kwargs", {}))
    return found


def required_columns(suite: dict[str, Any]) -> list[str]:
    """Columns the suite requires (its ``expect_column_values_to_not_be_null`` rules), in order."""
    columns = [
        str(exp["kwargs"]["column"])
        for exp in suite["expectations"]
        if exp["type"] == "expect_column_values_to_not_be_null" and (exp.get("kwargs") or {}).get("column")
    ]
    return [_check_identifier(c, "column") for c in dict.fromkeys(columns)]


def expected_columns(suite: dict[str, Any]) -> dict[str, str]:
    """The suite's ``meta.expected_columns``: column -> loose type, for schema-drift checks."""
    return dict((suite.get("meta") or {}).get("expected_columns") or {})


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


def _check_identifier(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid {what} name {name!r}")
    return name


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
    _check_identifier(table, "table")
    _check_identifier(window_column, "column")
    if partition_column is not None:
        _check_identifier(partition_column, "column")
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


# --------------------------------------------------------------------------------------
# Storing reports


def store_report(
    conn: Connection, report: ValidationReport, *, dag_run_id: str | None, quality_score: float | None = None
) -> None:
    """Upsert the report into ``amazon_validation_run``: one row per (suite, table, window).

    Re-validating a window overwrites its counts, results, run id and time, but never its
    history: ``first_success`` keeps the first verdict, and ``verdict`` reads ``passed``,
    ``failed``, or ``repaired`` (the first run failed, the latest passed: quarantine or a
    re-crawl fixed the hour). ``quality_score``: the share of the window's rows passing every
    validity and required-field rule (``crawlops.quality.quality_score``), the latest run's.
    """
    start, end = report.window.naive()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_validation_run (suite_name, table_name, window_start, window_end, success, "
            "evaluated, failed, row_count, results, dag_run_id, validated_at, first_success, verdict, quality_score) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(), %s, IF(%s, 'passed', 'failed'), %s) "
            "ON DUPLICATE KEY UPDATE "
            "verdict = IF(NOT VALUES(success), 'failed', IF(COALESCE(first_success, success), 'passed', 'repaired')), "
            "first_success = COALESCE(first_success, success), "
            "success = VALUES(success), evaluated = VALUES(evaluated), "
            "failed = VALUES(failed), row_count = VALUES(row_count), results = VALUES(results), "
            "dag_run_id = VALUES(dag_run_id), validated_at = VALUES(validated_at), "
            "quality_score = VALUES(quality_score)",
            (
                report.suite_name[:128],
                report.table[:128],
                start,
                end,
                int(report.success),
                report.evaluated,
                report.failed,
                report.row_count,
                json.dumps(report.to_json(), ensure_ascii=False, sort_keys=True),
                dag_run_id[:250] if dag_run_id else None,
                int(report.success),
                int(report.success),
                quality_score,
            ),
        )
    conn.commit()


# --------------------------------------------------------------------------------------
# The floor: the same counts in one plain SQL statement

#: The suite's asin rule; a test keeps the two equal. ``(?-i:...)``: MariaDB/MySQL REGEXP
#: follows the column collation, and utf8mb4_unicode_ci would accept lower-case ASINs.
ASIN_REGEX = "(?-i:^B0[0-9A-Z]{8}$)"
RATING_RANGE = (0, 5)


def floor_counts(
    conn: Connection,
    table: str,
    window: Window,
    *,
    marketplaces: tuple[str, ...] | list[str] | None = None,
    asin_regex: str = ASIN_REGEX,
    window_column: str = "create_time",
) -> dict[str, Any]:
    """Every count the suite computes, for the rows of ``window``, in ONE SQL statement.

    Reads the window through the ``create_time`` index. Keys: ``rows``, ``null_<column>``
    for each required column, ``price_negative``, ``rating_out_of_range``, ``asin_invalid``,
    ``marketplace_unknown``, ``duplicate_rows`` (rows whose (task_id, keyword, page, position)
    occurs more than once, rows with the whole key null left out, as GE counts them).
    Nulls are not counted as invalid by the validity rules.
    """
    _check_identifier(table, "table")
    _check_identifier(window_column, "column")
    if marketplaces is None:
        marketplaces = Settings.load().dispatch.marketplaces
    marketplaces = list(marketplaces)
    if not marketplaces:
        raise ValueError("marketplaces must not be empty")
    key = ", ".join(f"`{c}`" for c in RESULT_KEY)
    key_all_null = " AND ".join(f"`{c}` IS NULL" for c in RESULT_KEY)
    columns = ", ".join(f"`{c}`" for c in dict.fromkeys((*REQUIRED_COLUMNS, "rating", window_column)))
    nulls = ", ".join(f"SUM(`{c}` IS NULL) AS `null_{c}`" for c in REQUIRED_COLUMNS)
    in_list = ", ".join(["%s"] * len(marketplaces))
    low, high = RATING_RANGE
    # A window count over the compound key finds duplicates in the same pass as everything
    # else (faster here than GROUP BY on the key and summing the groups).
    sql = (
        f"SELECT COUNT(*) AS `rows`, {nulls}, "  # noqa: S608 - checked identifiers
        "SUM(price < 0) AS price_negative, "
        f"SUM(rating < {low:d} OR rating > {high:d}) AS rating_out_of_range, "
        "SUM(NOT (asin REGEXP %s)) AS asin_invalid, "
        f"SUM(marketplace NOT IN ({in_list})) AS marketplace_unknown, "
        f"SUM(n > 1 AND NOT ({key_all_null})) AS duplicate_rows "
        f"FROM (SELECT {columns}, COUNT(*) OVER (PARTITION BY {key}) AS n "
        f"FROM `{table}` WHERE `{window_column}` >= %s AND `{window_column}` < %s) AS w"
    )
    start, end = window.naive()
    with conn.cursor() as cur:
        cur.execute(sql, (asin_regex, *marketplaces, start, end))
        names = [d[0] for d in cur.description]
        row = cur.fetchone()
    counts = dict(zip(names, row, strict=True))
    # SUM over no rows is NULL: an empty window has zero of everything.
    return {k: int(v or 0) for k, v in counts.items()}


def outcome_counts(report: ValidationReport) -> dict[str, Any]:
    """The report's numbers keyed like :func:`floor_counts`, to compare the two."""
    by_name = {o.name: o for o in report.outcomes}
    counts: dict[str, Any] = {"rows": report.row_count}
    for column in REQUIRED_COLUMNS:
        o = by_name.get(f"{column}_not_null")
        counts[f"null_{column}"] = o.unexpected_count if o else None
    for key, name in (
        ("price_negative", "price_non_negative"),
        ("rating_out_of_range", "rating_range"),
        ("asin_invalid", "asin_format"),
        ("marketplace_unknown", "marketplace_known"),
        ("duplicate_rows", "unique_result"),
    ):
        o = by_name.get(name)
        counts[key] = o.unexpected_count if o else None
    return counts
