from __future__ import annotations

import pytest

from crawlops.settings import Settings


def test_file_holds_the_teams_thresholds():
    settings = Settings.load(environ={})

    assert settings.dispatch.retry_limit == 3
    assert settings.health.success_rate_min == 0.95
    assert settings.health.task_timeout_seconds == 3600
    assert settings.quality.min_records_per_hour == 1000
    assert settings.quality.error_rate_max == 0.01
    assert settings.quality.freshness_seconds == 3600


def test_environment_overrides_file_and_overrides_mapping_wins():
    environ = {"CRAWLOPS__DISPATCH__RETRY_LIMIT": "5", "CRAWLOPS__HEALTH__SUCCESS_RATE_MIN": "0.9"}

    settings = Settings.load(environ=environ, overrides={"dispatch": {"retry_limit": 7}})

    assert settings.dispatch.retry_limit == 7
    assert settings.health.success_rate_min == 0.9
    assert settings.health.task_timeout_seconds == 3600


def test_list_settings_come_from_json_in_the_environment():
    settings = Settings.load(environ={"CRAWLOPS__DISPATCH__MARKETPLACES": '["US","DE"]'})

    assert settings.dispatch.marketplaces == ("US", "DE")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dispatch": {"retry_limt": 3}}, "unknown keys"),
        ({"alertz": {}}, "unknown keys"),
        ({"dispatch": {"retry_limit": "three"}}, "expected a number"),
        ({"dispatch": {"retry_limit": 2.5}}, "whole number"),
        ({"dispatch": {"retry_limit": -1}}, "must not be negative"),
        ({"health": {"success_rate_min": 1.5}}, r"\[0, 1\]"),
        ({"dispatch": {"redis_batch_size": 0}}, "at least 1"),
        ({"dispatch": {"marketplaces": "US"}}, "list of non-empty strings"),
    ],
)
def test_bad_overrides_fail_loudly(overrides, message):
    with pytest.raises(ValueError, match=message):
        Settings.load(environ={}, overrides=overrides)


def test_malformed_environment_name_is_rejected():
    with pytest.raises(ValueError, match="CRAWLOPS__"):
        Settings.load(environ={"CRAWLOPS__RETRY_LIMIT": "3"})


def test_choice_settings_reject_unknown_values():
    with pytest.raises(ValueError, match="anomaly_direction"):
        Settings.load(environ={}, overrides={"quality": {"anomaly_direction": "sideways"}})
