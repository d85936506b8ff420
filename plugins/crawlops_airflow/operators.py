"""The package's operators: validation of a suite, and the retry-task operator.

ValidateSuiteOperator: run an expectation suite file on a table's window, in SQL.

    ValidateSuiteOperator(
        task_id="validate_results",
        crawl_object="product_detail",          # its table and suite (crawlops.objects), or:
        # suite="amazon_product_detail.json",   # a file in include/expectations/, or a path
        # table="amazon_product_detail",
        partition_column="create_hour",         # indexed column whose value names an hour
    )

The window defaults to the last complete hour at the end of the run's window (the hour
that closes with it, in the run that closes an hour); ``window_start`` /
``window_end`` (templated, ISO 8601) pick any other, and ``hour_param`` names a trigger
param that, when set, picks the hour to validate (``check_hour`` in the supervision DAG).
``mysql_conn_id`` (default ``crawl_mysql``) is the database validated and written to, and
``dingtalk_conn_id`` (``crawl_dingtalk``) the robot. The result is stored in
``amazon_validation_run`` (one row per suite, table and window), pushed as the task's
XCom, and its failed expectations recorded as ERROR findings. A failed suite raises
``SuiteValidationFailed`` naming every failed expectation; it is not retried, since a
retry would read the same rows and fail the same way.

RetryTaskOperator: elements that need another crawl become retry tasks, through the
dispatch core (one retry chain per root task, ``retry_limit`` retries, then ``Dead``).

    RetryTaskOperator(task_id="retry_failures", elements="fail_sets")    # dispatch DAG
    RetryTaskOperator(task_id="completeness", elements="fail_sets", window="closing_hour", check="completeness")
    RetryTaskOperator(
        task_id="recrawl_incomplete", elements="required_fields", window="closing_hour",
        crawl_object="search_result", check="recrawl_incomplete",
    )

``elements`` says which elements:

- ``fail_sets``: every finished task's failed elements (its ``<task_id>_fail`` set) and
  the ones taken and never answered (after the grace period); with ``check``, the
  findings also cover every task settled in the window, whichever run settled it.
- ``required_fields``: the window's rows of ``table`` lacking a column ``suite`` requires
  (its not-null expectations), traced back to their elements (task, keyword,
  marketplace, page) and crawled once more; a row still incomplete after its element's
  one re-crawl is reported, not re-crawled again.

``window`` is ``run`` (the run's data interval, as dispatch works) or ``closing_hour``
(the hour that closes with a 5-minute run, or the hour picked with ``hour_param``).
Findings go to ``amazon_alert``; with ``check``, the outcome is also an
``amazon_check_run`` row for the window. The trigger param ``dry_run`` reports what would
be retried without doing it. The XCom is the JSON summary, with the findings.
``mysql_conn_id``, ``redis_conn_id`` and ``dingtalk_conn_id`` default to ``crawl_mysql``,
``crawl_redis`` and ``crawl_dingtalk``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseOperator

from crawlops.names import DINGTALK_CONN_ID, MYSQL_CONN_ID, REDIS_CONN_ID
from crawlops_airflow.exceptions import SuiteValidationFailed

__all__ = ["RetryTaskOperator", "SuiteValidationFailed", "ValidateSuiteOperator"]


def object_settings(settings: Any, table: str) -> Any:
    """``settings`` as the checks of the crawl object writing ``table`` read them (its own
    thresholds over ``[quality]``); a table no object writes keeps ``settings``."""
    from crawlops import objects

    try:
        crawl_object = objects.for_table(table)
    except KeyError:
        return settings
    return settings.for_object(crawl_object.name, crawl_object.quality_defaults)


def _object_table_and_suite(crawl_object: str | None, table: str | None, suite: str | None) -> tuple[str, str]:
    """The table and suite file a crawl object names (``crawl_object``), or the ones given."""
    if crawl_object:
        from crawlops import objects

        entry = objects.get(crawl_object)
        return table or entry.results_table, suite or entry.suite_file
    if not (table and suite):
        raise ValueError("give the crawl_object, or the table and the suite")
    return table, suite


class ValidateSuiteOperator(BaseOperator):
    template_fields = ("suite", "table", "window_start", "window_end")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        suite: str | None = None,
        table: str | None = None,
        crawl_object: str | None = None,
        window_start: str | None = None,
        window_end: str | None = None,
        partition_column: str | None = "create_hour",
        window_column: str = "create_time",
        fail_on_error: bool = True,
        hour_param: str | None = None,
        mysql_conn_id: str = MYSQL_CONN_ID,
        dingtalk_conn_id: str = DINGTALK_CONN_ID,
        **kwargs: Any,
    ) -> None:
        from crawlops_airflow.assets import VALIDATED_HOURS

        kwargs.setdefault("outlets", [VALIDATED_HOURS])
        super().__init__(**kwargs)
        self.hour_param = hour_param
        self.mysql_conn_id = mysql_conn_id
        self.dingtalk_conn_id = dingtalk_conn_id
        self.crawl_object = crawl_object
        self.table, self.suite = _object_table_and_suite(crawl_object, table, suite)
        self.window_start = window_start
        self.window_end = window_end
        self.partition_column = partition_column
        self.window_column = window_column
        self.fail_on_error = fail_on_error

    def _window(self, context: Mapping[str, Any]):
        from crawlops.model import Window
        from crawlops_airflow.windows import closing_hour

        if self.window_start and self.window_end:
            return Window(dt.datetime.fromisoformat(self.window_start), dt.datetime.fromisoformat(self.window_end))
        return closing_hour(context, self.hour_param)

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from crawlops import quality, validation
        from crawlops_airflow.hooks.mysql import CrawlMySqlHook
        from crawlops_airflow.runtime import task_run

        path = validation.suite_path(self.suite)
        suite = validation.load_suite(path)
        ids = {"mysql_conn_id": self.mysql_conn_id, "dingtalk_conn_id": self.dingtalk_conn_id}
        with task_run(context, self._window(context), **ids) as run:
            window, settings = run.window, object_settings(run.settings, self.table)
            self.log.info("validating %s %s with %s", self.table, window, path)
            report = validation.validate_window(
                CrawlMySqlHook(self.mysql_conn_id).pymysql_url(), self.table, path, window,
                validation.suite_parameters(settings, window), partition_column=self.partition_column,
                window_column=self.window_column,
            )  # fmt: skip
            findings = validation.report_findings(report)
            required = validation.required_columns(suite)
            score, rows = quality.quality_score(run.conn, self.table, window, settings, required)
            verdict = validation.store_report(run.conn, report, dag_run_id=run.run_id, quality_score=score)
            threshold = settings.quality.data_quality_threshold
            findings += quality.quality_score_finding(self.table, window, score, rows, threshold)
            self.log.info("quality score %s (threshold %s) over %d rows", score, threshold, rows)
            run.record(
                f"suite:{report.suite_name}", findings,
                resolves=[e["meta"]["name"] for e in suite["expectations"]] + ["data_quality"],
                status="pass" if report.success else "fail",
                details={"failed": [o.name for o in report.failed_outcomes()], "rows": report.row_count,
                         "quality_score": score}, scope=self.table,
            )  # fmt: skip
        self.log.info("%s", report.summary())
        result = {**report.to_json(), "quality_score": score, "verdict": verdict}
        if report.success:
            self._publish(context, window, verdict, score, report.row_count)
        if not report.success and self.fail_on_error:
            context["ti"].xcom_push(key="return_value", value=result)
            raise SuiteValidationFailed(str(validation.ValidationFailed(report)), result)
        return result

    def _publish(
        self, context: Mapping[str, Any], window: Any, verdict: str, score: float | None, rows: int | None
    ) -> None:
        """The hour passed (or was repaired): an event on the table's validated-hours asset,
        through the alias this task declares as its outlet (none if it was given others)."""
        from crawlops_airflow.assets import ALIAS, VALIDATED_HOURS, validated_hour_extra, validated_hours

        if not any(getattr(o, "name", None) == ALIAS for o in self.outlets):
            return
        extra = validated_hour_extra(table=self.table, crawl_object=self.crawl_object, window=window,
                                     verdict=verdict, quality_score=score, rows=rows)  # fmt: skip
        context["outlet_events"][VALIDATED_HOURS].add(validated_hours(self.table), extra=extra)
        self.log.info("asset event for %s: %s", validated_hours(self.table).name, extra)


class RetryTaskOperator(BaseOperator):
    """Turn elements that need another crawl into retry tasks (see the module docstring)."""

    ELEMENTS = ("fail_sets", "required_fields")
    WINDOWS = ("run", "closing_hour")
    template_fields = ("table", "suite", "check")
    ui_color = "#fdf0e0"

    def __init__(
        self,
        *,
        elements: str,
        window: str = "run",
        table: str | None = None,
        suite: str | None = None,
        crawl_object: str | None = None,
        check: str | None = None,
        hour_param: str | None = None,
        mysql_conn_id: str = MYSQL_CONN_ID,
        redis_conn_id: str = REDIS_CONN_ID,
        dingtalk_conn_id: str = DINGTALK_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mysql_conn_id, self.redis_conn_id, self.dingtalk_conn_id = mysql_conn_id, redis_conn_id, dingtalk_conn_id
        if elements not in self.ELEMENTS:
            raise ValueError(f"elements={elements!r}: one of {', '.join(self.ELEMENTS)}")
        if window not in self.WINDOWS:
            raise ValueError(f"window={window!r}: one of {', '.join(self.WINDOWS)}")
        if elements == "required_fields" and not (crawl_object or (table and suite)):
            raise ValueError(
                "elements='required_fields' needs the table and the suite naming its required columns, "
                "or the crawl_object naming both"
            )
        if crawl_object:
            table, suite = _object_table_and_suite(crawl_object, table, suite)
        self.elements = elements
        self.window = window
        self.table = table
        self.suite = suite
        self.crawl_object = crawl_object
        self.check = check
        self.hour_param = hour_param

    def _window(self, context: Mapping[str, Any]):
        from crawlops_airflow.windows import closing_hour, run_window

        return run_window(context) if self.window == "run" else closing_hour(context, self.hour_param)

    def _collect(self, run: Any) -> tuple[dict, list, tuple]:
        """(summary, findings, the finding names this step owns for its window)."""
        from crawlops import lifecycle, quality, validation

        if self.elements == "required_fields":
            suite = validation.load_suite(validation.suite_path(self.suite or ""))
            summary, findings = quality.recrawl_incomplete(
                run.conn, run.redis, object_settings(run.settings, self.table or ""), self.table or "", run.window,
                required=validation.required_columns(suite), dry_run=run.dry_run,
            )  # fmt: skip
            return summary, findings, ("incomplete_data",)
        if self.check:  # the window's account too: tasks settled in it by any run
            summary, findings = quality.check_completeness(
                run.conn, run.redis, run.settings, run.window, dry_run=run.dry_run
            )
            return summary, findings, ("missing_data",)
        now = lifecycle.decision_time(run.conn, run.window.end)
        tracking = lifecycle.settle_finished(run.conn, run.redis, run.settings, now=now, dry_run=run.dry_run)
        return tracking.settle_summary(), tracking.findings(self.dag_id), ()

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from crawlops.findings import Level
        from crawlops_airflow.runtime import task_run

        ids = {"mysql_conn_id": self.mysql_conn_id, "redis_conn_id": self.redis_conn_id,
               "dingtalk_conn_id": self.dingtalk_conn_id}  # fmt: skip
        with task_run(context, self._window(context), **ids) as run:
            summary, findings, owned = self._collect(run)
            # INFO only: what was wrong is on its way to repair
            status = "pass" if not findings else "repaired" if all(f.level == Level.INFO for f in findings) else "fail"
            scope = self.table if self.elements == "required_fields" else None
            run.record(self.check, findings, details=summary, resolves=owned, status=status, scope=scope)
        self.log.info("%s over %s: %s", self.elements, run.window, summary)
        return {"window": str(run.window), **summary, "findings": [f.to_json() for f in findings]}
