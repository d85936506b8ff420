"""The result of validating one window with a suite: per-expectation outcomes, the report, and
the ways callers consume it (raise on failure, one alert finding per failed rule, JSON)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from decimal import Decimal
from typing import Any

from crawlops.findings import Finding, Level
from crawlops.model import Window
from crawlops.names import SUPERVISION_DAG


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


def report_findings(report: ValidationReport, *, source: str = SUPERVISION_DAG) -> list[Finding]:
    """One ERROR :class:`crawlops.findings.Finding` per failed expectation, its check named by the rule.

    The subject is the table (and column), not the window, so the alert suppression window
    keeps an hourly repeat of the same broken rule from paging people every hour.
    """
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


def _exception_message(info: Any) -> str | None:
    """The error text of a GE result's exception_info, whichever of its shapes it has."""
    if not info:
        return None
    if "raised_exception" in info:  # one ExceptionInfo (or its dict form)
        return str(info.get("exception_message") or "error") if info.get("raised_exception") else None
    messages = [m for m in (_exception_message(v) for v in info.values() if isinstance(v, dict)) if m]
    return "; ".join(dict.fromkeys(messages)) or None  # {metric id: ExceptionInfo}, one per failed metric


def report_from_results(raw: dict[str, Any], table: str, window: Window, results: Any) -> ValidationReport:
    """The report of a GE suite validation result (``ExpectationSuiteValidationResult``), in suite order.

    ``raw`` is the suite file as loaded: it names the suite and orders the outcomes.
    """
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
