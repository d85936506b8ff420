from __future__ import annotations

import datetime as dt
import json

import pytest

from crawlops.model import UTC, Window
from crawlops.planning import ConfigRow, SkipReason, plan_tasks, skip_counts, validate_rows


def row(id_, target="usb c cable", *, obj="search_result", mp="US", freq="hourly", pages=3, priority=0):
    return ConfigRow(id_, obj, target, mp, freq, priority, pages)


MONDAY_MIDNIGHT = Window(dt.datetime(2026, 11, 2, tzinfo=UTC), dt.datetime(2026, 11, 2, 1, tzinfo=UTC))
TUESDAY_NOON = Window(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), dt.datetime(2026, 11, 3, 13, tzinfo=UTC))


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (row(1, obj="product_page"), SkipReason.UNKNOWN_CRAWL_OBJECT),
        (row(1, obj=None), SkipReason.UNKNOWN_CRAWL_OBJECT),
        (row(1, ""), SkipReason.EMPTY_TARGET),
        (row(1, "   \t "), SkipReason.EMPTY_TARGET),
        (row(1, None), SkipReason.EMPTY_TARGET),
        (row(1, "x" * 10_000), SkipReason.OVERSIZED_TARGET),
        (row(1, "usb\x00cable"), SkipReason.INVALID_TARGET),
        (row(1, "usb\ncable"), SkipReason.INVALID_TARGET),
        (row(1, freq="monthly"), SkipReason.BAD_FREQUENCY),
        (row(1, freq=None), SkipReason.BAD_FREQUENCY),
        (row(1, mp="XX"), SkipReason.UNKNOWN_MARKETPLACE),
        (row(1, mp=None), SkipReason.UNKNOWN_MARKETPLACE),
        (row(1, pages=0), SkipReason.MAX_PAGES_OUT_OF_RANGE),
        (row(1, pages=21), SkipReason.MAX_PAGES_OUT_OF_RANGE),
        (row(1, pages=None), SkipReason.MAX_PAGES_OUT_OF_RANGE),
    ],
)
def test_malformed_rows_are_skipped_with_their_reason(bad, reason, settings):
    valid, skipped = validate_rows([bad, row(2, "laptop stand")], settings.dispatch)

    assert [t.config_id for t in valid] == [2]
    assert [(s.config_id, s.reason) for s in skipped] == [(1, reason)]
    assert skipped[0].detail


def test_hostile_but_valid_targets_pass_unchanged(settings):
    hostile = ["'; DROP TABLE amazon_crawl_config; --", "🔥 deals 👨‍👩‍👧", 'quote " and \\ backslash', "x" * 500]

    valid, skipped = validate_rows([row(i, t) for i, t in enumerate(hostile, 1)], settings.dispatch)

    assert skipped == []
    assert [t.target for t in valid] == hostile


def test_fields_are_normalized(settings):
    (target,), _ = validate_rows(
        [row(1, "  usb c cable ", obj=" Search_Result", mp="us ", freq="Hourly")], settings.dispatch
    )

    assert (target.crawl_object, target.target, target.marketplace, target.frequency) == (
        "search_result",
        "usb c cable",
        "US",
        "hourly",
    )


def test_duplicates_keep_the_lowest_id_and_ignore_case_and_spacing(settings):
    rows = [row(7, "USB  C Cable"), row(3, "usb c cable"), row(5, "usb c cable", mp="DE"), row(9, freq="daily")]

    valid, skipped = validate_rows(rows, settings.dispatch)

    assert sorted(t.config_id for t in valid) == [3, 5, 9]
    assert [(s.config_id, s.reason, s.detail) for s in skipped] == [
        (7, SkipReason.DUPLICATE, "duplicate of config id 3")
    ]


def test_skip_counts_per_reason(settings):
    _, skipped = validate_rows([row(1, ""), row(2, ""), row(3, mp="XX")], settings.dispatch)

    assert skip_counts(skipped) == {"empty_target": 2, "unknown_marketplace": 1}


def test_one_task_per_crawl_object_and_due_frequency(settings):
    targets, _ = validate_rows(
        [row(1), row(2, "laptop stand", pages=2), row(3, "phone case", freq="daily"), row(4, "mat", freq="weekly")],
        settings.dispatch,
    )

    noon = plan_tasks(targets, TUESDAY_NOON, "UTC")
    monday = plan_tasks(targets, MONDAY_MIDNIGHT, "UTC")

    assert [(t.task_id, t.element_count) for t in noon] == [("search_result_1793707200_hourly", 5)]
    assert [t.task_id for t in monday] == [
        "search_result_1793577600_daily",
        "search_result_1793577600_hourly",
        "search_result_1793577600_weekly",
    ]


def test_search_result_elements_are_canonical_pages(settings):
    targets, _ = validate_rows(
        [row(1, "usb c cable", pages=2), row(2, "イヤホン", mp="JP", pages=1)], settings.dispatch
    )
    (task,) = plan_tasks(targets, TUESDAY_NOON, "UTC")

    elements = list(task.elements())

    assert [e.text for e in elements] == [
        '{"keyword":"usb c cable","marketplace":"US","page":1}',
        '{"keyword":"usb c cable","marketplace":"US","page":2}',
        '{"keyword":"イヤホン","marketplace":"JP","page":1}',
    ]
    assert [(e.target, e.marketplace, e.page, e.config_id) for e in elements][2] == ("イヤホン", "JP", 1, 2)
    assert len({e.digest for e in elements}) == task.element_count == 3
    assert all(json.loads(e.text)["page"] == e.page for e in elements)


def test_planning_is_deterministic(settings):
    rows = [row(i, f"keyword {i}") for i in range(50)]

    first = plan_tasks(validate_rows(rows, settings.dispatch)[0], TUESDAY_NOON, "UTC")
    second = plan_tasks(validate_rows(list(reversed(rows)), settings.dispatch)[0], TUESDAY_NOON, "UTC")

    assert [list(e.text for e in t.elements()) for t in first] == [list(e.text for e in t.elements()) for t in second]


def test_fast_element_text_equals_canonical_json(settings):
    from crawlops.model import canonical_json

    targets, _ = validate_rows([row(1, 'a "quoted" 🎧 \\ kw', mp="DE", pages=12)], settings.dispatch)
    (task,) = plan_tasks(targets, TUESDAY_NOON, "UTC")

    for element in task.elements():
        expected = canonical_json({"keyword": element.target, "marketplace": element.marketplace, "page": element.page})
        assert element.text == expected
