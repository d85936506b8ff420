"""The suites of product_detail and product_review on the real MariaDB: a clean hour passes;
each rule fails on rows that break it, counting them, and quarantine moves exactly those rows
under the same rule name (rows conserved); the suites agree with the registry and the tables.

The conftest empties the search tables only: the product tables are emptied here.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import pytest

from crawlops import objects, quality, validation
from crawlops.model import UTC, Window, hour_window_starting
from crawlops.objects.product_detail import AVAILABILITY, CURRENCIES
from crawlops.quality.drift import check_schema_drift
from crawlops.settings import Settings
from crawlops.validation import gx_context

HOUR = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
START = HOUR.start.replace(tzinfo=None)
DAY = START.date()
SA_URL = "mysql+pymysql://" + os.environ["CRAWLOPS_MYSQL_URL"].split("://", 1)[1]  # set by tests/conftest.py
CLEAN = 60  # rows in a clean hour: above the product objects' min_records_per_hour (50)
MARKETS = ("US", "DE", "JP")
BAD = "bad"  # the marker column of the rows a case breaks (seller / author): no rule reads it
PRODUCTS = ("product_detail", "product_review")


def detail_row(i: int, when: dt.datetime) -> dict[str, Any]:
    market = MARKETS[i % 3]
    return {
        "task_id": "product_detail_1793707200_hourly",
        "asin": f"B0{i:08d}",
        "marketplace": market,
        "title": f"product {i}",
        "brand": "Anker",
        "price": 19.99,
        "currency": CURRENCIES[market],
        "list_price": 24.99,
        "rating": 4.3,
        "review_count": 120,
        "availability": AVAILABILITY[i % len(AVAILABILITY)],
        "seller": "Anker Direct",
        "best_seller_rank": 1000 + i,
        "category": "Electronics",
        "create_time": when,
    }


def review_row(i: int, when: dt.datetime) -> dict[str, Any]:
    """Ten reviews a product (2 pages of 5), six products; the review dated at most the next day."""
    return {
        "task_id": "product_review_1793707200_hourly",
        "asin": f"B0{i // 10:08d}",
        "marketplace": MARKETS[i // 10 % 3],
        "page": i // 5 % 2 + 1,
        "position": i % 5 + 1,
        "review_id": f"R{i:012d}",
        "rating": i % 5 + 1,
        "title": f"review {i}",
        "body": "works as described",
        "author": "someone",
        "review_date": DAY + dt.timedelta(days=1 - i % 30),
        "verified_purchase": i % 2,
        "helpful_votes": i % 7,
        "create_time": when,
    }


ROWS: dict[str, Callable[[int, dt.datetime], dict[str, Any]]] = {
    "product_detail": detail_row,
    "product_review": review_row,
}
MARKER = {"product_detail": "seller", "product_review": "author"}


def clean_rows(name: str, count: int = CLEAN, start: dt.datetime = START) -> list[dict[str, Any]]:
    return [ROWS[name](i, start + dt.timedelta(seconds=i * 3600 // count)) for i in range(count)]


def broken(name: str, count: int, start: int = 0, **changes: Any) -> list[dict[str, Any]]:
    """A clean hour whose rows start..start+count-1 get ``changes`` and the BAD marker."""
    rows = clean_rows(name)
    for i in range(start, start + count):
        rows[i].update(changes, **{MARKER[name]: BAD})
    return rows


def with_copies(name: str, *indexes: int, **changes: Any) -> list[dict[str, Any]]:
    """A clean hour and, later in the hour, a marked copy of each of its rows ``indexes`` (with ``changes``)."""
    rows = clean_rows(name)
    late = START + dt.timedelta(minutes=59)
    return rows + [{**rows[i], **changes, MARKER[name]: BAD, "create_time": late} for i in indexes]


@pytest.fixture
def db(mysql):
    with mysql.cursor() as cur:
        for name in PRODUCTS:
            table = objects.get(name).results_table
            cur.execute(f"TRUNCATE TABLE {table}")
            cur.execute(f"TRUNCATE TABLE {table}_quarantine")
    mysql.commit()
    return mysql


@pytest.fixture(scope="module", autouse=True)
def _gx_once():
    """GE imported once for the module; the product suites leave the process's GE context after
    it, as other modules expect to find there only the suites they ran."""
    validation.import_gx()
    yield
    for name in PRODUCTS:
        gx_context.forget_suite(validation.suite_path_for(name))
    assert not [s for s in gx_context.data_context().suites.all() if s.name.startswith("amazon_product_")]


def insert(conn, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
            [[r[c] for c in columns] for r in rows],
        )
    conn.commit()


def ids(conn, table: str, where: str = "1", params: tuple = ()) -> list[int]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM {table} WHERE {where} ORDER BY id", params)
        return [int(i) for (i,) in cur.fetchall()]


def object_settings(settings, name: str):
    return settings.for_object(name, objects.get(name).quality_defaults)


def validate(settings, name: str, window: Window = HOUR, **kwargs) -> validation.ValidationReport:
    crawl_object = objects.get(name)
    params = validation.suite_parameters(object_settings(settings, name), window)
    path = validation.suite_path_for(crawl_object)
    return validation.validate_window(SA_URL, crawl_object.results_table, path, window, params, **kwargs)


def quarantine_rule(name: str, column: str) -> str:
    """The quarantine rule of the object whose predicate reads ``column``."""
    (rule,) = [r for r, predicate, _ in objects.get(name).validity_rules(MARKETS) if column in predicate]
    return rule


def test_each_object_has_its_suite_with_its_rules_columns_and_parameters(db, settings):
    for name in PRODUCTS:
        crawl_object = objects.get(name)
        suite = validation.load_suite(validation.suite_path_for(name))
        names = [e["meta"]["name"] for e in suite["expectations"]]
        rules = {rule for rule, _, _ in crawl_object.validity_rules(settings.dispatch.marketplaces)}

        assert suite["name"] == suite["meta"]["table"] == crawl_object.results_table
        assert validation.suite_path_for(crawl_object).name == crawl_object.suite_file
        assert rules | {"row_count", "unique_result"} <= set(names), name
        assert validation.required_columns(suite) == list(crawl_object.not_null)
        # every parameter the suite names is filled, and documented in its meta
        params = validation.suite_parameters(object_settings(settings, name), HOUR)
        assert validation.suite_parameter_names(suite) <= set(params)
        assert set(suite["meta"]["parameters"]) == validation.suite_parameter_names(suite)
        for exp in suite["expectations"]:  # thresholds live in the settings
            assert isinstance(exp["kwargs"].get("mostly", {}), dict), exp["meta"]["name"]
        # the schema-drift baseline is the live table, type families included
        expected = validation.expected_columns(suite)
        with db.cursor() as cur:
            cur.execute(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = %s",
                (crawl_object.results_table,),
            )
            assert set(expected) == {c for (c,) in cur.fetchall()}
        assert check_schema_drift(db, crawl_object.results_table, expected) == []
    detail = validation.load_suite(validation.suite_path_for("product_detail"))["expectations"]
    (availability,) = [e for e in detail if e["meta"]["name"] == "availability_known"]
    assert availability["kwargs"]["value_set"] == list(AVAILABILITY)


def test_the_search_suite_keeps_its_parameters(settings):
    params = validation.suite_parameters(settings, HOUR)
    named = validation.suite_parameter_names(validation.load_suite(validation.DEFAULT_SUITE_PATH))

    assert validation.suite_path_for("search_result") == validation.DEFAULT_SUITE_PATH
    assert {k: params[k] for k in named} == {
        "min_rows": 1000, "required_mostly": 0.99, "validity_mostly": 0.99,
        "marketplaces": list(settings.dispatch.marketplaces),
    }  # fmt: skip
    assert validation.suite_parameters(settings, HOUR, "search_result") == params


def test_object_parameters_come_from_its_settings_and_the_window(settings):
    detail = validation.suite_parameters(settings, HOUR, "product_detail")
    last_hour = hour_window_starting(dt.datetime(2026, 11, 3, 23, tzinfo=UTC), "UTC")
    to_midnight = Window(HOUR.start, HOUR.start + dt.timedelta(hours=36))  # ends 2026-11-05 00:00 (excluded)
    past_midnight = Window(HOUR.start, HOUR.start + dt.timedelta(hours=37))

    assert detail["min_rows"] == 50
    assert validation.suite_parameters(object_settings(settings, "product_detail"), HOUR)["min_rows"] == 50
    assert validation.suite_parameters(settings, HOUR)["min_rows"] == 1000  # settings taken as given
    overridden = Settings.load(overrides={"objects": {"product_detail": {"min_records_per_hour": 7}}})
    assert validation.suite_parameters(overridden, HOUR, "product_detail")["min_rows"] == 7
    made = object_settings(overridden, "product_detail")  # already per object: applying it again changes nothing
    assert validation.suite_parameters(made, HOUR, "product_detail")["min_rows"] == 7
    assert detail["currency_pairs"] == [[m, CURRENCIES[m]] for m in settings.dispatch.marketplaces]
    assert ["DE", "EUR"] in detail["currency_pairs"] and ["DE", "USD"] not in detail["currency_pairs"]
    assert detail["review_date_max"] == "2026-11-04"
    assert validation.suite_parameters(settings, last_hour)["review_date_max"] == "2026-11-04"
    assert validation.suite_parameters(settings, to_midnight)["review_date_max"] == "2026-11-05"
    assert validation.suite_parameters(settings, past_midnight)["review_date_max"] == "2026-11-06"


@pytest.mark.parametrize("name", PRODUCTS)
def test_a_clean_hour_passes_and_nothing_is_quarantined(db, settings, name):
    crawl_object = objects.get(name)
    table = crawl_object.results_table
    insert(db, table, clean_rows(name))

    report = validate(settings, name)
    fallback = validate(settings, name, partition_column=None)
    summary, findings = quality.quarantine_invalid(db, table, HOUR, object_settings(settings, name))
    suite = validation.load_suite(validation.suite_path_for(name))
    score = quality.quality_score(db, table, HOUR, settings, validation.required_columns(suite))

    assert report.strategy == "partition" and fallback.strategy == "query"
    assert (report.success, report.failed, report.row_count) == (True, 0, CLEAN), report.failed_outcomes()
    assert report.evaluated == len(suite["expectations"])
    assert (fallback.success, fallback.row_count) == (True, CLEAN)
    assert (summary["invalid"], findings) == (0, [])
    assert score == (1.0, CLEAN)


# (case, object, rows, {failed expectation: unexpected count (row_count: observed)},
#  {quarantine rule: rows moved}). Rows marked BAD are exactly the ones quarantine must move.
DETAIL_CASES = [
    ("too_few_rows", clean_rows("product_detail", 49), {"row_count": 49}, {}),
    ("title_missing", broken("product_detail", 2, title=None), {"title_not_null": 2}, {}),
    ("lower_case_asin", broken("product_detail", 2, asin="b0abcdefgh"), {"asin_format": 2}, {"asin_format": 2}),
    ("short_asin", broken("product_detail", 3, asin="B0123"), {"asin_format": 3}, {"asin_format": 3}),
    ("negative_price", broken("product_detail", 2, price=-1), {"price_non_negative": 2}, {"price_non_negative": 2}),
    ("negative_list_price", broken("product_detail", 2, list_price=-0.01), {"list_price_non_negative": 2},
     {quarantine_rule("product_detail", "list_price"): 2}),
    ("rating_above_5", broken("product_detail", 2, rating=5.5), {"rating_range": 2}, {"rating_range": 2}),
    ("rating_below_0", broken("product_detail", 2, rating=-0.5), {"rating_range": 2}, {"rating_range": 2}),
    ("negative_review_count", broken("product_detail", 2, review_count=-1), {"review_count_non_negative": 2},
     {"review_count_non_negative": 2}),
    ("unknown_availability", broken("product_detail", 2, availability="sold_out"), {"availability_known": 2},
     {"availability_known": 2}),
    # rows 0 and 1 are US and DE: each gets another marketplace's currency
    ("wrong_currency", broken("product_detail", 2, currency="JPY"), {"currency_matches_marketplace": 2},
     {"currency_matches_marketplace": 2}),
    # an unknown marketplace has no currency either: both rules count it, quarantine files it once
    ("unknown_marketplace", broken("product_detail", 2, marketplace="XX"),
     {"marketplace_known": 2, "currency_matches_marketplace": 2}, {"marketplace_known": 2}),
    ("duplicate_result", with_copies("product_detail", 3, 7), {"unique_result": 4}, {"unique_result": 2}),
]  # fmt: skip

REVIEW_CASES = [
    ("too_few_rows", clean_rows("product_review", 49), {"row_count": 49}, {}),
    ("review_id_missing", broken("product_review", 2, review_id=None), {"review_id_not_null": 2}, {}),
    ("rating_missing", broken("product_review", 2, rating=None), {"rating_not_null": 2}, {}),
    ("lower_case_asin", broken("product_review", 2, asin="b0abcdefgh"), {"asin_format": 2}, {"asin_format": 2}),
    ("rating_0", broken("product_review", 2, rating=0), {"rating_integer_1_5": 2}, {"rating_integer_1_5": 2}),
    ("rating_6", broken("product_review", 3, rating=6), {"rating_integer_1_5": 3}, {"rating_integer_1_5": 3}),
    # the clean hour has reviews dated the next day (allowed); two days after is the future
    ("review_from_the_future", broken("product_review", 2, review_date=DAY + dt.timedelta(days=2)),
     {"review_date_not_future": 2}, {"review_date_not_future": 2}),
    ("negative_helpful_votes", broken("product_review", 2, helpful_votes=-3), {"helpful_votes_non_negative": 2},
     {"helpful_votes_non_negative": 2}),
    ("unknown_marketplace", broken("product_review", 2, marketplace="XX"), {"marketplace_known": 2},
     {"marketplace_known": 2}),
    # a row stored twice is also its review twice: both uniqueness rules count it, quarantine moves the copy
    ("duplicate_result", with_copies("product_review", 3, 7), {"unique_result": 4, "unique_review_id": 4},
     {"unique_result": 2}),
    # the same review found again on another page: its review id repeats, not its result key
    ("review_found_twice", with_copies("product_review", 3, page=3), {"unique_review_id": 2}, {}),
]  # fmt: skip

CASES = [(c, "product_detail", *rest) for c, *rest in DETAIL_CASES] + [
    (c, "product_review", *rest) for c, *rest in REVIEW_CASES
]


@pytest.mark.parametrize(("case", "name", "rows", "failed", "moved"), CASES, ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_each_rule_fails_on_rows_that_break_it_and_quarantine_moves_those(
    db, settings, case, name, rows, failed, moved
):
    table = objects.get(name).results_table
    insert(db, table, rows)
    marked = ids(db, table, f"{MARKER[name]} = %s", (BAD,))
    before = len(ids(db, table))

    report = validate(settings, name)
    fallback = validate(settings, name, partition_column=None)
    summary, _ = quality.quarantine_invalid(db, table, HOUR, object_settings(settings, name))

    counts = {
        o.name: o.observed_value if o.name == "row_count" else o.unexpected_count for o in report.failed_outcomes()
    }
    assert counts == failed
    assert [(o.name, o.success, o.unexpected_count) for o in fallback.outcomes] == [
        (o.name, o.success, o.unexpected_count) for o in report.outcomes
    ]
    assert summary["by_rule"] == moved
    with db.cursor() as cur:
        cur.execute(f"SELECT id, failed_rule FROM {table}_quarantine ORDER BY id")
        quarantined = cur.fetchall()
    assert [int(i) for i, _ in quarantined] == (marked if moved else [])
    assert {rule for _, rule in quarantined} == set(moved)
    assert len(ids(db, table)) + len(quarantined) == before


def test_review_dates_are_judged_alike_by_the_suite_and_quarantine_at_the_end_of_a_day(db, settings):
    """The last hour of a day: a review dated the next day is allowed, two days after is not,
    for a row crawled at 23:00 as for one crawled at 23:59 (review_date is a DATE)."""
    last_hour = hour_window_starting(dt.datetime(2026, 11, 3, 23, tzinfo=UTC), "UTC")
    start = last_hour.start.replace(tzinfo=None)
    rows = clean_rows("product_review", start=start)
    for i, (days, minute) in enumerate([(1, 0), (1, 59), (2, 0), (2, 59)]):
        rows[i].update(review_date=DAY + dt.timedelta(days=days), create_time=start + dt.timedelta(minutes=minute))
        rows[i]["author"] = BAD if days == 2 else "someone"
    insert(db, "amazon_product_review", rows)
    marked = ids(db, "amazon_product_review", "author = %s", (BAD,))

    report = validate(settings, "product_review", last_hour)
    summary, _ = quality.quarantine_invalid(
        db, "amazon_product_review", last_hour, object_settings(settings, "product_review")
    )

    assert [(o.name, o.unexpected_count) for o in report.failed_outcomes()] == [("review_date_not_future", 2)]
    assert summary["by_rule"] == {"review_date_not_future": 2}
    assert ids(db, "amazon_product_review_quarantine") == marked and len(marked) == 2
