from __future__ import annotations

import datetime as dt
import json

import pytest

from crawlops.model import (
    UTC,
    Window,
    canonical_json,
    element_digest,
    fail_key,
    hour_window_starting,
    is_due,
    last_complete_hour,
    task_id_for,
)


def hour(year, month, day, hour_, tz="UTC"):
    return hour_window_starting(dt.datetime(year, month, day, hour_), tz)


def test_task_id_uses_the_window_start_epoch():
    window = Window(dt.datetime(2026, 11, 2, 3, tzinfo=UTC), dt.datetime(2026, 11, 2, 4, tzinfo=UTC))

    assert task_id_for("search_result", window, "hourly") == "search_result_1793588400_hourly"
    assert fail_key("search_result_1793588400_hourly") == "search_result_1793588400_hourly_fail"


def test_canonical_json_sorts_keys_drops_spaces_and_keeps_unicode():
    text = canonical_json({"page": 1, "marketplace": "JP", "keyword": "イヤホン 🎧"})

    assert text == '{"keyword":"イヤホン 🎧","marketplace":"JP","page":1}'
    assert json.loads(text)["keyword"] == "イヤホン 🎧"
    assert element_digest(text) == element_digest(canonical_json(json.loads(text)))


def test_window_rejects_naive_and_empty_bounds():
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        Window(start.replace(tzinfo=None), start)
    with pytest.raises(ValueError, match="not after"):
        Window(start, start)


def test_hour_window_must_start_on_the_hour():
    with pytest.raises(ValueError, match="not on the hour"):
        hour_window_starting(dt.datetime(2026, 1, 1, 10, 30, tzinfo=UTC), "UTC")


def test_last_complete_hour_counts_hours_in_the_timezone():
    instant = dt.datetime(2026, 11, 2, 3, 59, tzinfo=UTC)

    assert last_complete_hour(instant, "UTC") == hour(2026, 11, 2, 2)
    # Kolkata is UTC+5:30: its hours start at half past in UTC.
    kolkata = last_complete_hour(instant, "Asia/Kolkata")
    assert kolkata.start == dt.datetime(2026, 11, 2, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "tz", "expected"),
    [
        (hour(2026, 11, 3, 14), "UTC", {"hourly"}),
        (hour(2026, 11, 3, 0), "UTC", {"hourly", "daily"}),  # a Tuesday
        (hour(2026, 11, 2, 0), "UTC", {"hourly", "daily", "weekly"}),  # a Monday
        (hour(2026, 11, 2, 0, "Asia/Shanghai"), "Asia/Shanghai", {"hourly", "daily", "weekly"}),
        # 00:00 UTC Monday is 08:00 in Shanghai: only hourly there.
        (hour(2026, 11, 2, 0), "Asia/Shanghai", {"hourly"}),
    ],
)
def test_due_frequencies(window, tz, expected):
    due = {f for f in ("hourly", "daily", "weekly") if is_due(f, window, tz)}

    assert due == expected


def test_a_daily_window_is_due_for_daily_once_per_day():
    day = Window(dt.datetime(2026, 11, 3, tzinfo=UTC), dt.datetime(2026, 11, 4, tzinfo=UTC))
    starts = [day.start + dt.timedelta(hours=h) for h in range(24)]

    due = [s for s in starts if is_due("daily", Window(s, s + dt.timedelta(hours=1)), "UTC")]

    assert due == [day.start]
    assert is_due("daily", day, "UTC")


def test_unknown_frequency_raises():
    with pytest.raises(ValueError, match="unknown frequency"):
        is_due("monthly", hour(2026, 11, 3, 0), "UTC")
