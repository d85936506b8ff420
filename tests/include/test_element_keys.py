"""Uniqueness is keyed on the whole element: a keyword crawled in several marketplaces is not a
duplicate of itself, on the real MariaDB (suite, quarantine, and the migration that gives back
what the old rule took)."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from crawlops import quality, validation
from crawlops.db import sql_statements
from crawlops.migrations import migrations
from crawlops.model import UTC, hour_window_starting
from crawlops.planning import CRAWL_OBJECTS, crawl_object_for_table

TABLE = "amazon_search_result"
HOUR = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
START = HOUR.start.replace(tzinfo=None)
TASK = "search_result_1793707200_hourly"
COLUMNS = (
    "task_id, keyword, marketplace, asin, title, price, currency, rating, review_count, page, position, create_time"
)
MARKETS = ("US", "DE", "UK")
SA_URL = "mysql+pymysql://" + os.environ["CRAWLOPS_MYSQL_URL"].split("://", 1)[1]  # set by tests/conftest.py


def three_marketplace_rows() -> list[tuple]:
    """One keyword, 20 pages of 20 results, in three marketplaces: 1,200 distinct rows whose
    (task, keyword, page, position) repeat three times."""
    rows = []
    for m, market in enumerate(MARKETS):
        for page in range(1, 21):
            for position in range(1, 21):
                n = len(rows)
                rows.append(
                    (TASK, "usb c cable", market, f"B0{m}{page:03d}{position:04d}", f"item {n}", 9.99, "USD", 4.5, 10,
                     page, position, START + dt.timedelta(seconds=n * 3))
                )  # fmt: skip
    return rows


def insert(mysql, rows, table=TABLE) -> None:
    with mysql.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} ({COLUMNS}) VALUES ({', '.join(['%s'] * 12)})", rows)
    mysql.commit()


def count(mysql, table) -> int:
    with mysql.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        return int(cur.fetchone()[0])


def test_the_unique_key_is_every_element_field_and_the_position():
    for crawl_object in CRAWL_OBJECTS.values():  # plus the position where the object has one (SPEC)
        position = (crawl_object.position_column,) if crawl_object.position_column else ()
        assert crawl_object.unique_key == ("task_id", *crawl_object.result_keys.values(), *position)
    assert CRAWL_OBJECTS["product_detail"].unique_key == ("task_id", "asin", "marketplace")
    assert CRAWL_OBJECTS["product_review"].unique_key == ("task_id", "asin", "marketplace", "page", "position")
    assert crawl_object_for_table(TABLE).unique_key == ("task_id", "keyword", "marketplace", "page", "position")


def test_the_suite_file_keys_uniqueness_like_the_registry():
    suite = validation.load_suite(validation.DEFAULT_SUITE_PATH)
    (unique,) = [e for e in suite["expectations"] if e["meta"]["name"] == "unique_result"]

    assert set(unique["kwargs"]["column_list"]) == set(crawl_object_for_table(TABLE).unique_key)
    assert len(CRAWL_OBJECTS) >= 3
    for crawl_object in CRAWL_OBJECTS.values():  # every object's suite, on its whole unique key
        suite = validation.load_suite(validation.suite_path_for(crawl_object))
        (unique,) = [e for e in suite["expectations"] if e["meta"]["name"] == "unique_result"]
        assert unique["type"] == "expect_compound_columns_to_be_unique"
        assert unique["kwargs"]["column_list"] == list(crawl_object.unique_key), crawl_object.name
        assert unique["kwargs"].get("ignore_row_if", "never") == "never"  # NULL keys are compared, as quarantine's <=>


def test_one_keyword_in_three_marketplaces_keeps_all_its_rows_through_the_hourly_checks(mysql, settings):
    insert(mysql, three_marketplace_rows())

    report = validation.validate_window(
        SA_URL, TABLE, validation.DEFAULT_SUITE_PATH, HOUR, validation.suite_parameters(settings, HOUR)
    )
    summary, findings = quality.quarantine_invalid(mysql, TABLE, HOUR, settings)

    unique = {o.name: o for o in report.outcomes}["unique_result"]
    assert (unique.success, unique.unexpected_count) == (True, 0)
    assert report.success and report.row_count == 1200
    assert summary["invalid"] == 0 and findings == []
    assert (count(mysql, TABLE), count(mysql, f"{TABLE}_quarantine")) == (1200, 0)


def test_a_true_duplicate_in_one_marketplace_is_still_quarantined(mysql, settings):
    rows = three_marketplace_rows()
    duplicate = (*rows[500][:-1], START + dt.timedelta(minutes=59))  # same task, keyword, DE, page, position
    insert(mysql, [*rows, duplicate])

    summary, _ = quality.quarantine_invalid(mysql, TABLE, HOUR, settings)

    assert summary["by_rule"] == {"unique_result": 1}
    with mysql.cursor() as cur:
        cur.execute(f"SELECT marketplace, page, position FROM {TABLE}_quarantine")
        assert cur.fetchall() == ((rows[500][2], rows[500][9], rows[500][10]),)


@pytest.fixture
def restore_statements():
    (migration,) = [m for m in migrations() if m.name == "element_keys_and_reasons"]
    return [s for s in sql_statements(migration.path) if s.split(None, 1)[0].upper() in ("INSERT", "DELETE")]


def test_the_migration_gives_back_rows_the_old_rule_quarantined_and_conserves_rows(mysql, restore_statements):
    rows = three_marketplace_rows()
    kept = [r for r in rows if r[2] == "US"]
    wrongly = [r for r in rows if r[2] != "US"]  # what the old (task, keyword, page, position) rule took
    true_copy = kept[7]  # a real duplicate of a kept row, quarantined as one: stays
    insert(mysql, kept)
    with mysql.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {TABLE}_quarantine (id, {COLUMNS}, failed_rule) VALUES (%s, {', '.join(['%s'] * 12)}, %s)",
            [(10_000 + n, *r, "unique_result") for n, r in enumerate([*wrongly, true_copy, wrongly[0]])]
            + [(20_000, *wrongly[1][:5], -1.0, *wrongly[1][6:], "price_non_negative")],
        )
    mysql.commit()
    before = count(mysql, TABLE) + count(mysql, f"{TABLE}_quarantine")

    for _ in range(2):  # idempotent
        with mysql.cursor() as cur:
            for statement in restore_statements:
                cur.execute(statement)
        mysql.commit()

    assert count(mysql, TABLE) + count(mysql, f"{TABLE}_quarantine") == before
    assert count(mysql, TABLE) == 1200  # every distinct row back, the US ones never left
    with mysql.cursor() as cur:
        cur.execute(f"SELECT failed_rule, marketplace FROM {TABLE}_quarantine ORDER BY id")
        left = cur.fetchall()
    # the true copy and the second copy of a restored key stay; other rules are not touched
    assert left == (("unique_result", "US"), ("unique_result", wrongly[0][2]), ("price_non_negative", "DE"))
