"""The Great Expectations suite on the real MariaDB: verdicts per rule, both batch strategies, the floor, storage.

great_expectations is imported once for the whole module (the first validation pays for
it); every other validation here takes a fraction of a second.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import subprocess
import sys

import pytest

from bench.validation_floor import ASIN_REGEX, floor_counts, outcome_counts
from crawlops import validation
from crawlops.model import UTC, Window, hour_window_starting
from crawlops.settings import Settings
from crawlops.validation import gx_context

TABLE = "amazon_search_result"
HOUR = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
START = HOUR.start.replace(tzinfo=None)
TASK = "search_result_1793707200_hourly"
SA_URL = "mysql+pymysql://" + os.environ["CRAWLOPS_MYSQL_URL"].split("://", 1)[1]  # set by tests/conftest.py
CLEAN = 1_200  # rows in a clean hour: above min_records_per_hour (1000)
COLUMNS = (
    "task_id, keyword, marketplace, asin, title, price, currency, rating, review_count, page, position, create_time"
)


def row(i: int, when: dt.datetime, **changes) -> tuple:
    values = {
        "task_id": TASK,
        "keyword": f"kw {i // 200}",
        "marketplace": ("US", "DE", "JP")[i % 3],
        "asin": f"B0{i:08d}",
        "title": f"item {i}",
        "price": 9.99,
        "currency": "USD",
        "rating": 4.5,
        "review_count": 10,
        "page": i // 10 % 20 + 1,
        "position": i % 10 + 1,
        "create_time": when,
    }
    values.update(changes)
    return tuple(values.values())


def clean_rows(count: int = CLEAN, start: dt.datetime = START, span: int = 3600) -> list[tuple]:
    return [row(i, start + dt.timedelta(seconds=i * span // count)) for i in range(count)]


def insert(mysql, rows) -> None:
    with mysql.cursor() as cur:
        cur.executemany(f"INSERT INTO {TABLE} ({COLUMNS}) VALUES ({', '.join(['%s'] * 12)})", rows)
    mysql.commit()


def validate(settings, window=HOUR, **kwargs) -> validation.ValidationReport:
    params = validation.suite_parameters(settings, window)
    return validation.validate_window(SA_URL, TABLE, validation.DEFAULT_SUITE_PATH, window, params, **kwargs)


def verdict(report) -> dict:
    """What must not depend on the batch strategy: the verdict and every number."""
    return {
        "success": report.success,
        "row_count": report.row_count,
        "outcomes": [
            (o.name, o.success, o.unexpected_count, o.unexpected_percent, o.observed_value) for o in report.outcomes
        ],
    }


# Each case breaks exactly one rule of a clean hour: (name, rule, rows, settings overrides).
def _with(count: int, **changes):
    """A clean hour whose first ``count`` rows get ``changes``."""
    rows = clean_rows()
    for i in range(count):
        rows[i] = row(i, rows[i][-1], **changes)
    return rows


CASES = [
    ("too_few_rows", "row_count", clean_rows(999), {}),
    ("nulls_above_1pct", "title_not_null", _with(13, title=None), {}),  # 13/1200 = 1.08%
    ("null_task_ids", "task_id_not_null", _with(13, task_id=None), {}),
    ("negative_price", "price_non_negative", _with(13, price=-1.0), {}),
    ("rating_7", "rating_range", _with(13, rating=7), {}),
    ("lower_case_asin", "asin_format", _with(13, asin="b0abcdefgh"), {}),  # MariaDB REGEXP ignores case under _ci
    ("short_asin", "asin_format", _with(13, asin="B0123"), {}),
    ("unknown_marketplace", "marketplace_known", _with(13, marketplace="XX"), {}),
    ("duplicate_key", "unique_result", [*clean_rows(), row(0, START + dt.timedelta(minutes=59))], {}),
]


@pytest.fixture(scope="module", autouse=True)
def _gx_once():
    """Import great_expectations once for the module, so tests time their SQL, not the import."""
    validation.import_gx()


def test_clean_hour_passes_on_the_partition_path(mysql, settings):
    insert(mysql, clean_rows())

    report = validation.raise_for_report(validate(settings))

    assert report.strategy == "partition"
    assert (report.success, report.row_count, report.failed) == (True, CLEAN, 0)
    assert report.evaluated == len(validation.load_suite(validation.DEFAULT_SUITE_PATH)["expectations"]) == 14
    assert json.loads(json.dumps(report.to_json()))["outcomes"][0]["name"] == "row_count"


@pytest.mark.parametrize(("case", "rule", "rows", "overrides"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_fails_on_data_that_breaks_it(mysql, case, rule, rows, overrides):
    settings = Settings.load(overrides=overrides)
    insert(mysql, rows)

    report = validate(settings)
    fallback = validate(settings, partition_column=None)

    assert report.strategy == "partition" and fallback.strategy == "query"
    assert [o.name for o in report.failed_outcomes()] == [rule]
    assert verdict(fallback) == verdict(report)
    with pytest.raises(validation.ValidationFailed) as failed:
        validation.raise_for_report(report)
    assert failed.value.report is report
    assert rule in str(failed.value)
    broken = report.outcome(rule)
    detail = f"{broken.unexpected_count} unexpected" if broken.unexpected_count is not None else "observed"
    assert detail in str(failed.value)
    # The one-statement floor counts exactly what GE counted.
    floor = floor_counts(mysql, TABLE, HOUR, marketplaces=settings.dispatch.marketplaces)
    assert floor == outcome_counts(report)


def test_failure_message_names_counts_and_observed_values(mysql, settings):
    rows = clean_rows(999)
    rows[:20] = [row(i, r[-1], price=-5) for i, r in enumerate(rows[:20])]
    insert(mysql, rows)

    report = validate(settings)
    with pytest.raises(validation.ValidationFailed) as failed:
        validation.raise_for_report(report)
    message = str(failed.value)

    assert "failed 2 of 14" in message
    assert "row_count: observed 999" in message
    assert "price_non_negative: 20 unexpected (2.00%)" in message
    findings = validation.report_findings(report)
    assert [(f.level.value, f.check, f.subject) for f in findings] == [
        ("ERROR", "row_count", TABLE),
        ("ERROR", "price_non_negative", f"{TABLE}.price"),
    ]
    assert findings[1].details["unexpected_count"] == 20
    assert validation.report_findings(validate(Settings.load(overrides={"quality": {"min_records_per_hour": 1}}))) != []


def test_one_percent_of_nulls_is_still_tolerated(mysql, settings):
    insert(mysql, _with(12, title=None, rating=None))  # 12/1200 = 1.00%: at the limit; null ratings are fine

    report = validate(settings)

    assert report.success
    assert report.outcome("title_not_null").unexpected_count == 12


def test_thresholds_come_from_the_settings(mysql):
    insert(mysql, _with(40, asin="not-an-asin"))  # 3.3% bad ASINs

    strict = validate(Settings.load())
    loose = validate(Settings.load(overrides={"quality": {"error_rate_max": 0.05, "min_records_per_hour": 1300}}))

    assert [o.name for o in strict.failed_outcomes()] == ["asin_format"]
    assert [o.name for o in loose.failed_outcomes()] == ["row_count"]  # 1200 < 1300, 3.3% < 5%


def test_rows_outside_the_window_are_not_counted(mysql, settings):
    bad = {"price": -1, "rating": 9, "asin": "x", "marketplace": "XX", "title": None}
    outside = [
        row(i, when, **bad)
        for i, when in enumerate([START - dt.timedelta(seconds=1), HOUR.end.replace(tzinfo=None)] * 300)
    ]
    insert(mysql, clean_rows() + outside + [row(0, START + dt.timedelta(hours=2))])  # a duplicate key, later

    for partition_column in ("create_hour", None):
        report = validate(settings, partition_column=partition_column)
        assert (report.success, report.row_count) == (True, CLEAN), report.failed_outcomes()
    assert floor_counts(mysql, TABLE, HOUR)["rows"] == CLEAN


def test_a_window_that_is_not_one_aligned_hour_uses_the_query_asset(mysql, settings):
    insert(mysql, clean_rows() + clean_rows(start=START + dt.timedelta(hours=1)))
    half_past = Window(HOUR.start + dt.timedelta(minutes=30), HOUR.end + dt.timedelta(minutes=30))

    report = validate(settings, window=half_past)

    assert report.strategy == "query"
    assert (report.success, report.row_count) == (True, CLEAN)  # 600 + 600 rows


def test_an_empty_hour_fails_volume(mysql, settings):
    insert(mysql, clean_rows(start=START - dt.timedelta(hours=1)))

    report = validate(settings)

    assert report.row_count == 0
    assert [o.name for o in report.failed_outcomes()] == ["row_count"]
    floor = floor_counts(mysql, TABLE, HOUR)
    assert set(floor.values()) == {0}  # GE reports no unexpected counts for an empty batch; the floor says 0


def test_store_report_upserts_one_row_per_window(mysql, settings):
    insert(mysql, clean_rows(999))
    first = validate(settings)
    validation.store_report(mysql, first, dag_run_id="run_1")
    insert(mysql, [row(i, START + dt.timedelta(seconds=i)) for i in range(999, CLEAN)])  # the rest arrived late
    second = validate(settings)
    validation.store_report(mysql, second, dag_run_id="run_2")

    with mysql.cursor() as cur:
        cur.execute(
            "SELECT suite_name, table_name, window_start, window_end, success, evaluated, failed, row_count, "
            "dag_run_id, results FROM amazon_validation_run"
        )
        rows = cur.fetchall()
    assert (first.success, second.success) == (False, True)
    assert len(rows) == 1
    suite, table, start, end, success, evaluated, failed, row_count, run_id, results = rows[0]
    assert (suite, table, start, end) == ("amazon_search_result", TABLE, *HOUR.naive())
    assert (success, evaluated, failed, row_count, run_id) == (1, 14, 0, CLEAN, "run_2")
    assert json.loads(results)["outcomes"] == second.to_json()["outcomes"]


def test_a_missing_column_fails_its_rules_with_the_error(mysql, settings):
    insert(mysql, clean_rows())
    with mysql.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS drift_probe")
        cur.execute(f"CREATE TABLE drift_probe AS SELECT * FROM {TABLE}")
        cur.execute("ALTER TABLE drift_probe DROP COLUMN rating")
    try:
        params = validation.suite_parameters(settings, HOUR)
        report = validation.validate_window(SA_URL, "drift_probe", validation.DEFAULT_SUITE_PATH, HOUR, params)
    finally:
        with mysql.cursor() as cur:
            cur.execute("DROP TABLE drift_probe")

    assert [o.name for o in report.failed_outcomes()] == ["rating_range"]
    assert "rating" in report.outcome("rating_range").exception


def test_repeated_validations_reuse_the_ge_objects_and_leave_nothing_behind(mysql, settings):
    import sqlalchemy as sa

    insert(mysql, clean_rows())
    validate(settings)
    validate(settings, partition_column=None)
    sources = dict(gx_context.STATE.datasources)
    created = []

    def record(conn, cursor, statement, *args):
        if statement.startswith("CREATE TEMPORARY TABLE"):
            created.append(statement.split()[3])

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        for _ in range(3):
            validate(settings)
            validate(settings, partition_column=None)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)

    assert gx_context.STATE.datasources == sources  # no new data source, engine or connection pool
    assets = [a.name for s in sources.values() for a in s.assets]
    assert f"{TABLE}__by_create_hour" in assets
    assert [a for a in assets if not a.endswith("__by_create_hour")] == []  # per-window query assets removed
    assert len(created) == 3  # one temp table per query-asset run, none for the partition path
    context = gx_context.data_context()
    validations = [v.data.data_asset.name for v in context.validation_definitions.all()]
    assert f"{TABLE}__by_create_hour" in validations
    assert [v for v in validations if not v.endswith("__by_create_hour")] == []  # went with their query assets
    assert [s.name.split("@")[0] for s in context.suites.all()] == ["amazon_search_result"]
    assert context.validation_results_store.list_keys() == []  # GE's copies of the results are not kept
    engine = gx_context.datasource(SA_URL, temp_tables=True).get_execution_engine().engine
    with engine.connect() as conn:  # the temp-table source's one connection: where they were made
        for name in created:
            with pytest.raises(sa.exc.ProgrammingError, match="doesn't exist"):
                conn.execute(sa.text(f"SELECT 1 FROM `{name}`"))
            conn.rollback()


def test_ge_stays_quiet(mysql, settings, caplog):
    insert(mysql, clean_rows())
    caplog.set_level(logging.DEBUG)

    validate(settings)
    validate(settings, partition_column=None)

    noisy = [r for r in caplog.records if r.name.startswith("great_expectations") and r.levelno < logging.ERROR]
    assert noisy == []
    assert any(r.name == "crawlops.validation" for r in caplog.records)


def test_importing_the_module_imports_neither_ge_nor_airflow():
    code = (
        "import sys, crawlops.validation; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('great_expectations', 'airflow')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "[]"


def test_suite_file_holds_no_thresholds_and_names_every_rule(mysql, settings):
    suite = validation.load_suite(validation.DEFAULT_SUITE_PATH)
    by_name = {e["meta"]["name"]: e for e in suite["expectations"]}

    for exp in suite["expectations"]:
        if "mostly" in exp["kwargs"]:
            assert isinstance(exp["kwargs"]["mostly"], dict), exp["meta"]["name"]
    assert by_name["row_count"]["kwargs"]["min_value"] == {"$PARAMETER": "min_rows"}
    assert by_name["marketplace_known"]["kwargs"]["value_set"] == {"$PARAMETER": "marketplaces"}
    assert by_name["asin_format"]["kwargs"]["regex"] == ASIN_REGEX
    assert {f"{c}_not_null" for c in validation.REQUIRED_COLUMNS} <= set(by_name)
    params = validation.suite_parameters(settings, HOUR)
    assert validation.suite_parameter_names(suite) <= set(params)
    two_hours = Window(HOUR.start, HOUR.end + dt.timedelta(hours=1))
    assert validation.suite_parameters(settings, two_hours)["min_rows"] == 2000
    assert (params["min_rows"], params["validity_mostly"], params["window_end"]) == (1000, 0.99, "2026-11-03 13:00:00")
    # The schema-drift baseline matches the live table.
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (TABLE,),
        )
        live = {name for (name,) in cur.fetchall()}
    expected = validation.expected_columns(suite)
    assert set(expected) == live
    assert set(expected.values()) <= {"string", "numeric", "datetime"}


def test_an_edited_suite_file_replaces_its_suite_in_the_ge_context(mysql, settings, tmp_path):
    insert(mysql, clean_rows())
    suite = validation.load_suite(validation.DEFAULT_SUITE_PATH)
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(suite))
    params = validation.suite_parameters(settings, HOUR)

    first = validation.validate_window(SA_URL, TABLE, path, HOUR, params)
    suite["expectations"] = [e for e in suite["expectations"] if e["meta"]["name"] != "rating_range"]
    path.write_text(json.dumps(suite))
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 10))
    second = validation.validate_window(SA_URL, TABLE, path, HOUR, params)
    shipped = validate(settings)

    assert (first.evaluated, second.evaluated, shipped.evaluated) == (14, 13, 14)
    assert "rating_range" not in [o.name for o in second.outcomes]

    def cached(suite_path):
        return [ge_suite.name for (p, _), (_, ge_suite) in gx_context.STATE.suites.items() if p == str(suite_path)]

    assert len(cached(path.resolve())) == 1  # the edited file's suite replaced the first one
    in_context = {s.name: len(s.expectations) for s in gx_context.data_context().suites.all()}
    assert in_context[cached(path.resolve())[0]] == 13
    assert in_context[cached(validation.DEFAULT_SUITE_PATH.resolve())[0]] == 14  # same suite name, kept apart


def test_missing_parameters_are_refused(settings):
    params = validation.suite_parameters(settings, HOUR)
    del params["marketplaces"]

    with pytest.raises(ValueError, match="marketplaces"):
        validation.validate_window(SA_URL, TABLE, validation.DEFAULT_SUITE_PATH, HOUR, params)


def test_report_to_json_is_plain_json(mysql, settings):
    insert(mysql, clean_rows())
    report = validate(settings)

    data = json.loads(json.dumps(report.to_json()))

    assert data["window_start"] == "2026-11-03T12:00:00+00:00"
    assert data["success"] is True
    assert {o["name"]: o["observed_value"] for o in data["outcomes"]}["row_count"] == CLEAN
    assert dataclasses.asdict(report.outcomes[0])["name"] == "row_count"
