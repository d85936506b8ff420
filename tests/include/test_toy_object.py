"""Adding a crawl object is a recipe: a registry entry, its table (what a migration would
create) and a suite file. A toy object registered here alone, no other module changed, goes
through dispatch, answers, settling, the hourly checks and the daily report."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from crawlops import dispatch, lifecycle, objects, quality, report, validation
from crawlops.model import UTC, Window
from crawlops.objects.base import DECIMAL, TEXT, CrawlObject
from crawlops.store import results
from crawlops.validation import gx_context

SA_URL = "mysql+pymysql://" + os.environ["CRAWLOPS_MYSQL_URL"].split("://", 1)[1]  # set by tests/conftest.py
TABLE = "amazon_toy_price"

# What the object's migration would hold: the results table and its quarantine, with the
# index names every results table has.
DDL = [
    f"""CREATE TABLE {TABLE} (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, task_id VARCHAR(191) NOT NULL,
        sku VARCHAR(64) COLLATE utf8mb4_bin NOT NULL, marketplace VARCHAR(16) NOT NULL, price DECIMAL(12,2) NULL,
        create_time DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
        create_hour DATETIME GENERATED ALWAYS AS
            (CAST(DATE(create_time) AS DATETIME) + INTERVAL HOUR(create_time) HOUR) STORED,
        PRIMARY KEY (id), KEY idx_result_create_time (create_time), KEY idx_result_create_hour (create_hour),
        KEY idx_result_element (task_id, sku), KEY idx_result_market_time (marketplace, create_time))
       DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    f"""CREATE TABLE {TABLE}_quarantine (
        id BIGINT UNSIGNED NOT NULL, task_id VARCHAR(191) NULL, sku VARCHAR(64) COLLATE utf8mb4_bin NULL,
        marketplace VARCHAR(16) NULL,
        price DECIMAL(12,2) NULL, create_time DATETIME NOT NULL, failed_rule VARCHAR(191) NOT NULL,
        quarantined_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, dag_run_id VARCHAR(250) NULL,
        PRIMARY KEY (id), KEY idx_quarantine_time (quarantined_at), KEY idx_quarantine_element (task_id, sku))
       DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
]

SUITE = {
    "name": TABLE,
    "meta": {"table": TABLE, "expected_columns": {"id": "numeric", "task_id": "string", "sku": "string",
                                                  "marketplace": "string", "price": "numeric",
                                                  "create_time": "datetime"}},
    "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": {"$PARAMETER": "min_rows"}},
         "meta": {"name": "row_count"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "price"},
         "meta": {"name": "price_not_null"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "price", "min_value": 0},
         "meta": {"name": "price_non_negative"}},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["task_id", "sku", "marketplace"]},
         "meta": {"name": "unique_result"}},
    ],
}  # fmt: skip


@pytest.fixture
def toy(mysql, tmp_path):
    suite = tmp_path / f"{TABLE}.json"
    suite.write_text(json.dumps(SUITE))
    entry = objects.register(
        CrawlObject(
            name="toy_price",
            results_table=TABLE,
            target_field="sku",
            paged=False,
            columns={"sku": TEXT, "marketplace": TEXT, "price": DECIMAL},
            required=("price",),
            position_column=None,
            validity_rules=lambda marketplaces: [("price_non_negative", "price < 0", [])],
            quality_defaults={"min_records_per_hour": 3},
            suite=str(suite),
        )
    )
    with mysql.cursor() as cur:
        for statement in (f"DROP TABLE IF EXISTS {TABLE}", f"DROP TABLE IF EXISTS {TABLE}_quarantine", *DDL):
            cur.execute(statement)
    yield entry
    gx_context.forget_suite(suite)  # the process's GE context as it was
    objects.unregister("toy_price")
    with mysql.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}_quarantine")


def test_a_toy_object_goes_through_dispatch_settling_the_hourly_checks_and_the_report(
    toy, mysql, redis_client, settings, config
):
    settings = type(settings).load(overrides={"dispatch": {"crawl_objects": ["search_result", "toy_price"]}})
    now = dt.datetime.now(UTC)
    hour = Window(now.replace(minute=0, second=0, microsecond=0), now.replace(minute=0, second=0, microsecond=0)
                  + dt.timedelta(hours=1))  # fmt: skip
    config([("toy_price", f"sku-{i}", "US", "hourly", None) for i in range(4)] + [("toy_price", "", "US", "hourly", 1)])

    plan = dispatch.plan_window(mysql, settings, hour, "UTC")
    dispatch.record_plan(mysql, settings, plan, dag_run_id="toy")
    dispatch.push_window(mysql, redis_client, settings, hour)

    (task,) = plan.tasks
    assert task.task_id == f"toy_price_{hour.epoch}_hourly" and plan.summary()["skipped"] == {"empty_target": 1}
    members = sorted(m.decode() for m in redis_client.smembers(task.task_id))
    assert members == [f'{{"marketplace":"US","sku":"sku-{i}"}}' for i in range(4)]

    # a worker answers every element: one row each, one of them invalid (a negative price)
    taken = [json.loads(m) for m in redis_client.spop(task.task_id, 10)]
    rows = [(task.task_id, e["sku"], e["marketplace"], -1 if e["sku"] == "sku-0" else 9.5) for e in taken]
    results.insert_rows(mysql, TABLE, rows)
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.settle_finished(mysql, redis_client, settings)
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT task_status, answered_count, lost_count FROM amazon_task_information WHERE task_id = %s",
            (task.task_id,),
        )
        assert cur.fetchone() == ("Completed", 4, 0)

    # the hourly checks, each on the object's own table with its own thresholds
    assert "toy_price" in quality.objects_to_check(mysql, settings, hour)
    own = settings.for_object("toy_price", toy.quality_defaults)
    assert own.quality.min_records_per_hour == 3 != settings.quality.min_records_per_hour
    suite_path = validation.suite_path_for(toy)
    checked = validation.validate_window(SA_URL, TABLE, suite_path, hour, validation.suite_parameters(own, hour))
    assert {o.name for o in checked.failed_outcomes()} == {"price_non_negative"} and checked.row_count == 4
    drift, drift_findings = quality.suite_schema_check(mysql, TABLE, toy.suite_file)
    assert drift_findings == [], drift
    verdict, volume_findings = quality.check_volume(mysql, TABLE, hour, own)
    assert verdict.observed == 4 and volume_findings == []
    summary, findings = quality.quarantine_invalid(mysql, TABLE, hour, own)
    assert summary["by_rule"] == {"price_non_negative": 1} and [f.subject for f in findings] == [TABLE]
    with mysql.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {TABLE}")
        main = cur.fetchone()[0]
        cur.execute(f"SELECT sku, failed_rule FROM {TABLE}_quarantine")
        assert (main, cur.fetchall()) == (3, (("sku-0", "price_non_negative"),))

    # the daily report counts its tasks and draws its volume
    day = Window(hour.start.replace(hour=0), hour.start.replace(hour=0) + dt.timedelta(days=1))
    data = report.build_daily_report(mysql, redis_client, settings, day, tz="UTC").data
    tasks = data.tasks.by_type["toy_price"]
    assert (tasks.dispatched, tasks.completed, tasks.answered_elements, tasks.success_rate) == (1, 1, 4, 1.0)
    assert data.volumes["toy_price"].table == TABLE and data.volumes["toy_price"].total_rows == 3
