"""
### Amazon crawl data supervision

Every 5 minutes: is the crawl healthy? At each hour's close: is the hour's data good, and
what needs repair? At each day's close: the daily report.

| step | cadence | what it does |
|---|---|---|
| `system_check` | every run | MySQL and Redis reachable, Redis memory; a fault is CRITICAL and the task retries with backoff |
| `task_health` | every run | tracks every task through the dispatch core: status sync (empty answers recorded), settling finished tasks (failed and lost elements to a retry task, or Dead), re-push of queues lost in a Redis restart; tasks open longer than the timeout are closed and their unanswered elements sent to the retry path; stalled tasks, success rate and queue depth per crawl object |
| `freshness` | every run | the age of the newest result row, per crawl object and per marketplace of its open or just-finished tasks, at the run's own time: older than `freshness_seconds` (3600) is an ERROR; an idle crawl is not judged |
| `hour_closes` | every run | lets the hourly checks run only in the run whose window ends on the hour (or with `run_hourly`) |
| `validate_results` | hourly | the `amazon_search_result` expectation suite (`include/expectations/`) on the hour, pushed down to SQL; red when the data fails it |
| `volume_anomaly` | hourly | the hour's row count against the same hour over the last 14 days (z-score); count and band kept in the `amazon_volume_hourly` rollup |
| `schema_drift` | hourly | the table's columns and types against what the suite expects |
| `completeness` | hourly | `RetryTaskOperator(elements="fail_sets")`: settles what is due, then the hour's account: tasks settled in the hour with elements taken and never answered (sent to their retry task) |
| `recrawl_incomplete` | hourly | `RetryTaskOperator(elements="required_fields")`: the hour's rows lacking a column the suite requires (not-null rules), traced to their elements (task, keyword, marketplace, page) and crawled once more through the task's retry chain (usual budget); INFO while all are on their way, WARNING for rows naming no element, still incomplete after their one re-crawl, or out of budget |
| `quarantine_invalid` | hourly | invalid rows moved to `amazon_search_result_quarantine` with the rule they failed |
| `day_closes` / `daily_report` | daily | after the closing hour's checks, in the run whose window ends at 00:00 (or `run_daily`: the day so far; with `check_hour`: that hour's whole day): task statistics, quality per hour (passed / repaired / failed, quality score), volume against its band, alerts, system health; stored in `amazon_daily_report`, written as one self-contained HTML page under the reports folder, sent to DingTalk as Markdown (a report that could not be sent is sent by a later run, and its check reads `unsent` until then) |
| `summarize` | every run | the run's findings by level, delivered to DingTalk (WARNING and above, batched, suppressed, rate-limited); fails the run if the system check failed |

Every finding is stored in `amazon_alert` (one row per check, subject and window) and
every check's outcome in `amazon_check_run`, so re-running or backfilling a window
recomputes the same rows instead of adding copies. `dry_run` reports what would be
repaired (retries, timeouts, quarantine) without doing it; checks and findings are still
recorded. Thresholds: `include/config/crawlops.toml`, overridable by the Variable
`crawlops_settings` or `CRAWLOPS__...` environment variables.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from crawlops.settings import dag_timezone
from crawlops_airflow.notifiers import DingTalkNotifier
from crawlops_airflow.operators import RetryTaskOperator, ValidateSuiteOperator

TZ = dag_timezone()
RESULTS_TABLE = "amazon_search_result"
SUITE = "amazon_search_result.json"


def _window(context):
    """The run's 5-minute window; with ``check_hour``, the one that closes that hour."""
    import datetime as dt

    from crawlops.model import Window
    from crawlops_airflow.runtime import requested_hour, run_window

    hour = requested_hour(context, "check_hour")
    if hour is not None:
        return Window(hour.end - dt.timedelta(minutes=5), hour.end)
    return run_window(context, minutes=5)


def _report_day(context):
    """The day the report covers: the day up to this run's window end; with ``check_hour``,
    the whole day that hour belongs to."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from crawlops.model import Window, day_ending

    window = _window(context)
    if context["params"].get("check_hour"):
        local = window.start.astimezone(ZoneInfo(TZ))
        midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(TZ))
        window = Window(midnight - dt.timedelta(minutes=5), midnight)
    return day_ending(window, TZ)


@dag(
    dag_id="amazon_data_supervision",
    schedule=CronDataIntervalTimetable("*/5 * * * *", timezone=TZ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=3,
    # A hung socket must not hold worker slots: no run outlives 50 minutes, no task 20.
    dagrun_timeout=pendulum.duration(minutes=50),
    doc_md=__doc__,
    default_args={
        "owner": "crawl-ops",
        "retries": 2,
        "execution_timeout": pendulum.duration(minutes=20),
        "retry_delay": pendulum.duration(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": pendulum.duration(minutes=5),
        "on_failure_callback": DingTalkNotifier(record_failure=True),
    },
    tags=["crawl", "supervision", "data-quality", "amazon"],
    params={
        "dry_run": Param(False, type="boolean", title="Dry run", description="Report repairs without doing them."),
        "run_hourly": Param(
            False, type="boolean", title="Run hourly checks", description="Validate the hour ending with this run."
        ),
        "run_daily": Param(
            False, type="boolean", title="Build the daily report", description="Report on the day ending with this run."
        ),
        "check_hour": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Re-check an hour",
            description="Run the hourly checks on the hour starting here (on the hour); with 'Build the daily "
            "report', rebuild that hour's whole day. Empty: the run's own window.",
        ),
    },
)
def amazon_data_supervision():
    @task(retries=4)
    def system_check(**context) -> dict:
        """MySQL and Redis reachable. A fault is told to DingTalk on this first attempt (MySQL's
        without MySQL); the task then fails and Airflow retries it with backoff."""
        from crawlops import health
        from crawlops.alerts import record_findings
        from crawlops.settings import VARIABLE_NAME, Settings
        from crawlops_airflow.notifiers import DingTalkNotifier, outage_alarm, record_recovered_outages
        from crawlops_airflow.runtime import load_settings, open_mysql, redis_client

        window, variable = _window(context), f"settings Variable {VARIABLE_NAME}"
        try:
            settings = load_settings()
        except AirflowFailException:
            raise  # malformed: fails at once, naming it (the failure callback reports it)
        except Exception as exc:  # unreachable
            outage_alarm(variable, exc, Settings.load(), context)
            raise
        try:
            conn = open_mysql()
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        except Exception as exc:
            outage_alarm("MySQL", exc, settings, context)
            raise
        try:
            recovered = record_recovered_outages(conn, ["MySQL", variable], window, context)
            try:
                facts, findings = health.probe_redis(redis_client(), settings)
            except health.SystemFault as fault:
                record_findings(conn, [fault.finding], window=window, dag_run_id=context["run_id"])
                DingTalkNotifier().notify(context)  # now, not after the retries (suppressed while it lasts)
                raise
            record_findings(conn, findings, window=window, dag_run_id=context["run_id"])
        finally:
            conn.close()
        return {"mysql": "ok", "redis": facts, "recovered": recovered, "findings": [f.to_json() for f in findings]}

    @task
    def task_health(**context) -> dict:
        from crawlops import health
        from crawlops.alerts import record_check, record_findings
        from crawlops_airflow.runtime import load_settings, mysql_connection, redis_client

        window, settings = _window(context), load_settings()
        with mysql_connection() as conn:
            report = health.check_tasks(
                conn, redis_client(), settings, window.end, dry_run=context["params"]["dry_run"]
            )
            record_findings(conn, report.findings, window=window, dag_run_id=context["run_id"])
            record_check(
                conn,
                "task_health",
                window,
                status="fail" if report.findings else "pass",
                findings=len(report.findings),
                details=report.to_json(),
                dag_run_id=context["run_id"],
            )
        return report.to_json()

    @task
    def freshness(**context) -> dict:
        """Is data still arriving where crawling is expected, at this run's time?"""
        from crawlops import quality
        from crawlops.alerts import record_check, record_findings
        from crawlops_airflow.runtime import load_settings, mysql_connection

        window, settings = _window(context), load_settings()
        with mysql_connection() as conn:
            details, findings = quality.check_freshness(conn, settings, window.end)
            record_findings(conn, findings, window=window, dag_run_id=context["run_id"], resolves=("freshness",))
            record_check(
                conn, "freshness", window, status="fail" if findings else "pass", findings=len(findings),
                details=details, dag_run_id=context["run_id"],
            )  # fmt: skip
        return {"findings": [f.to_json() for f in findings], **details}

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def hour_closes(**context) -> bool:
        from crawlops.model import closes_hour

        params = context["params"]
        return closes_hour(_window(context), TZ) or bool(params["run_hourly"] or params["check_hour"])

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def day_closes(**context) -> bool:
        from crawlops.model import closes_day

        return closes_day(_window(context), TZ) or bool(context["params"]["run_daily"])

    def hourly_check(name: str, resolves: tuple[str, ...], **task_kwargs):
        """A check on the hour that closes with this run, recorded as findings + a check row;
        ``resolves``: the finding names it owns (an earlier run's that no longer hold are resolved)."""

        def decorate(check):
            @task(task_id=name, **task_kwargs)
            def run(**context) -> dict:
                from crawlops.alerts import record_check, record_findings
                from crawlops.model import last_complete_hour
                from crawlops_airflow.runtime import load_settings, mysql_connection

                hour, settings = last_complete_hour(_window(context).end, TZ), load_settings()
                with mysql_connection() as conn:
                    details, findings = check(conn, settings, hour, context)
                    record_findings(conn, findings, window=hour, dag_run_id=context["run_id"], resolves=resolves)
                    record_check(
                        conn,
                        name,
                        hour,
                        status="fail" if findings else "pass",
                        findings=len(findings),
                        details=details,
                        dag_run_id=context["run_id"],
                    )
                return {"window": str(hour), "findings": [f.to_json() for f in findings], **details}

            return run

        return decorate

    @hourly_check("volume_anomaly", ("volume_anomaly",))
    def volume_anomaly(conn, settings, hour, context):
        from crawlops import quality

        verdict, findings = quality.check_volume(conn, RESULTS_TABLE, hour, settings)
        quality.record_volume(conn, RESULTS_TABLE, hour, verdict, settings.quality, dag_run_id=context["run_id"])
        return verdict.to_json(), findings

    @hourly_check("schema_drift", ("schema_drift",))
    def schema_drift(conn, settings, hour, context):
        from crawlops import quality, validation
        from crawlops.settings import include_dir

        expected = validation.expected_columns(validation.load_suite(include_dir() / "expectations" / SUITE))
        findings = quality.check_schema_drift(conn, RESULTS_TABLE, expected)
        return {"expected_columns": expected}, findings

    # Runs after the suite has judged the hour as crawled, whatever its verdict.
    @hourly_check("quarantine_invalid", ("invalid_data",), trigger_rule="all_done")
    def quarantine_invalid(conn, settings, hour, context):
        from crawlops import quality

        return quality.quarantine_invalid(
            conn, RESULTS_TABLE, hour, settings, dry_run=context["params"]["dry_run"], dag_run_id=context["run_id"]
        )

    # After the closing hour's checks, whatever their outcome, so the day's last hour is in it.
    @task(trigger_rule="all_done")
    def daily_report(**context) -> dict:
        """The day's report: stored in MySQL, written as HTML, sent to DingTalk as Markdown."""
        if context["ti"].xcom_pull(task_ids="day_closes") is not True:  # all_done also fires after a failure
            raise AirflowSkipException("the day does not close with this run")
        from crawlops import report as daily
        from crawlops.alerts import record_check
        from crawlops.delivery import run_link, send_document
        from crawlops_airflow.runtime import load_settings, mysql_connection, redis_client

        day, settings = _report_day(context), load_settings()
        run_url = run_link(settings.alerts.airflow_base_url, "amazon_data_supervision", context["run_id"])
        notifier = DingTalkNotifier()
        with mysql_connection() as conn:
            built = daily.build_daily_report(conn, redis_client(), settings, day, tz=TZ, run_url=run_url)
            daily.store_report(conn, built, dag_run_id=context["run_id"])
            path = daily.write_html(built, settings.report.directory())
            robot = notifier.robot(settings.alerts.delivery_timeout_seconds)
            sent, status = "no channel", "no_channel"
            if robot is not None:
                error = send_document(
                    conn, robot, f"Crawl daily report {built.day}", built.markdown, settings.alerts,
                    dag_run_id=context["run_id"],
                )  # fmt: skip
                daily.record_delivery(conn, built.day, error)
                # not "pass" until it went out: a later run sends it (summarize) and records pass
                sent, status = (f"not sent: {error}", "unsent") if error else ("sent", "pass")
            record_check(
                conn, "daily_report", day, status=status, details={"html": str(path), "dingtalk": sent},
                dag_run_id=context["run_id"],
            )  # fmt: skip
        context["task"].log.info("daily report for %s written to %s; DingTalk: %s", built.day, path, sent)
        return {"day": str(built.day), "html": str(path), "dingtalk": sent}

    @task(trigger_rule="all_done")
    def summarize(system: dict | None, health: dict | None, **context) -> dict:
        import logging

        from crawlops_airflow.runtime import mysql_connection

        log = logging.getLogger("crawlops.supervision")
        window = _window(context)
        start, end = window.naive()
        with mysql_connection() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT level, COUNT(*) FROM amazon_alert WHERE dag_run_id = %s GROUP BY level", (context["run_id"],)
            )
            by_level = dict(cur.fetchall())
        summary = {"window": [start.isoformat(), end.isoformat()], "findings_by_level": by_level}
        log.info("supervision summary: %s", summary)
        DingTalkNotifier().notify(context)  # the run's alerts (and earlier failed deliveries), batched
        resent = DingTalkNotifier().resend_reports(context)  # daily reports that did not go out
        if resent:
            log.info("daily reports sent late: %s", resent)
        if system is None or health is None:
            raise RuntimeError("system check or task health did not complete: see those tasks; findings were recorded")
        return summary

    system = system_check()
    health = task_health()
    fresh = freshness()
    hourly = hour_closes()
    daily = day_closes()
    validate = ValidateSuiteOperator(
        task_id="validate_results", suite=SUITE, table=RESULTS_TABLE, hour_param="check_hour",
        execution_timeout=pendulum.duration(minutes=30),
    )  # fmt: skip
    # Missing and incomplete data go back to the crawlers through the dispatch core.
    completeness = RetryTaskOperator(
        task_id="completeness", elements="fail_sets", window="closing_hour", check="completeness",
        hour_param="check_hour",
    )  # fmt: skip
    recrawl = RetryTaskOperator(
        task_id="recrawl_incomplete", elements="required_fields", window="closing_hour", table=RESULTS_TABLE,
        suite=SUITE, check="recrawl_incomplete", hour_param="check_hour", trigger_rule="all_done",
    )  # fmt: skip
    checks = [validate, volume_anomaly(), schema_drift(), completeness, recrawl, quarantine_invalid()]
    report = daily_report()

    system >> health >> [hourly, daily]
    system >> fresh
    hourly >> checks
    validate >> recrawl >> checks[-1]  # after the suite has judged the hour, whatever its verdict
    daily >> report
    checks >> report
    [*checks, report, fresh] >> summarize(system, health)


amazon_data_supervision()
