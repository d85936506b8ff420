"""
### Amazon crawl task dispatch

Every hour, turn the crawl configuration into crawl tasks for the crawler fleet and keep
every task's status current.

| step | what it does |
|---|---|
| `check_schema` | the database's schema version is the one this package needs; behind, the run fails at once saying to run `python -m crawlops.migrations` (migrations are applied at deploy, never by a run) |
| `record_tasks` | reads enabled rows of `amazon_crawl_config`, skips malformed ones with a logged reason, plans one task per (crawl object, frequency) due in the window and records task rows + element manifest in MySQL |
| `push_tasks` | publishes each newly recorded task's elements to its Redis set (task id = set name) |
| `sync_statuses` | `Pending` -> `In Progress` -> `Completed` / `Failed` from what the Redis sets show; `<task_id>_empty` answers recorded; the open-task index `crawlops:open_tasks` rebuilt |
| `retry_failures` | `RetryTaskOperator(elements="fail_sets")`: settles finished tasks: their unanswered elements (failed, or taken and never answered) become the retry task `<task_id>_fail`; past `retry_limit` retries the task is `Dead` (its findings recorded by the operator) |
| `reconcile_lost` | a set lost in a Redis flush or restart is pushed again from the manifest, minus elements answered or waiting in a retry |
| `summarize` | one summary of the run; skipped config rows become a WARNING alert (count per reason), lost queues, lost elements and bad set members WARNING, Dead tasks CRITICAL; the run's alerts go to DingTalk as one message |

A task that fails for good raises an ERROR alert naming the DAG, task and run.

**Window.** Work keys on the run's data interval `[start, end)`: hourly rows are due in
every window, daily rows in the window starting at 00:00, weekly rows in the one starting
Monday 00:00 (DAG timezone, `CRAWLOPS_TIMEZONE`, default UTC). Task id =
`{crawl_object}_{epoch of window start}_{frequency}`, so re-runs, clears and backfills of
the same window find the task already recorded and change nothing.

**Manual runs.** Trigger with a logical date to dispatch that date's window, or set
`interval_start` in the form to pick an hour. With neither, the run takes the last
complete hour before the moment it was triggered. `dry_run` plans and logs without
writing anything.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from crawlops.names import DISPATCH_DAG, cron
from crawlops.planning import CRAWL_OBJECTS
from crawlops.settings import dag_timezone
from crawlops_airflow.notifiers import CrawlAlertNotifier
from crawlops_airflow.operators import RetryTaskOperator
from crawlops_airflow.runtime import task_run

TZ = dag_timezone()


def _is_dry_run(context) -> bool:
    return bool(context["params"].get("dry_run"))


@dag(
    dag_id=DISPATCH_DAG,
    schedule=CronDataIntervalTimetable(cron(DISPATCH_DAG), timezone=TZ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=4,
    # A hung socket must not hold worker slots: no run outlives 2 hours, no task 45 minutes.
    dagrun_timeout=pendulum.duration(hours=2),
    doc_md=__doc__,
    default_args={
        "owner": "crawl-ops",
        "retries": 2,
        "execution_timeout": pendulum.duration(minutes=45),
        "retry_delay": pendulum.duration(minutes=1),
        # A task that failed for good becomes an ERROR alert naming the DAG, task and run.
        "on_failure_callback": CrawlAlertNotifier(record_failure=True),
    },
    tags=["crawl", "dispatch", "amazon"],
    params={
        "interval_start": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="Window start",
            description="Dispatch the hour starting here (on the hour). Empty: the run's own window.",
        ),
        "crawl_objects": Param(
            [],
            type="array",
            items={"type": "string", "enum": sorted(CRAWL_OBJECTS)},
            uniqueItems=True,
            title="Crawl objects",
            description="Only these crawl objects. Empty: all.",
        ),
        "frequencies": Param(
            [],
            type="array",
            items={"type": "string", "enum": ["hourly", "daily", "weekly"]},
            uniqueItems=True,
            title="Frequencies",
            description="Only config rows of these frequencies (still only when due). Empty: all.",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run", description="Plan and log; write nothing."),
    },
)
def amazon_task_dispatch():
    @task
    def check_schema() -> int:
        """The database is migrated to what this package needs (migrations run at deploy, not here)."""
        from crawlops_airflow.hooks.mysql import CrawlMySqlHook
        from crawlops_airflow.runtime import check_schema

        with CrawlMySqlHook().session() as conn:
            return check_schema(conn)

    @task
    def record_tasks(**context) -> dict:
        from crawlops import dispatch

        with task_run(context) as run:
            return dispatch.record_window(run.conn, run.settings, run.window, TZ, crawl_objects=run.params["crawl_objects"],
                                          frequencies=run.params["frequencies"], dry_run=run.dry_run,
                                          dag_run_id=run.run_id)  # fmt: skip

    @task.skip_if(_is_dry_run, skip_message="dry run: nothing is pushed")
    @task
    def push_tasks(**context) -> dict[str, int]:
        from crawlops import dispatch

        with task_run(context) as run:
            return dispatch.push_window(run.conn, run.redis, run.settings, run.window)

    @task
    def sync_statuses(**context) -> dict:
        from crawlops import lifecycle

        with task_run(context) as run:
            return lifecycle.sync_statuses(run.conn, run.redis, run.settings)

    @task
    def reconcile_lost(**context) -> dict:
        from crawlops import lifecycle

        with task_run(context) as run:
            return lifecycle.reconcile_summary(lifecycle.reconcile_lost(run.conn, run.redis, run.settings))

    @task(trigger_rule="none_failed")
    def summarize(recorded: dict, synced: dict | None, retried: dict | None, reconciled: dict | None, **context):
        """One summary of the run; its findings recorded and delivered as one message."""
        from crawlops import dispatch

        with task_run(context) as run:
            summary, findings = dispatch.run_summary(recorded, synced, retried, reconciled, source=DISPATCH_DAG)
            run.record(None, findings, deliver=True)  # none in a dry run; the run's alerts as one message
        return summary

    recorded = record_tasks()
    synced = sync_statuses()
    retried = RetryTaskOperator(task_id="retry_failures", elements="fail_sets")
    reconciled = reconcile_lost()
    check_schema() >> recorded >> push_tasks() >> synced >> retried >> reconciled
    summarize(recorded, synced, retried.output, reconciled)


amazon_task_dispatch()
