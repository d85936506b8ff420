"""ValidateSuiteOperator: run an expectation suite file on a table's window, in SQL.

    ValidateSuiteOperator(
        task_id="validate_results",
        suite="amazon_search_result.json",      # a file in include/expectations/, or a path
        table="amazon_search_result",
        partition_column="create_hour",         # indexed column whose value names an hour
    )

The window defaults to the last complete hour at the end of the run's window (the hour
that closes with it, in the run that closes an hour); ``window_start`` /
``window_end`` (templated, ISO 8601) pick any other, and ``hour_param`` names a trigger
param that, when set, picks the hour to validate (``check_hour`` in the supervision DAG). The result is stored in
``amazon_validation_run`` (one row per suite, table and window), pushed as the task's
XCom, and its failed expectations recorded as ERROR findings. A failed suite raises
``SuiteValidationFailed`` naming every failed expectation; it is not retried, since a
retry would read the same rows and fail the same way.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException


class SuiteValidationFailed(AirflowFailException):
    """The window failed its suite; the message names each failed expectation and its counts."""

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report


class ValidateSuiteOperator(BaseOperator):
    template_fields = ("suite", "table", "window_start", "window_end")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        suite: str,
        table: str,
        window_start: str | None = None,
        window_end: str | None = None,
        partition_column: str | None = "create_hour",
        window_column: str = "create_time",
        fail_on_error: bool = True,
        hour_param: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hour_param = hour_param
        self.suite = suite
        self.table = table
        self.window_start = window_start
        self.window_end = window_end
        self.partition_column = partition_column
        self.window_column = window_column
        self.fail_on_error = fail_on_error

    def _window(self, context: Any):
        from crawlops.model import Window, last_complete_hour
        from crawlops.settings import dag_timezone
        from crawlops_airflow.runtime import requested_hour, run_window

        if self.window_start and self.window_end:
            return Window(dt.datetime.fromisoformat(self.window_start), dt.datetime.fromisoformat(self.window_end))
        picked = requested_hour(context, self.hour_param) if self.hour_param else None
        if picked is not None:
            return picked
        return last_complete_hour(run_window(context, minutes=5).end, dag_timezone())

    def _suite_path(self) -> Path:
        from crawlops.settings import include_dir

        path = Path(self.suite)
        return path if path.is_absolute() else include_dir() / "expectations" / path

    def execute(self, context: Any) -> dict[str, Any]:
        from crawlops import quality, validation
        from crawlops.alerts import record_check, record_findings
        from crawlops_airflow.runtime import load_settings, mysql_connection, sqlalchemy_url

        window = self._window(context)
        settings = load_settings()
        self.log.info("validating %s %s with %s", self.table, window, self._suite_path())
        report = validation.validate_window(
            sqlalchemy_url(),
            self.table,
            self._suite_path(),
            window,
            validation.suite_parameters(settings, window),
            partition_column=self.partition_column,
            window_column=self.window_column,
        )
        findings = validation.report_findings(report)
        with mysql_connection() as conn:
            score, rows = quality.quality_score(conn, self.table, window, settings, validation.REQUIRED_COLUMNS)
            validation.store_report(conn, report, dag_run_id=context["run_id"], quality_score=score)
            threshold = settings.quality.data_quality_threshold
            findings += quality.quality_score_finding(self.table, window, score, rows, threshold)
            self.log.info("quality score %s (threshold %s) over %d rows", score, threshold, rows)
            owned = [e["meta"]["name"] for e in validation.load_suite(self._suite_path())["expectations"]]
            owned.append("data_quality")
            record_findings(conn, findings, window=window, dag_run_id=context["run_id"], resolves=owned)
            record_check(
                conn,
                f"suite:{report.suite_name}",
                window,
                status="pass" if report.success else "fail",
                findings=len(findings),
                details={
                    "failed": [o.name for o in report.failed_outcomes()],
                    "rows": report.row_count,
                    "quality_score": score,
                },
                dag_run_id=context["run_id"],
            )
        self.log.info("%s", report.summary())
        result = {**report.to_json(), "quality_score": score}
        if not report.success and self.fail_on_error:
            context["ti"].xcom_push(key="return_value", value=result)
            raise SuiteValidationFailed(str(validation.ValidationFailed(report)), result)
        return result
