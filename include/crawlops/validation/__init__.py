"""Hourly data-quality validation of a results table with a Great Expectations 1.x suite.

- :mod:`~crawlops.validation.results`: the report (outcomes per rule), ``ValidationFailed``,
  alert findings;
- :mod:`~crawlops.validation.suite`: each crawl object's suite file, its parameters and columns (no GE);
- :mod:`~crawlops.validation.gx_context`: GE, imported lazily, and its objects cached per process;
- :mod:`~crawlops.validation.engine`: ``validate_window``, through GE's public API, all in SQL;
- :mod:`~crawlops.validation.store`: ``store_report`` into ``amazon_validation_run``.

Importing this package imports neither great_expectations nor Airflow: DAG files stay cheap
to parse. The first validation in a process imports GE (several seconds).
"""

from __future__ import annotations

from crawlops.validation.engine import is_hour_window, validate_window
from crawlops.validation.gx_context import gx_import_seconds, import_gx
from crawlops.validation.results import (
    ExpectationOutcome,
    ValidationFailed,
    ValidationReport,
    raise_for_report,
    report_findings,
)
from crawlops.validation.store import store_report
from crawlops.validation.suite import (
    DEFAULT_SUITE_PATH,
    REQUIRED_COLUMNS,
    check_identifier,
    expected_columns,
    load_suite,
    required_columns,
    suite_parameter_names,
    suite_parameters,
    suite_path,
    suite_path_for,
)

__all__ = [
    "DEFAULT_SUITE_PATH",
    "REQUIRED_COLUMNS",
    "ExpectationOutcome",
    "ValidationFailed",
    "ValidationReport",
    "check_identifier",
    "expected_columns",
    "gx_import_seconds",
    "import_gx",
    "is_hour_window",
    "load_suite",
    "raise_for_report",
    "report_findings",
    "required_columns",
    "store_report",
    "suite_parameter_names",
    "suite_parameters",
    "suite_path",
    "suite_path_for",
    "validate_window",
]
