"""The result of validating one window with a suite: per-expectation outcomes, the report, and
the ways callers consume it (raise on failure, one alert finding per failed rule, JSON)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from decimal import Decimal
from typing import Any

from crawlops.model import Window


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
