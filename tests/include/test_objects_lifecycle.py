"""Every shipped crawl object through the ledger on the real MariaDB and Redis: its config rows
become ``<object>_<epoch>_<frequency>`` tasks with the SPEC's members; elements answered in
the object's table settle; a lost element is retried exactly once, an answered-empty one
never; the hour's suite verdict of each object shows in the one read model the page and the
report share."""

from __future__ import annotations

import datetime as dt
import os
import random

import pytest
from support.clock import inside_the_hour

from crawlops import dispatch, lifecycle, objects, readmodel, validation
from crawlops.harness import simulator
from crawlops.model import UTC, Window, fail_key
from crawlops.validation import gx_context
from crawlops.worker import WorkerClient

SA_URL = "mysql+pymysql://" + os.environ["CRAWLOPS_MYSQL_URL"].split("://", 1)[1]  # set by tests/conftest.py

# (config rows, the members of its task) per crawl object, as SPEC writes them
CASES = {
    "search_result": (
        [("search_result", "usb c cable", "US", "hourly", 2), ("search_result", "usb c cable", "DE", "hourly", 1)],
        {'{"keyword":"usb c cable","marketplace":"US","page":1}',
         '{"keyword":"usb c cable","marketplace":"US","page":2}',
         '{"keyword":"usb c cable","marketplace":"DE","page":1}'},
    ),
    "product_detail": (
        [("product_detail", "b0c1234567 ", "US", "hourly", None), ("product_detail", "B0C7654321", "DE", "hourly", 1),
         ("product_detail", "B0C1234567", "JP", "hourly", 1)],
        {'{"asin":"B0C1234567","marketplace":"US"}', '{"asin":"B0C7654321","marketplace":"DE"}',
         '{"asin":"B0C1234567","marketplace":"JP"}'},
    ),
    "product_review": (
        [("product_review", "B0C1234567", "US", "hourly", 3)],
        {f'{{"asin":"B0C1234567","marketplace":"US","page":{p}}}' for p in (1, 2, 3)},
    ),
}  # fmt: skip


def status(mysql, task_id):
    mysql.commit()
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT task_status, answered_count, empty_count, lost_count FROM amazon_task_information "
            "WHERE task_id = %s",
            (task_id,),
        )
        return cur.fetchone()


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_object_dispatches_settles_retries_the_lost_once_and_shows_its_suite(
    name, mysql, redis_client, settings, config
):
    now = inside_the_hour()  # the rows are stamped with the wall clock: the hour they fall in
    start = now.replace(minute=0, second=0, microsecond=0)
    hour = Window(start, start + dt.timedelta(hours=1))
    rows, members = CASES[name]
    config(rows)
    plan = dispatch.plan_window(mysql, settings, hour, "UTC")
    dispatch.record_plan(mysql, settings, plan, dag_run_id="test")
    dispatch.push_window(mysql, redis_client, settings, hour)
    task_id = f"{name}_{hour.epoch}_hourly"
    assert [t.task_id for t in plan.tasks] == [task_id] and plan.skipped == []
    assert {m.decode() for m in redis_client.smembers(task_id)} == members

    # the fleet answers the first element with rows, the second empty, and loses the third
    client = WorkerClient(redis_client, mysql, objects=[name])
    taken = sorted(client.take(10), key=lambda e: e.member)
    assert len(taken) == 3 and {e.crawl_object for e in taken} == {name}
    answered, empty, lost = taken
    behaviour = simulator.Behaviour(results_per_page=4, invalid_rate=0.0, null_rate=0.0)
    client.answer(answered, simulator.results_for(random.Random(1), answered, behaviour))
    client.empty(empty)
    client.flush()
    assert not redis_client.exists(task_id)  # drained: the lost element sits with a worker that died

    lifecycle.sync_statuses(mysql, redis_client, settings)
    later = dt.datetime.now(UTC) + dt.timedelta(seconds=settings.health.completeness_grace_seconds + 60)
    lifecycle.settle_finished(mysql, redis_client, settings, now=later)
    # answered counts the rows and the empty answer; the lost one handed to the retry task: Failed
    assert status(mysql, task_id) == ("Failed", 2, 1, 1)
    retry = fail_key(task_id)
    assert {m for m in redis_client.smembers(retry)} == {lost.member}  # the lost one alone, never the empty one

    # the retry answers it; settling again retries nothing more
    second = WorkerClient(redis_client, mysql, objects=[name])
    retried = second.take(10)
    assert [e.member for e in retried] == [lost.member]
    second.answer(retried[0], simulator.results_for(random.Random(2), retried[0], behaviour))
    second.flush()
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.settle_finished(mysql, redis_client, settings, now=later + dt.timedelta(hours=1))
    assert status(mysql, retry)[:2] == ("Completed", 1)
    assert not redis_client.exists(fail_key(retry)) and status(mysql, fail_key(retry)) is None

    # the hour's suite for this object, as the page and the report read it
    entry = objects.get(name)
    own = settings.for_object(name, {**entry.quality_defaults, "min_records_per_hour": 1})
    report = validation.validate_window(
        SA_URL, entry.results_table, validation.suite_path_for(entry), hour, validation.suite_parameters(own, hour)
    )
    gx_context.forget_suite(validation.suite_path_for(entry))  # the process's GE context as it was
    validation.store_report(mysql, report, dag_run_id="test", quality_score=1.0)
    suites = readmodel.suite_quality(mysql, hour.start, 1).suites
    assert report.success, [(o.name, o.unexpected_count) for o in report.failed_outcomes()]
    assert suites[entry.results_table].hours[0].verdict == "passed"
    assert suites[entry.results_table].hours[0].row_count == report.row_count > 0
