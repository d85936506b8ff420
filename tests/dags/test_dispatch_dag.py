"""The dispatch DAG end to end, in process (dag.test), against the real MariaDB and Redis."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from crawlops.model import UTC

pytestmark = pytest.mark.dagrun

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
# A Tuesday: only hourly rows are due at 12:00, daily ones at 00:00.
NOON = dt.datetime(2026, 11, 3, 12, tzinfo=UTC)
ROWS = [
    ("search_result", "usb c cable", "US", "hourly", 3),
    ("search_result", "ワイヤレスイヤホン", "JP", "hourly", 2),
    ("search_result", "phone case", "UK", "daily", 4),
    ("search_result", "", "US", "hourly", 3),
    ("search_result", "usb c cable", "US", "hourly", 3),
]


@pytest.fixture
def dag(airflow_db):
    """A freshly parsed DAG per test: dag.test() keeps a run's conf in the DAG object's params."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR)).get_dag("amazon_task_dispatch")


def run(dag, window_start=None, **kwargs):
    """One run for the hour starting at ``window_start`` (a scheduled run's logical date is its window end)."""
    if window_start is not None:
        kwargs["logical_date"] = window_start + dt.timedelta(hours=1)
    dag_run = dag.test(**kwargs)
    assert dag_run.state == "success"
    return {ti.task_id: ti for ti in dag_run.get_task_instances()}


def state(mysql, redis_client):
    with mysql.cursor() as cur:
        cur.execute("SELECT task_id, task_status, element_count FROM amazon_task_information ORDER BY task_id")
        tasks = cur.fetchall()
        cur.execute("SELECT task_id, element FROM amazon_task_element ORDER BY task_id, element")
        manifest = cur.fetchall()
    sets = {task_id: sorted(m.decode() for m in redis_client.smembers(task_id)) for task_id, *_ in tasks}
    return tasks, manifest, sets


def epoch(instant):
    return int(instant.timestamp())


def test_one_run_dispatches_the_window(dag, mysql, redis_client, config):
    config(ROWS)

    tis = run(dag, NOON)

    tasks, manifest, sets = state(mysql, redis_client)
    task_id = f"search_result_{epoch(NOON)}_hourly"
    assert tasks == ((task_id, "Pending", 5),)
    assert sets[task_id] == sorted(e for _, e in manifest)
    assert '{"keyword":"ワイヤレスイヤホン","marketplace":"JP","page":2}' in sets[task_id]
    assert {ti.task_id: ti.state for ti in tis.values()} == dict.fromkeys(
        [
            "check_schema",
            "record_tasks",
            "push_tasks",
            "sync_statuses",
            "retry_failures",
            "reconcile_lost",
            "summarize",
        ],
        "success",
    )


def test_same_interval_three_times_gives_the_same_rows_and_members(dag, mysql, redis_client, config, crawler):
    config(ROWS)
    run(dag, NOON)
    first = state(mysql, redis_client)

    run(dag, NOON)
    run(dag, NOON)

    assert state(mysql, redis_client) == first


def test_backfill_of_six_hours_gives_six_distinct_tasks(dag, mysql, redis_client, config):
    config(ROWS)
    starts = [NOON + dt.timedelta(hours=h) for h in range(6)]

    for start in starts:
        run(dag, start)

    tasks, manifest, sets = state(mysql, redis_client)
    assert [t[0] for t in tasks] == [f"search_result_{epoch(s)}_hourly" for s in starts]
    assert len(manifest) == 30
    assert all(len(members) == 5 for members in sets.values())


def test_dry_run_writes_nothing_and_skips_the_writers(dag, mysql, redis_client, config):
    config(ROWS)

    tis = run(dag, NOON, run_conf={"dry_run": True})

    assert state(mysql, redis_client) == ((), (), {})
    assert tis["push_tasks"].state == "skipped"
    assert tis["summarize"].state == "success"


def test_form_params_are_validated_before_the_run(dag):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        dag.test(logical_date=NOON, run_conf={"frequencies": ["monthly"]})


def test_interval_start_param_picks_the_hour(dag, mysql, redis_client, config):
    config(ROWS)
    midnight = dt.datetime(2026, 11, 4, tzinfo=UTC)

    run(dag, NOON, run_conf={"interval_start": midnight.isoformat()})

    tasks, _, _ = state(mysql, redis_client)
    assert [t[0] for t in tasks] == [
        f"search_result_{epoch(midnight)}_daily",
        f"search_result_{epoch(midnight)}_hourly",
    ]


def test_manual_run_without_logical_date_takes_the_last_complete_hour(dag, mysql, redis_client, config):
    config(ROWS)
    triggered = dt.datetime(2026, 11, 3, 12, 25, tzinfo=UTC)

    run(dag, logical_date=None, run_after=triggered)

    tasks, _, _ = state(mysql, redis_client)
    assert [t[0] for t in tasks] == [f"search_result_{epoch(NOON - dt.timedelta(hours=1))}_hourly"]


def test_a_redis_flush_is_recovered_by_the_next_run(dag, mysql, redis_client, config, crawler):
    config(ROWS)
    run(dag, NOON)
    task_id = f"search_result_{epoch(NOON)}_hourly"
    done = crawler.take(task_id, 2)
    crawler.succeed(task_id, done)
    _, manifest, _ = state(mysql, redis_client)

    redis_client.flushdb()
    run(dag, NOON + dt.timedelta(hours=1))

    requeued = sorted(m.decode() for m in redis_client.smembers(task_id))
    assert requeued == sorted({e for t, e in manifest if t == task_id} - set(done))
    assert redis_client.scard(f"search_result_{epoch(NOON) + 3600}_hourly") == 5


def alerts(mysql):
    with mysql.cursor() as cur:
        cur.execute("SELECT level, check_name, subject, title FROM amazon_alert ORDER BY id")
        return cur.fetchall()


def test_skipped_rows_raise_one_warning_with_counts_per_reason(dag, mysql, redis_client, config):
    config(ROWS)

    run(dag, NOON)
    run(dag, NOON)

    assert alerts(mysql) == (
        (
            "WARNING",
            "config_rows_skipped",
            "amazon_crawl_config",
            "2 config rows skipped: duplicate 1, empty_target 1",
        ),
    )


def test_a_task_past_its_retry_budget_raises_a_critical_alert(dag, mysql, redis_client, config, crawler, settings):
    config(ROWS[:1])
    run(dag, NOON)
    task_id = f"search_result_{epoch(NOON)}_hourly"
    with mysql.cursor() as cur:
        cur.execute(
            "UPDATE amazon_task_information SET retry_count = %s WHERE task_id = %s",
            (settings.dispatch.retry_limit, task_id),
        )
    mysql.commit()
    crawler.fail(task_id, crawler.take(task_id, 10))

    run(dag, NOON + dt.timedelta(hours=1))

    critical = [a for a in alerts(mysql) if a[0] == "CRITICAL"]
    assert [(a[1], a[2]) for a in critical] == [("task_dead", task_id)]
    with mysql.cursor() as cur:
        cur.execute("SELECT task_status FROM amazon_task_information WHERE task_id = %s", (task_id,))
        assert cur.fetchone() == ("Dead",)


def failure_titles(mysql, task_id):
    """What the failure callback told people about ``task_id`` (the part after the run id)."""
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT title FROM amazon_alert WHERE check_name = 'task_failed' AND subject LIKE %s", (f"%.{task_id}",)
        )
        return [title.split(": ", 1)[1] for (title,) in cur.fetchall()]


def failed_at_once(dag_run, task_id):
    ti = {t.task_id: t for t in dag_run.get_task_instances()}[task_id]
    return ti.state, ti.try_number


def test_an_interval_start_off_the_hour_fails_at_once_naming_the_param(dag, mysql, redis_client, config):
    config(ROWS)

    dag_run = dag.test(logical_date=NOON, run_conf={"interval_start": "2026-11-03T12:30:00+00:00"})

    # One try: a retry (two more, a minute apart) could not fix a bad param.
    assert failed_at_once(dag_run, "record_tasks") == ("failed", 1)
    assert state(mysql, redis_client)[0] == ()
    (title,) = failure_titles(mysql, "record_tasks")
    assert title.startswith("param interval_start='2026-11-03T12:30:00+00:00' is not an hour")


def test_a_malformed_settings_variable_fails_at_once_naming_it(dag, mysql, redis_client, config, monkeypatch):
    config(ROWS)
    monkeypatch.setenv("AIRFLOW_VAR_CRAWLOPS_SETTINGS", '{"dispatch": {"retry_limitt": 5}}')

    dag_run = dag.test(logical_date=NOON + dt.timedelta(hours=1))

    assert failed_at_once(dag_run, "record_tasks") == ("failed", 1)
    (title,) = failure_titles(mysql, "record_tasks")
    assert "Airflow Variable crawlops_settings" in title and "retry_limitt" in title


def test_a_database_behind_the_package_fails_the_run_at_once_and_changes_nothing(dag, mysql, redis_client, config):
    from crawlops.migrations import VERSION_TABLE, expected_version, migrate

    config(ROWS)
    newest = expected_version()
    with mysql.cursor() as cur:  # as if the deploy had not applied the newest migration
        cur.execute(f"DELETE FROM {VERSION_TABLE} WHERE version = %s", (newest,))
    mysql.commit()
    try:
        dag_run = dag.test(logical_date=NOON)

        assert failed_at_once(dag_run, "check_schema") == ("failed", 1)
        assert state(mysql, redis_client)[0] == ()  # no task recorded: no DDL, no DML in a behind schema
        (title,) = failure_titles(mysql, "check_schema")
        assert f"needs {newest}" in title and "python -m crawlops.migrations" in title
    finally:
        migrate(mysql)
