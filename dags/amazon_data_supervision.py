"""
### Amazon crawl data supervision

Every 5 minutes: is the crawl healthy? At each hour's close: is the hour's data good, and
what needs repair? At each day's close: the daily report, then retention.

| step | cadence | what it does |
|---|---|---|
| `system_check` | every run | MySQL and Redis reachable, Redis memory; a fault is CRITICAL and the task retries with backoff |
| `task_health` | every run | tracks every task through the dispatch core: status sync (empty answers recorded), settling finished tasks (failed and lost elements to a retry task, or Dead), re-push of queues lost in a Redis restart; tasks open longer than the timeout are closed and their unanswered elements sent to the retry path; stalled tasks, success rate and queue depth per crawl object |
| `crawl_outcomes` | every run | what the crawlers saw, from the kit's per-minute counts: per crawl object and marketplace, the share of the last 30 min's answers that came back blocked (robot check), failed for each other reason, or empty, against `[crawlers]` limits and the marketplace's own 7-day history; a surge is named ("DE: 41 % of search_result pages blocked (robot check) in the last 30 min, usual 0.4 %"), ERROR for blocks, WARNING otherwise; a block surge throttles its marketplace (`crawlops:throttle:<mp>`: kit workers slow down there), lifted once the share falls back |
| `fleet` | every run | kit workers' heartbeats: ERROR when elements wait and no worker was seen for `worker_silence_seconds` (120), WARNING when half the fleet went silent; the fleet listed on the Crawl Ops page. Workers without the kit: judged by queue progress (`task_stalled`) |
| `freshness` | every run | the age of the newest result row, per crawl object and per marketplace of its open or just-finished tasks, at the run's own time: older than `freshness_seconds` (3600) is an ERROR; an idle crawl is not judged |
| `hour_closes` | every run | lets the hourly checks run only in the run whose window ends on the hour (or with `run_hourly`) |
| `crawl_objects` | hourly | the crawl objects the hour's checks judge (enabled, with config rows or a task in the last day); the next five steps are mapped over them, one task instance per object, named by it |
| `validate_results` | hourly, per crawl object | its expectation suite (`include/expectations/<table>.json`) on the hour, pushed down to SQL, with the object's thresholds; red when the data fails it; a passed (or repaired) hour is an event on the table's Asset `crawlops.validated_hours.<table>` (hour, verdict, quality score) for consumers' DAGs |
| `volume_anomaly` | hourly, per crawl object | the hour's row count against the same hour over the last 14 days (z-score); count and band kept in the `amazon_volume_hourly` rollup |
| `schema_drift` | hourly, per crawl object | the table's columns and types against what the suite expects |
| `completeness` | hourly | `RetryTaskOperator(elements="fail_sets")`: settles what is due, then the hour's account: tasks settled in the hour with elements taken and never answered (sent to their retry task) |
| `recrawl_incomplete` | hourly, per crawl object | `RetryTaskOperator(elements="required_fields")`: the hour's rows lacking a column the suite requires (not-null rules), traced to their elements (task, keyword, marketplace, page) and crawled once more through the task's retry chain (usual budget); INFO while all are on their way, WARNING for rows naming no element, still incomplete after their one re-crawl, or out of budget |
| `quarantine_invalid` | hourly, per crawl object | invalid rows moved to the object's `<table>_quarantine` with the rule they failed |
| `day_closes` / `daily_report` | daily | after the closing hour's checks, in the run whose window ends at 00:00 (or `run_daily`: the day so far; with `check_hour`: that hour's whole day): task statistics, quality per hour (passed / repaired / failed, quality score), volume against its band, alerts, system health; stored in `amazon_daily_report`, written as one self-contained HTML page under the reports folder, sent to DingTalk as Markdown (a report that could not be sent is sent by a later run, and its check reads `unsent` until then) |
| `retention` | daily | after the report, in the same runs: rows past their retention (`[retention]` in the settings: manifest 14 days after its retry chain closed, task rows, alerts, check and validation runs 90, volume rollup 400, quarantine 30; daily reports and the crawlers' results table kept) deleted in batches of `batch_size`, each its own transaction, for at most about `max_seconds`; what is left is taken up by the next day's run. Nothing of a retry chain with an open task is touched. Recorded as the `retention` check (`unfinished` when the time ran out), with rows per table |
| `summarize` | every run | the run's findings by level, delivered to DingTalk (WARNING and above, batched, suppressed, rate-limited); fails the run if the system check failed |

Every finding is stored in `amazon_alert` (one row per check, subject and window) and
every check's outcome in `amazon_check_run`, so re-running or backfilling a window
recomputes the same rows instead of adding copies. `dry_run` reports what would be
repaired (retries, timeouts, quarantine) or deleted (retention) without doing it; checks
and findings are still recorded. Thresholds: `include/config/crawlops.toml`, overridable by the Variable
`crawlops_settings` or `CRAWLOPS__...` environment variables.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from crawlops.names import SUPERVISION_DAG, cron
from crawlops.settings import dag_timezone
from crawlops_airflow.assets import VALIDATED_HOURS
from crawlops_airflow.notifiers import CrawlAlertNotifier
from crawlops_airflow.operators import RetryTaskOperator, ValidateSuiteOperator
from crawlops_airflow.runtime import task_run

TZ = dag_timezone()


def _recrawl_kwargs(crawl_object: str) -> dict:
    """The re-crawl of one crawl object's incomplete rows, its check row under the object's name."""
    from crawlops import objects

    return {"crawl_object": crawl_object, "check": objects.get(crawl_object).check_name("recrawl_incomplete")}


def _day_closed(context) -> bool:
    return context["ti"].xcom_pull(task_ids="day_closes") is True


@dag(
    dag_id=SUPERVISION_DAG,
    schedule=CronDataIntervalTimetable(cron(SUPERVISION_DAG), timezone=TZ),
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
        "on_failure_callback": CrawlAlertNotifier(record_failure=True),
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
def amazon_data_supervision():  # noqa: C901, PLR0915 - the DAG holds its tasks as nested functions, one branch each
    @task(retries=4)
    def system_check(**context) -> dict:
        """MySQL and Redis reachable; a fault is told to DingTalk on this first attempt."""
        from crawlops_airflow.system_check import check_system

        return check_system(context)

    @task
    def task_health(**context) -> dict:
        from crawlops import health

        with task_run(context) as run:
            report = health.check_tasks(run.conn, run.redis, run.settings, run.window.end, dry_run=run.dry_run)
            run.record("task_health", report.findings, details=report.to_json(), resolves=health.CLEARS)
        return report.to_json()

    @task
    def crawl_outcomes(**context) -> dict:
        """Blocked, failed and empty shares per crawl object and marketplace; a block surge throttles its marketplace."""
        from crawlops import surges

        with task_run(context) as run:
            details, findings = surges.check_outcomes(
                run.conn, run.redis, run.settings, run.window.end, dry_run=run.dry_run
            )
            run.record("crawl_outcomes", findings, details=details, resolves=(surges.CHECK,))
        return {"findings": [f.to_json() for f in findings], **details}

    @task
    def fleet(**context) -> dict:
        """Which kit workers are alive; an alert when work waits and none is."""
        from crawlops.fleet import CHECKS, check_fleet

        with task_run(context) as run:
            details, findings = check_fleet(run.redis, run.settings, run.window.end)
            run.record("fleet", findings, details=details, resolves=CHECKS)
        return {"findings": [f.to_json() for f in findings], **details}

    @task
    def freshness(**context) -> dict:
        """Is data still arriving where crawling is expected, at this run's time?"""
        from crawlops import quality

        with task_run(context) as run:
            details, findings = quality.check_freshness(run.conn, run.settings, run.window.end)
            run.record("freshness", findings, details=details, resolves=("freshness",))
        return {"findings": [f.to_json() for f in findings], **details}

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def hour_closes(**context) -> bool:
        from crawlops.model import closes_hour
        from crawlops_airflow.windows import run_window

        params = context["params"]
        return closes_hour(run_window(context), TZ) or bool(params["run_hourly"] or params["check_hour"])

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def day_closes(**context) -> bool:
        from crawlops.model import closes_day
        from crawlops_airflow.windows import run_window

        return closes_day(run_window(context), TZ) or bool(context["params"]["run_daily"])

    @task
    def crawl_objects(**context) -> list[str]:
        """The crawl objects the hour's checks judge: enabled, with config rows or recent tasks."""
        from crawlops import quality

        with task_run(context, "closing_hour") as run:
            return quality.objects_to_check(run.conn, run.settings, run.window)

    def hourly_check(name: str, resolves: tuple[str, ...], **task_kwargs):
        """A check on the hour that closes with this run, once per crawl object (a mapped task:
        one object's failure never stops another's), ``check(run, crawl_object, settings)`` ->
        details, findings; recorded as findings about the object's table and a check row under
        the object's name for the check; ``resolves``: the finding names it owns."""

        def decorate(check):
            @task(task_id=name, map_index_template="{{ crawl_object }}", **task_kwargs)
            def run_check(crawl_object: str, **context) -> dict:
                from crawlops import objects

                context["crawl_object"] = crawl_object  # names the map index in the UI
                entry = objects.get(crawl_object)
                with task_run(context, "closing_hour") as run:
                    settings = run.settings.for_object(crawl_object, entry.quality_defaults)
                    details, findings = check(run, entry, settings)
                    run.record(entry.check_name(name), findings, details=details, resolves=resolves,
                               scope=entry.results_table)  # fmt: skip
                return {"window": str(run.window), "crawl_object": crawl_object,
                        "findings": [f.to_json() for f in findings], **details}  # fmt: skip

            return run_check

        return decorate

    @hourly_check("volume_anomaly", ("volume_anomaly",))
    def volume_anomaly(run, entry, settings):
        from crawlops import quality

        return quality.volume_check(run.conn, entry.results_table, run.window, settings, dag_run_id=run.run_id)

    @hourly_check("schema_drift", ("schema_drift",))
    def schema_drift(run, entry, settings):
        from crawlops import quality

        return quality.suite_schema_check(run.conn, entry.results_table, entry.suite_file)

    # Runs after the suite has judged the hour as crawled, whatever its verdict.
    @hourly_check("quarantine_invalid", ("invalid_data",), trigger_rule="all_done")
    def quarantine_invalid(run, entry, settings):
        from crawlops import quality

        return quality.quarantine_invalid(
            run.conn, entry.results_table, run.window, settings, dry_run=run.dry_run, dag_run_id=run.run_id
        )

    # After the closing hour's checks, whatever their outcome, so the day's last hour is in it;
    # all_done also fires after a failure, so it runs only when the day closes.
    @task.run_if(_day_closed, skip_message="the day does not close with this run")
    @task(trigger_rule="all_done")
    def daily_report(**context) -> dict:
        """The day's report: stored in MySQL, written as HTML, sent to DingTalk as Markdown."""
        from crawlops import report

        with task_run(context, "day") as run:
            return report.publish(run.conn, run.redis, run.settings, run.window, tz=TZ, run_url=run.run_url,
                                  robot=run.robot(), dag_run_id=run.run_id, channel=run.dingtalk_conn_id)  # fmt: skip

    # Once a day, after the report (whatever its outcome), gated like it.
    @task.run_if(_day_closed, skip_message="the day does not close with this run")
    @task(trigger_rule="all_done")
    def retention(**context) -> dict:
        """Rows past their retention deleted in batches (``dry_run``: counted), resumed by the next day's run."""
        from crawlops.retention import check_status, purge

        with task_run(context, "day") as run:
            summary = purge(run.conn, run.settings, run.window.end, dry_run=run.dry_run)
            run.record("retention", [], details=summary, status=check_status(summary))
        return summary

    @task(trigger_rule="all_done")
    def summarize(system: dict | None, health: dict | None, **context) -> dict:
        """The run's findings by level, delivered; fails the run if the system check or task health did not."""

        with task_run(context) as run:
            return run.summarize(required={"system_check": system, "task_health": health})

    system = system_check()
    health = task_health()
    fresh = freshness()
    crawlers = [crawl_outcomes(), fleet()]
    hourly = hour_closes()
    daily = day_closes()
    # The per-object checks of the closing hour: one mapped task instance per crawl object in use.
    objects = crawl_objects()
    validate = ValidateSuiteOperator.partial(
        task_id="validate_results", hour_param="check_hour", execution_timeout=pendulum.duration(minutes=30),
        map_index_template="{{ task.crawl_object }}", outlets=[VALIDATED_HOURS],
    ).expand(crawl_object=objects)  # fmt: skip
    # Missing and incomplete data go back to the crawlers through the dispatch core.
    completeness = RetryTaskOperator(
        task_id="completeness", elements="fail_sets", window="closing_hour", check="completeness",
        hour_param="check_hour",
    )  # fmt: skip
    recrawl = RetryTaskOperator.partial(
        task_id="recrawl_incomplete", elements="required_fields", window="closing_hour",
        hour_param="check_hour", trigger_rule="all_done", map_index_template="{{ task.crawl_object }}",
    ).expand_kwargs(objects.map(_recrawl_kwargs))  # fmt: skip
    quarantine = quarantine_invalid.expand(crawl_object=objects)
    checks = [validate, volume_anomaly.expand(crawl_object=objects), schema_drift.expand(crawl_object=objects),
              completeness, recrawl, quarantine]  # fmt: skip
    report = daily_report()
    purge = retention()

    system >> health >> [hourly, daily]
    system >> fresh
    system >> crawlers
    hourly >> [objects, completeness]
    validate >> recrawl >> quarantine  # after the suite has judged the hour, whatever its verdict
    daily >> report >> purge
    checks >> report
    [*checks, report, purge, fresh, *crawlers] >> summarize(system, health)


amazon_data_supervision()
