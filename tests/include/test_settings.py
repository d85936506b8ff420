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
        ({"retention": {"manifest_days": 0}}, r"retention\.manifest_days: must be at least 1"),
        (
            {"dispatch": {"late_failure_window_seconds": 3 * 86400}, "retention": {"manifest_days": 2}},
            r"retention\.manifest_days: must cover dispatch\.late_failure_window_seconds",
        ),
        ({"retention": {"task_days": 7}}, r"retention\.task_days: must be 0 \(kept\) or at least manifest_days \(14\)"),
        ({"retention": {"quarantine_days": 7}}, r"retention\.quarantine_days: .* at least manifest_days"),
        ({"retention": {"volume_days": 13}}, r"retention\.volume_days: .* quality\.anomaly_history_days \(14\)"),
        ({"retention": {"results_days": 14}}, r"retention\.results_days: .* at least 15"),
        ({"quality": {"anomaly_history_days": 28}, "retention": {"results_days": 20}}, r"results_days: .* at least 29"),
        ({"retention": {"alert_days": -1}}, "must not be negative"),
        ({"retention": {"batch_size": 0}}, "at least 1"),
        ({"retention": {"max_seconds": 0}}, r"retention\.max_seconds: must be at least 1"),
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


def test_retention_defaults_keep_what_the_checks_read_and_leave_the_results_table_alone():
    keep = Settings.load(environ={}).retention

    assert (keep.manifest_days, keep.task_days, keep.alert_days, keep.check_run_days, keep.validation_days) == (
        14, 90, 90, 90, 90)  # fmt: skip
    assert (keep.volume_days, keep.quarantine_days, keep.report_days, keep.results_days) == (400, 30, 0, 0)
    # 0 keeps a table forever, where allowed; opting the results table in past the history is fine
    kept = Settings.load(environ={}, overrides={"retention": {"task_days": 0, "volume_days": 0, "results_days": 15}})
    assert (kept.retention.task_days, kept.retention.volume_days, kept.retention.results_days) == (0, 0, 15)


def test_a_crawl_object_overrides_quality_keys_over_its_own_defaults():
    from crawlops.settings import Settings

    base = Settings.load(environ={})
    assert base.objects == {} and base.for_object("product_review") is base
    assert base.for_object("product_review", {"min_records_per_hour": 50}).quality.min_records_per_hour == 50
    env = Settings.load(environ={"CRAWLOPS__OBJECTS__PRODUCT_REVIEW": '{"min_records_per_hour": 200}'})
    own = env.for_object("product_review", {"min_records_per_hour": 50, "freshness_seconds": 7200})
    assert (own.quality.min_records_per_hour, own.quality.freshness_seconds) == (200, 7200)
    assert own.quality.anomaly_z == base.quality.anomaly_z and own.dispatch == base.dispatch
    with pytest.raises(ValueError, match=r"objects\.product_review: unknown keys \['retry_limit'\]"):
        Settings.load(environ={}, overrides={"objects": {"product_review": {"retry_limit": 1}}})
    with pytest.raises(ValueError, match=r"objects\.product_review\.anomaly_z: expected a number"):
        Settings.load(environ={}, overrides={"objects": {"product_review": {"anomaly_z": "high"}}})
    with pytest.raises(ValueError, match=r"objects\.product_detail\.required_mostly: must lie in \[0, 1\]"):
        Settings.load(environ={}, overrides={"objects": {"product_detail": {"required_mostly": 2}}}).for_object(
            "product_detail"
        )
