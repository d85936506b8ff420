"""RetryTaskOperator, tested the way provider operators are: ``execute`` called directly,
against the real MariaDB and Redis (issue 13, item 6).

Its three sources of elements: fail sets (and lost elements) of finished tasks, the
hour's account of them, and rows lacking a field the suite requires, traced back to
their elements and crawled once more through the task's retry chain.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from crawlops import dispatch, invariant, lifecycle
from crawlops.model import UTC, hour_window_starting
from crawlops_airflow.operators import RetryTaskOperator

NOON = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
TASK = "search_result_1793707200_hourly"
RETRY = TASK + "_fail"
SUITE = "amazon_search_result.json"


@pytest.fixture(autouse=True)
def _airflow(airflow_db):
    """Variables (the settings override) are read from Airflow's metadata database."""


def context(window, **params):
    """What Airflow hands ``execute`` for a run over ``window``."""
    return {
        "run_id": f"manual__{window.end.isoformat()}",
        "params": {"dry_run": False, **params},
        "data_interval_start": window.start,
        "data_interval_end": window.end,
    }


def closing(hour):
    """The 5-minute supervision window that closes ``hour``."""
    return type(hour)(hour.end - dt.timedelta(minutes=5), hour.end)


def recrawl_operator(**kwargs):
    return RetryTaskOperator(
        task_id="recrawl_incomplete", elements="required_fields", window="closing_hour",
        table="amazon_search_result", suite=SUITE, check="recrawl_incomplete", **kwargs,
    )  # fmt: skip


def dispatch_noon(mysql, r, settings, config, *, keywords=2, pages=5):
    config([("search_result", f"keyword {i}", "US", "hourly", pages) for i in range(keywords)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, NOON, "UTC"))
    dispatch.push_window(mysql, r, settings, NOON)


def rows(mysql, sql, params=()):
    with mysql.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def task_row(mysql, task_id):
    found = rows(
        mysql, "SELECT task_status, element_count, retry_count, task_source FROM amazon_task_information "
        "WHERE task_id = %s", (task_id,),
    )  # fmt: skip
    return found[0] if found else None


def manifest(mysql, task_id):
    return sorted(e for (e,) in rows(mysql, "SELECT element FROM amazon_task_element WHERE task_id = %s", (task_id,)))


def members(r, key):
    return sorted(m.decode() for m in r.smembers(key))


def blank_titles(mysql, task_id, elements, *, hour=NOON):
    """The rows answering ``elements`` lost their title, and all of the task's rows are dated in ``hour``."""
    with mysql.cursor() as cur:
        cur.execute(
            "UPDATE amazon_search_result SET create_time = %s + INTERVAL id SECOND WHERE task_id = %s",
            (hour.naive()[0], task_id),
        )
        for text in elements:
            e = json.loads(text)
            cur.execute(
                "UPDATE amazon_search_result SET title = NULL WHERE task_id = %s AND keyword = %s AND page = %s",
                (task_id, e["keyword"], e["page"]),
            )
    mysql.commit()


def alerts(mysql, check):
    return rows(
        mysql, "SELECT level, subject, title, action_taken FROM amazon_alert WHERE check_name = %s "
        "AND resolved_at IS NULL ORDER BY id", (check,),
    )  # fmt: skip


def test_unknown_elements_or_window_fail_when_the_dag_is_parsed():
    with pytest.raises(ValueError, match="elements="):
        RetryTaskOperator(task_id="x", elements="everything")
    with pytest.raises(ValueError, match="window="):
        RetryTaskOperator(task_id="x", elements="fail_sets", window="yesterday")
    with pytest.raises(ValueError, match="needs the table and the suite"):
        RetryTaskOperator(task_id="x", elements="required_fields")


# --- fail sets ---------------------------------------------------------------------------


def test_fail_sets_become_the_retry_task(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)  # 10 elements
    _, failed = crawler.drain(TASK, fail_every=4)
    lifecycle.sync_statuses(mysql, redis_client, settings)

    result = RetryTaskOperator(task_id="retry_failures", elements="fail_sets").execute(context(NOON))

    assert result["retries"] == {RETRY: len(failed)}
    assert task_row(mysql, RETRY) == ("Pending", len(failed), 1, TASK)
    assert manifest(mysql, RETRY) == sorted(failed)
    assert members(redis_client, RETRY) == sorted(failed)
    assert task_row(mysql, TASK)[0] == "Failed"


def test_fail_sets_past_the_budget_make_the_task_dead_with_a_critical_alert(
    mysql, redis_client, settings, config, crawler
):
    dispatch_noon(mysql, redis_client, settings, config)
    with mysql.cursor() as cur:
        cur.execute("UPDATE amazon_task_information SET retry_count = %s", (settings.dispatch.retry_limit,))
    mysql.commit()
    crawler.drain(TASK, fail_every=2)
    lifecycle.sync_statuses(mysql, redis_client, settings)

    result = RetryTaskOperator(task_id="retry_failures", elements="fail_sets").execute(context(NOON))

    assert [d["task_id"] for d in result["dead"]] == [TASK]
    assert task_row(mysql, TASK)[0] == "Dead"
    assert task_row(mysql, RETRY) is None
    assert [(level, subject) for level, subject, *_ in alerts(mysql, "task_dead")] == [("CRITICAL", TASK)]


def test_dry_run_reports_the_retry_and_creates_nothing(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    _, failed = crawler.drain(TASK, fail_every=3)
    lifecycle.sync_statuses(mysql, redis_client, settings)

    result = RetryTaskOperator(task_id="retry_failures", elements="fail_sets").execute(context(NOON, dry_run=True))

    assert result["retries"] == {RETRY: len(failed)}
    assert task_row(mysql, RETRY) is None
    assert task_row(mysql, TASK)[0] == "Failed"


def test_completeness_records_the_hours_account_as_a_check(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    taken = crawler.take(TASK, 10)
    crawler.succeed(TASK, taken[:8])  # two taken by a worker that died
    lifecycle.sync_statuses(mysql, redis_client, settings)
    with mysql.cursor() as cur:  # finished long enough ago that the grace period is over
        cur.execute("UPDATE amazon_task_information SET finished_at = UTC_TIMESTAMP() - INTERVAL 1 DAY")
    mysql.commit()
    now = dt.datetime.now(UTC)
    hour = hour_window_starting(now.replace(minute=0, second=0, microsecond=0), "UTC")

    result = RetryTaskOperator(
        task_id="completeness", elements="fail_sets", window="closing_hour", check="completeness"
    ).execute(context(closing(hour)))

    assert result["missing"] == {TASK: 2}
    assert manifest(mysql, RETRY) == sorted(taken[8:])
    assert rows(mysql, "SELECT status FROM amazon_check_run WHERE check_name = 'completeness'") == (("fail",),)
    assert [s for _, s, *_ in alerts(mysql, "missing_data")] == [TASK]


# --- rows lacking a required field --------------------------------------------------------


def test_rows_lacking_a_required_field_are_traced_to_their_elements_and_recrawled(
    mysql, redis_client, settings, config, crawler
):
    dispatch_noon(mysql, redis_client, settings, config)  # 10 elements, answered with 2 rows each
    taken = sorted(crawler.take(TASK, 10))
    crawler.succeed(TASK, taken, rows_per_element=2)
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)  # Completed, settled: nothing to retry
    incomplete = taken[:3]
    blank_titles(mysql, TASK, incomplete)

    result = recrawl_operator().execute(context(closing(NOON)))

    assert result["rows"] == 6 and result["by_column"] == {"title": 6}
    assert result["sent"] == 3 and result["retry_tasks"] == [RETRY]
    assert task_row(mysql, RETRY) == ("Pending", 3, 1, TASK)
    assert manifest(mysql, RETRY) == sorted(incomplete)
    assert members(redis_client, RETRY) == sorted(incomplete)
    assert redis_client.sismember("crawlops:open_tasks", RETRY)
    marked = rows(mysql, "SELECT COUNT(*) FROM amazon_task_element WHERE task_id = %s AND recrawl_at IS NOT NULL",
                  (RETRY,))  # fmt: skip
    assert marked == ((3,),)
    [(level, subject, title, action)] = alerts(mysql, "incomplete_data")
    assert (level, subject) == ("INFO", "amazon_search_result")
    assert "6 rows lack a required field (title 6)" in title and "sent 3 elements" in action
    assert rows(mysql, "SELECT status FROM amazon_check_run WHERE check_name = 'recrawl_incomplete'") == (
        ("repaired",),
    )


def test_an_element_is_recrawled_once_and_a_rerun_sends_nothing_more(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    taken = sorted(crawler.take(TASK, 10))
    crawler.succeed(TASK, taken)
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    blank_titles(mysql, TASK, taken[:2])
    first = recrawl_operator().execute(context(closing(NOON)))
    assert first["sent"] == 2

    # Re-running the hour: the same rows, already on their way; nothing new, still INFO.
    again = recrawl_operator().execute(context(closing(NOON)))
    assert again["sent"] == 0 and again["sent_earlier"] == 2 and again["incomplete_after_recrawl"] == 0
    assert [a[0] for a in alerts(mysql, "incomplete_data")] == ["INFO"]
    assert manifest(mysql, RETRY) == sorted(taken[:2])

    # The re-crawl answers, and its rows lack the title again: reported, never crawled a third time.
    next_hour = hour_window_starting(NOON.end, "UTC")
    crawler.succeed(RETRY, crawler.take(RETRY, 10))
    blank_titles(mysql, RETRY, taken[:2], hour=next_hour)
    with mysql.cursor() as cur:  # the re-crawl's rows arrived after it was asked for
        cur.execute("UPDATE amazon_task_element SET recrawl_at = %s WHERE task_id = %s", (NOON.naive()[1], RETRY))
    mysql.commit()
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    assert task_row(mysql, RETRY)[0] == "Completed"

    later = recrawl_operator().execute(context(closing(next_hour)))

    assert later["sent"] == 0 and later["incomplete_after_recrawl"] == 2
    assert task_row(mysql, RETRY + "_fail") is None
    warning = [a for a in alerts(mysql, "incomplete_data") if a[0] == "WARNING"]
    assert len(warning) == 1 and "2 elements still incomplete after their one re-crawl" in warning[0][3]
    status = rows(mysql, "SELECT status FROM amazon_check_run WHERE check_name = 'recrawl_incomplete' "
                  "ORDER BY window_start")  # fmt: skip
    assert status == (("repaired",), ("fail",))


def test_recrawl_joins_the_open_retry_of_the_chain(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    done, failed = crawler.drain(TASK, fail_every=5)  # 2 failed, 8 answered
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)  # the retry task is open with the 2 failures
    blank_titles(mysql, TASK, done[:3])

    result = recrawl_operator().execute(context(closing(NOON)))

    assert result["handed"] == [{"task_id": TASK, "retry_task": RETRY, "count": 3, "how": "joined"}]
    assert manifest(mysql, RETRY) == sorted(failed + done[:3])
    assert task_row(mysql, RETRY)[1] == 5  # element_count
    assert members(redis_client, RETRY) == sorted(failed + done[:3])
    assert task_row(mysql, RETRY + "_fail") is None
    # A sync does not take the joined elements for strangers to the retry's source.
    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert members(redis_client, RETRY) == sorted(failed + done[:3])


def test_recrawl_of_a_retry_element_goes_to_a_retry_of_the_chains_last_task(
    mysql, redis_client, settings, config, crawler
):
    dispatch_noon(mysql, redis_client, settings, config)
    done, failed = crawler.drain(TASK, fail_every=5)
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    crawler.succeed(RETRY, crawler.take(RETRY, 10))  # the retry answers both
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    assert task_row(mysql, RETRY)[0] == "Completed"
    blank_titles(mysql, TASK, done[:1])
    blank_titles(mysql, RETRY, failed[:1])

    result = recrawl_operator().execute(context(closing(NOON)))

    assert result["sent"] == 2 and result["retry_tasks"] == [RETRY + "_fail"]
    assert task_row(mysql, RETRY + "_fail") == ("Pending", 2, 2, RETRY)
    assert manifest(mysql, RETRY + "_fail") == sorted([done[0], failed[0]])
    # done[0] is no element of the retry's source: a sync keeps it, since the retry's own manifest has it
    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert members(redis_client, RETRY + "_fail") == sorted([done[0], failed[0]])


def test_no_recrawl_past_the_retry_budget(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    with mysql.cursor() as cur:
        cur.execute("UPDATE amazon_task_information SET retry_count = %s", (settings.dispatch.retry_limit,))
    mysql.commit()
    taken = crawler.take(TASK, 10)
    crawler.succeed(TASK, taken)
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    blank_titles(mysql, TASK, taken[:4])

    result = recrawl_operator().execute(context(closing(NOON)))

    assert result["sent"] == 0 and result["budget_spent"] == 4
    assert task_row(mysql, RETRY) is None
    assert task_row(mysql, TASK)[0] == "Completed"  # answered, if incompletely: not Dead
    [(level, _, _, action)] = alerts(mysql, "incomplete_data")
    assert level == "WARNING" and "4 elements not re-crawled: retry budget spent" in action


def test_rows_naming_no_element_are_reported_not_guessed(mysql, redis_client, settings, config, crawler):
    dispatch_noon(mysql, redis_client, settings, config)
    taken = crawler.take(TASK, 10)
    crawler.succeed(TASK, taken)
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    blank_titles(mysql, TASK, [])
    start = NOON.naive()[0]
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_search_result (task_id, keyword, marketplace, asin, title, price, page, position, "
            "create_time) VALUES (%s, %s, 'US', 'B000000001', NULL, 1, %s, 1, %s)",
            [
                (None, "keyword 0", 1, start),  # no task id
                (TASK, None, 1, start),  # no keyword
                (TASK, "keyword 0", 99, start),  # a page the task never had
                ("search_result_1_hourly", "keyword 0", 1, start),  # no such task
            ],
        )
    mysql.commit()

    result = recrawl_operator().execute(context(closing(NOON)))

    assert result["rows"] == 4 and result["untraceable_rows"] == 4 and result["sent"] == 0
    assert task_row(mysql, RETRY) is None
    [(level, _, _, action)] = alerts(mysql, "incomplete_data")
    assert level == "WARNING" and "4 rows name no element" in action


def test_an_hour_with_complete_rows_passes_and_resolves_an_earlier_finding(
    mysql, redis_client, settings, config, crawler
):
    dispatch_noon(mysql, redis_client, settings, config)
    taken = sorted(crawler.take(TASK, 10))
    crawler.succeed(TASK, taken)
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    blank_titles(mysql, TASK, taken[:1])
    recrawl_operator().execute(context(closing(NOON)))
    assert len(alerts(mysql, "incomplete_data")) == 1
    with mysql.cursor() as cur:  # someone fixed the rows by hand; the hour is re-checked
        cur.execute("UPDATE amazon_search_result SET title = 'fixed' WHERE title IS NULL")
    mysql.commit()

    result = recrawl_operator().execute(context(closing(NOON)))

    assert result["rows"] == 0
    assert alerts(mysql, "incomplete_data") == ()
    assert rows(mysql, "SELECT status FROM amazon_check_run WHERE check_name = 'recrawl_incomplete'") == (("pass",),)


def test_a_recrawl_retry_created_while_its_task_waits_out_the_grace_keeps_the_lost_elements(
    mysql, redis_client, settings, config, crawler
):
    """The retry ``<task>_fail`` exists before the task settles (a re-crawl made it): the
    task's lost elements join it instead of being dropped."""
    dispatch_noon(mysql, redis_client, settings, config)
    taken = sorted(crawler.take(TASK, 10))
    crawler.succeed(TASK, taken[:8])  # two taken and never answered
    lifecycle.sync_statuses(mysql, redis_client, settings)
    assert lifecycle.retry_failures(mysql, redis_client, settings)["waiting"] == {TASK: 2}
    blank_titles(mysql, TASK, taken[:1])
    recrawl_operator().execute(context(closing(NOON)))
    assert manifest(mysql, RETRY) == [taken[0]]

    later = dt.datetime.now(UTC) + dt.timedelta(seconds=settings.health.completeness_grace_seconds + 5)
    settled = lifecycle.retry_failures(mysql, redis_client, settings, now=later)

    assert settled["retries"] == {RETRY: 2}
    assert manifest(mysql, RETRY) == sorted([taken[0], *taken[8:]])
    assert members(redis_client, RETRY) == sorted([taken[0], *taken[8:]])
    assert task_row(mysql, TASK)[0] == "Failed"
    assert invariant.element_fates(mysql).get("LOST", 0) == 0
