"""Alert delivery against a local fake of DingTalk's robot API (signature and rate checked like DingTalk)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from crawlops.alerts import record_findings
from crawlops.channels import DeliveryError, DingTalkRobot
from crawlops.delivery import deliver_alerts
from crawlops.findings import Finding, Level
from crawlops.model import UTC, hour_window_starting

HOUR = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")


def robot_for(fake, *, secret=None, timeout=2.0):
    """The default channel (``crawl_dingtalk``) as the fake robot."""
    robot = DingTalkRobot(
        token=fake.token, secret=secret or fake.secret, base_url=fake.base_url, timeout_seconds=timeout
    )
    return {"crawl_dingtalk": robot}


def sends(mysql):
    with mysql.cursor() as cur:
        cur.execute("SELECT channel, kind, status, attempts FROM amazon_alert_send ORDER BY id")
        return cur.fetchall()


def finding(check="task_timeout", level=Level.ERROR, subject="task-1", title="timed out"):
    return Finding(level, "amazon_data_supervision", check, title, subject=subject, action="sent 3 to retry")


def alert_rows(mysql):
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT check_name, delivery_status, delivery_attempts, delivery_error, suppressed_count "
            "FROM amazon_alert ORDER BY id"
        )
        return cur.fetchall()


def test_signed_message_is_accepted_and_carries_what_was_found_and_done(mysql, dingtalk, settings):
    record_findings(mysql, [finding()], window=HOUR, dag_run_id="scheduled__2026-11-03T13:00:00+00:00")

    outcome = deliver_alerts(mysql, robot_for(dingtalk), settings.alerts, dag_run_id="r")

    assert outcome["sent"] == 1
    (message,) = dingtalk.messages
    text = message["markdown"]["text"]
    assert message["msgtype"] == "markdown"
    assert "**ERROR**" in text and "timed out" in text and "done: sent 3 to retry" in text
    assert (
        "http://localhost:8080/dags/amazon_data_supervision/runs/scheduled__2026-11-03T13%3A00%3A00%2B00%3A00" in text
    )
    assert alert_rows(mysql) == (("task_timeout", "sent", 1, None, 0),)


def test_a_wrong_secret_is_refused_recorded_and_never_raised(mysql, dingtalk, settings):
    record_findings(mysql, [finding()], window=HOUR)

    outcome = deliver_alerts(mysql, robot_for(dingtalk, secret="wrong"), settings.alerts)

    assert outcome["failed"] == 1 and dingtalk.messages == []
    assert alert_rows(mysql) == (("task_timeout", "failed", 1, "errcode 310000: sign not match", 0),)


def test_the_signature_follows_dingtalks_recipe(dingtalk):
    robot = robot_for(dingtalk)["crawl_dingtalk"]

    url = robot.url(1_700_000_000_000)

    assert "timestamp=1700000000000" in url
    # base64 may hold + / =: they must arrive URL-encoded
    sign = url.split("sign=")[1]
    assert "+" not in sign and "/" not in sign
    robot.send_markdown("t", "x")  # the fake checks it like DingTalk
    assert len(dingtalk.messages) == 1


def test_a_runs_alerts_go_out_as_one_message_and_info_is_only_logged(mysql, dingtalk, settings):
    findings = [finding(subject=f"task-{i}", title=f"timed out {i}") for i in range(5)]
    findings.append(finding(check="invalid_data", level=Level.INFO, title="3 rows quarantined"))
    record_findings(mysql, findings, window=HOUR)

    outcome = deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)

    assert (outcome["sent"], outcome["logged"]) == (5, 1)
    (message,) = dingtalk.messages
    assert all(f"timed out {i}" in message["markdown"]["text"] for i in range(5))
    assert "quarantined" not in message["markdown"]["text"]


def test_a_repeat_is_not_sent_again_and_a_closed_alert_back_within_the_window_is_held(mysql, dingtalk, settings):
    def hour(h):
        return hour_window_starting(dt.datetime(2026, 11, 3, h, tzinfo=UTC), "UTC")

    record_findings(mysql, [finding()], window=HOUR, resolves=("task_timeout",))
    deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)
    record_findings(mysql, [finding()], window=hour(13), resolves=("task_timeout",))  # the same alert, seen twice
    assert deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)["sent"] == 0
    record_findings(mysql, [], window=hour(14), resolves=("task_timeout",))  # no longer found: closed
    record_findings(mysql, [finding()], window=hour(15), resolves=("task_timeout",))  # back: a new alert

    second = deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)

    assert second["suppressed"] == 1 and len(dingtalk.messages) == 1
    # The window passes and it is still found: it goes out, saying how often it was seen.
    with mysql.cursor() as cur:
        cur.execute(
            "UPDATE amazon_alert SET delivered_at = delivered_at - INTERVAL 2 HOUR WHERE delivery_status = 'sent'"
        )
    mysql.commit()
    record_findings(mysql, [finding()], window=hour(16), resolves=("task_timeout",))
    third = deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)

    assert third["sent"] == 1
    assert "seen 2 times" in dingtalk.messages[-1]["markdown"]["text"]
    with mysql.cursor() as cur:
        cur.execute("SELECT status, occurrences, delivery_status FROM amazon_alert ORDER BY id")
        assert cur.fetchall() == (("closed", 2, "sent"), ("open", 2, "sent"))


def test_more_than_twenty_messages_a_minute_are_refused_by_dingtalk(dingtalk):
    robot = robot_for(dingtalk)["crawl_dingtalk"]
    for i in range(20):
        robot.send_markdown("t", f"message {i}")

    with pytest.raises(DeliveryError, match="errcode 130101"):
        robot.send_markdown("t", "one too many")


def test_the_rate_budget_defers_instead_of_being_refused(mysql, dingtalk, settings):
    with mysql.cursor() as cur:
        cur.executemany(
            "INSERT INTO amazon_alert_delivery (channel, sent_at, alert_count, success) "
            "VALUES ('crawl_dingtalk', UTC_TIMESTAMP(3), 1, 1)",
            [()] * settings.alerts.max_messages_per_minute,
        )
    mysql.commit()
    record_findings(mysql, [finding()], window=HOUR)

    outcome = deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)

    assert outcome["deferred"] == 1 and dingtalk.urls == []
    # routed, its send waiting for the next minute's budget
    assert alert_rows(mysql)[0][1] == "routed"
    assert sends(mysql) == (("crawl_dingtalk", "alert", "pending", 0),)
    with mysql.cursor() as cur:
        cur.execute("SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), next_attempt_at) FROM amazon_alert_send")
        assert 55 <= cur.fetchone()[0] <= 60


def test_many_alerts_are_split_by_size_not_dropped(mysql, dingtalk, settings):
    small = dataclasses.replace(settings.alerts, max_message_bytes=600)
    record_findings(mysql, [finding(subject=f"task-{i}", title="x" * 100) for i in range(12)], window=HOUR)

    outcome = deliver_alerts(mysql, robot_for(dingtalk), small)

    assert outcome["sent"] == 12
    assert 1 < len(dingtalk.messages) <= 12
    assert sum(m["markdown"]["text"].count("**ERROR**") for m in dingtalk.messages) == 12


@pytest.mark.parametrize(("mode", "error"), [("http500", "HTTP 500"), ("hang", "no answer within 0.5 s")])
def test_outages_are_recorded_and_retried_later_with_backoff(mysql, dingtalk, settings, mode, error):
    record_findings(mysql, [finding()], window=HOUR)
    dingtalk.mode, dingtalk.hang_seconds = mode, 1.5

    outcome = deliver_alerts(mysql, robot_for(dingtalk, timeout=0.5), settings.alerts)

    assert outcome["failed"] == 1
    assert alert_rows(mysql) == (("task_timeout", "failed", 1, error, 0),)
    with mysql.cursor() as cur:
        cur.execute("SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), next_attempt_at) FROM amazon_alert")
        assert 50 <= cur.fetchone()[0] <= settings.alerts.retry_backoff_seconds
    # Too early: nothing is tried. After the backoff: delivered.
    dingtalk.mode = "ok"
    assert deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)["sent"] == 0
    with mysql.cursor() as cur:
        cur.execute("UPDATE amazon_alert_send SET next_attempt_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND")
    mysql.commit()
    assert deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)["sent"] == 1
    assert alert_rows(mysql)[0][:3] == ("task_timeout", "sent", 2)


def test_delivery_is_abandoned_after_the_last_attempt(mysql, dingtalk, settings):
    record_findings(mysql, [finding()], window=HOUR)
    dingtalk.mode = "http500"
    for _ in range(settings.alerts.max_delivery_attempts):
        with mysql.cursor() as cur:
            cur.execute("UPDATE amazon_alert_send SET next_attempt_at = NULL")
        mysql.commit()
        deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)

    assert alert_rows(mysql)[0][1:3] == ("abandoned", settings.alerts.max_delivery_attempts)


def test_without_a_channel_alerts_are_stored_and_marked(mysql, settings):
    record_findings(mysql, [finding(), finding(check="x", level=Level.INFO)], window=HOUR)

    outcome = deliver_alerts(mysql, {"crawl_dingtalk": None}, settings.alerts)

    assert (outcome["logged"], outcome["sent"], outcome["failed"], outcome["no_channel"]) == (1, 0, 0, 1)
    assert outcome["channels"] == {"crawl_dingtalk": {"sent": 0, "failed": 0, "deferred": 0, "no_channel": 1}}
    assert [row[1] for row in alert_rows(mysql)] == ["no_channel", "logged"]


def test_an_alert_that_escalates_on_a_rerun_is_delivered(mysql, dingtalk, settings):
    record_findings(mysql, [finding("invalid_data", Level.INFO, "amazon_search_result", "3 invalid rows")], window=HOUR)
    first = deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)
    assert (first["logged"], first["sent"], dingtalk.messages) == (1, 0, [])

    # The same window re-run finds it worse: the same row, now an ERROR, goes out.
    record_findings(
        mysql, [finding("invalid_data", Level.ERROR, "amazon_search_result", "40 invalid rows")], window=HOUR
    )
    second = deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)

    assert second["sent"] == 1
    (message,) = dingtalk.messages
    assert "40 invalid rows" in message["markdown"]["text"]
    assert [r[:2] for r in alert_rows(mysql)] == [("invalid_data", "sent")]
    # Re-recording it at the same level (or lower) does not send it again.
    record_findings(
        mysql, [finding("invalid_data", Level.ERROR, "amazon_search_result", "40 invalid rows")], window=HOUR
    )
    assert deliver_alerts(mysql, robot_for(dingtalk), settings.alerts)["sent"] == 0


def test_a_finding_a_rerun_no_longer_makes_is_resolved(mysql):
    stale = finding("invalid_data", Level.ERROR, "amazon_search_result", "6 invalid rows")
    other = finding("volume_anomaly", Level.ERROR, "amazon_search_result", "a drop")
    record_findings(mysql, [stale, other], window=HOUR, resolves=("invalid_data",))

    record_findings(mysql, [], window=HOUR, resolves=("invalid_data",))  # the re-run finds nothing

    with mysql.cursor() as cur:
        cur.execute("SELECT check_name, resolved_at IS NOT NULL FROM amazon_alert ORDER BY check_name")
        # only the check's own findings are judged: another check's stays current
        assert cur.fetchall() == (("invalid_data", 1), ("volume_anomaly", 0))
    record_findings(mysql, [stale], window=HOUR, resolves=("invalid_data",))  # found again: current again
    with mysql.cursor() as cur:
        cur.execute("SELECT resolved_at FROM amazon_alert WHERE check_name = 'invalid_data'")
        assert cur.fetchone() == (None,)
