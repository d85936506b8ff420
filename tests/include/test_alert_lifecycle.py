"""Alerts as incidents people own: one open alert per repeating finding, routing to owners on
several channels, mutes, reminders, acknowledgement and escalation, against local fakes of
two DingTalk robots (signature and rate checked like DingTalk)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading

import pytest

from crawlops import actions
from crawlops.alerts import record_findings
from crawlops.channels import DingTalkRobot
from crawlops.delivery import deliver_alerts
from crawlops.findings import Finding, Level
from crawlops.model import UTC, Window
from crawlops.settings import Route
from tests.support.fakes import FakeDingTalk

SOURCE = "amazon_data_supervision"


def five_minutes(k: int) -> Window:
    """The k-th 5-minute window back from the current one (0: the one that just closed)."""
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    end = now - dt.timedelta(minutes=now.minute % 5) - dt.timedelta(minutes=5 * k)
    return Window(end - dt.timedelta(minutes=5), end)


def rate_finding(obj="product_review", rate=0.6, level=Level.WARNING):
    return Finding(level, SOURCE, "success_rate", f"{obj}: success rate {rate:.0%}", subject=obj)


def alerts(mysql):
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT id, status, occurrences, crawl_object, marketplace, delivery_status, owner FROM amazon_alert "
            "ORDER BY id"
        )
        return cur.fetchall()


@pytest.fixture
def robots():
    """Two DingTalk robots: the crawl team's default one and the product team's."""
    fakes = {
        "crawl_dingtalk": FakeDingTalk(token="tok-default-5b1c", secret="SEC-default-77aa"),
        "crawl_dingtalk_product": FakeDingTalk(token="tok-product-9d0e", secret="SEC-product-3c4f"),
    }
    yield fakes
    for fake in fakes.values():
        fake.close()


def channels_of(fakes, timeout=2.0):
    return {
        name: DingTalkRobot(token=f.token, secret=f.secret, base_url=f.base_url, timeout_seconds=timeout)
        for name, f in fakes.items()
    }


@pytest.fixture
def routed(settings):
    """Product objects' ERRORs go to the product robot naming its owner; DE surges go to both."""
    routes = (
        Route(name="product errors", crawl_objects=("product_detail", "product_review"), levels=("ERROR", "CRITICAL"),
              channels=("crawl_dingtalk_product",), owner="product team", at_mobiles=("13800000001",)),
        Route(name="DE", marketplaces=("DE",), channels=("crawl_dingtalk", "crawl_dingtalk_product"),
              owner="DE desk", at_user_ids=("de-oncall",)),
    )  # fmt: skip
    return dataclasses.replace(settings.alerts, routes=routes, escalation=Route(at_mobiles=("13900000009",)))


def test_a_finding_repeating_every_run_is_one_open_alert_with_a_count(mysql, settings):
    for k in (3, 2, 1, 0):
        record_findings(mysql, [rate_finding()], window=five_minutes(k))
    record_findings(mysql, [rate_finding(rate=0.5)], window=five_minutes(0))  # a re-run: not one more

    ((_, status, occurrences, obj, _, _, _),) = alerts(mysql)
    assert (status, occurrences, obj) == ("open", 4, "product_review")
    with mysql.cursor() as cur:
        cur.execute("SELECT title, window_start, last_window_end FROM amazon_alert")
        title, first, last = cur.fetchone()
    assert "50%" in title  # the words of the latest run
    assert (first, last) == (five_minutes(3).naive()[0], five_minutes(0).naive()[1])


def test_a_check_that_no_longer_finds_it_closes_it_and_the_next_finding_opens_another(mysql):
    record_findings(mysql, [rate_finding()], window=five_minutes(2), resolves=("success_rate",))
    record_findings(mysql, [], window=five_minutes(1), resolves=("success_rate",))
    record_findings(mysql, [rate_finding()], window=five_minutes(0), resolves=("success_rate",))

    assert [(row[1], row[2]) for row in alerts(mysql)] == [("closed", 1), ("open", 1)]


def test_a_backfill_of_an_older_window_leaves_the_live_alert_alone(mysql):
    record_findings(mysql, [rate_finding()], window=five_minutes(0), resolves=("success_rate",))
    record_findings(mysql, [], window=five_minutes(6), resolves=("success_rate",))

    assert [(row[1], row[2]) for row in alerts(mysql)] == [("open", 1)]


def test_an_alert_quiet_for_longer_than_the_setting_is_closed(mysql):
    record_findings(mysql, [rate_finding()], window=five_minutes(40), quiet_close_seconds=1800)
    record_findings(mysql, [rate_finding()], window=five_minutes(0), quiet_close_seconds=1800)

    assert [(row[1], row[2]) for row in alerts(mysql)] == [("closed", 1), ("open", 1)]


def test_each_alert_reaches_its_routes_channels_naming_their_owners(mysql, robots, routed):
    findings = [
        rate_finding("product_detail", level=Level.ERROR),  # product errors -> product robot
        rate_finding("search_result", level=Level.ERROR),  # no route -> default robot
        rate_finding("product_review", level=Level.WARNING),  # a warning: no route -> default
        Finding(Level.ERROR, SOURCE, "crawl_outcomes", "DE blocked", subject="search_result/DE/blocked"),  # DE
    ]
    record_findings(mysql, findings, window=five_minutes(0))

    outcome = deliver_alerts(mysql, channels_of(robots), routed)

    assert outcome["channels"]["crawl_dingtalk"]["sent"] == 3
    assert outcome["channels"]["crawl_dingtalk_product"]["sent"] == 2
    ((product,),) = [[m for m in robots["crawl_dingtalk_product"].messages]]
    text = product["markdown"]["text"]
    assert "product_detail" in text and "DE blocked" in text and "search_result: success" not in text
    assert sorted(product["at"]["atMobiles"]) == ["13800000001"] and product["at"]["atUserIds"] == ["de-oncall"]
    assert "@13800000001" in text and "@de-oncall" in text  # DingTalk highlights what the text names
    (default,) = robots["crawl_dingtalk"].messages
    assert "search_result: success" in default["markdown"]["text"] and "DE blocked" in default["markdown"]["text"]
    assert "product_detail" not in default["markdown"]["text"]
    assert default["at"]["atMobiles"] == [] and default["at"]["atUserIds"] == ["de-oncall"]
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT subject, crawl_object, marketplace, owner FROM amazon_alert WHERE check_name = 'success_rate'"
        )
        assert sorted(cur.fetchall()) == [
            ("product_detail", "product_detail", None, "product team"),
            ("product_review", "product_review", None, None),
            ("search_result", "search_result", None, None),
        ]
        # the surge's crawl object and marketplace are read from its subject
        cur.execute("SELECT marketplace, owner, channels FROM amazon_alert WHERE check_name = 'crawl_outcomes'")
        assert cur.fetchone() == ("DE", "DE desk", "crawl_dingtalk,crawl_dingtalk_product")


def test_a_muted_check_sends_nothing_while_muted_and_resumes_after(mysql, robots, routed):
    done = actions.mute(mysql, "success_rate", subject="product_review", minutes=60, actor="bob", reason="deploy")
    record_findings(mysql, [rate_finding(), rate_finding("product_detail")], window=five_minutes(1))

    outcome = deliver_alerts(mysql, channels_of(robots), routed)

    assert outcome["muted"] == 1 and outcome["sent"] == 1
    (message,) = robots["crawl_dingtalk"].messages
    assert "product_detail" in message["markdown"]["text"] and "product_review" not in message["markdown"]["text"]
    # Still muted: the next occurrence is counted, stored and not sent.
    record_findings(mysql, [rate_finding()], window=five_minutes(0))
    assert deliver_alerts(mysql, channels_of(robots), routed)["muted"] == 1
    assert len(robots["crawl_dingtalk"].messages) == 1
    # The mute ends: the next occurrence goes out.
    actions.unmute(mysql, done["mute_id"], actor="bob", reason="deploy done")
    with mysql.cursor() as cur:  # one more run later
        cur.execute("UPDATE amazon_alert SET last_window_start = last_window_start - INTERVAL 5 MINUTE")
    mysql.commit()
    record_findings(mysql, [rate_finding()], window=five_minutes(0))

    assert deliver_alerts(mysql, channels_of(robots), routed)["sent"] == 1
    assert "product_review" in robots["crawl_dingtalk"].messages[-1]["markdown"]["text"]
    with mysql.cursor() as cur:
        cur.execute("SELECT action, actor FROM amazon_operator_action ORDER BY id")
        assert cur.fetchall() == (("mute", "bob"), ("unmute", "bob"))


def _age(mysql, column, seconds):
    with mysql.cursor() as cur:
        cur.execute(f"UPDATE amazon_alert SET {column} = {column} - INTERVAL %s SECOND", (seconds,))
    mysql.commit()


def test_an_unacknowledged_error_escalates_once_and_an_acknowledged_one_never(mysql, robots, routed):
    record_findings(mysql, [rate_finding("search_result", level=Level.ERROR)], window=five_minutes(0))
    record_findings(mysql, [rate_finding("product_review", level=Level.ERROR)], window=five_minutes(0))
    deliver_alerts(mysql, channels_of(robots), routed)
    (acked, *_), (unacked, *_) = sorted(alerts(mysql), key=lambda row: row[3] != "product_review")
    actions.set_alert_status(mysql, acked, "acknowledged", actor="alice", reason="on it")
    _age(mysql, "created_at", routed.escalate_after_seconds + 60)
    before = {name: len(f.messages) for name, f in robots.items()}

    outcome = deliver_alerts(mysql, channels_of(robots), routed)
    again = deliver_alerts(mysql, channels_of(robots), routed)

    assert (outcome["escalated"], again["escalated"]) == (1, 0)
    new = {name: f.messages[before[name] :] for name, f in robots.items()}
    (escalation,) = new["crawl_dingtalk"]  # the alert's own channel: [alerts.escalation] names none
    assert new["crawl_dingtalk_product"] == []
    assert "ESCALATED" in escalation["markdown"]["text"] and "search_result" in escalation["markdown"]["text"]
    assert escalation["at"]["atMobiles"] == ["13900000009"]
    with mysql.cursor() as cur:
        cur.execute("SELECT id FROM amazon_alert WHERE escalated_at IS NOT NULL")
        assert cur.fetchall() == ((unacked,),)


def test_an_open_alert_that_keeps_repeating_is_reminded_once_a_window_until_acknowledged(mysql, robots, routed):
    record_findings(mysql, [rate_finding("search_result")], window=five_minutes(1))
    deliver_alerts(mysql, channels_of(robots), routed)
    record_findings(mysql, [rate_finding("search_result")], window=five_minutes(0))
    assert deliver_alerts(mysql, channels_of(robots), routed)["sent"] == 0  # within the window: quiet

    _age(mysql, "delivered_at", routed.suppression_window_seconds + 1)
    reminded = deliver_alerts(mysql, channels_of(robots), routed)

    assert reminded["sent"] == 1
    text = robots["crawl_dingtalk"].messages[-1]["markdown"]["text"]
    assert "still open" in text and "seen 2 times" in text
    ((alert_id, *_),) = alerts(mysql)
    actions.set_alert_status(mysql, alert_id, "acknowledged", actor="alice", reason="on it")
    with mysql.cursor() as cur:  # seen again, long after the reminder
        cur.execute(
            "UPDATE amazon_alert SET delivered_at = delivered_at - INTERVAL 2 HOUR, last_seen_at = UTC_TIMESTAMP()"
        )
    mysql.commit()
    assert deliver_alerts(mysql, channels_of(robots), routed)["sent"] == 0


def test_a_hanging_channel_delays_no_other_and_retries_on_its_own(mysql, robots, routed):
    slow, fast = robots["crawl_dingtalk_product"], robots["crawl_dingtalk"]
    slow.mode, slow.hang_seconds = "hang", 2.0
    answered = threading.Event()
    original = slow.answer

    def answer(path, body):  # note when the slow robot finally answers
        try:
            return original(path, body)
        finally:
            answered.set()

    slow.answer = answer
    # the product alert first: a channel-after-channel delivery would wait on it
    record_findings(mysql, [rate_finding("product_detail", level=Level.ERROR)], window=five_minutes(0))
    record_findings(mysql, [rate_finding("search_result", level=Level.ERROR)], window=five_minutes(0))
    fast_received = []
    fast_original = fast.answer

    def fast_answer(path, body):
        fast_received.append(answered.is_set())
        return fast_original(path, body)

    fast.answer = fast_answer

    outcome = deliver_alerts(mysql, channels_of(robots, timeout=1.0), routed)

    assert fast_received == [False]  # the fast robot had its message before the slow one answered
    assert outcome["channels"]["crawl_dingtalk"]["sent"] == 1
    assert outcome["channels"]["crawl_dingtalk_product"]["failed"] == 1
    with mysql.cursor() as cur:
        cur.execute("SELECT channel, status, attempts, error FROM amazon_alert_send ORDER BY channel")
        assert cur.fetchall() == (
            ("crawl_dingtalk", "sent", 1, None),
            ("crawl_dingtalk_product", "failed", 1, "no answer within 1 s"),
        )
    slow.mode = "ok"
    with mysql.cursor() as cur:
        cur.execute("UPDATE amazon_alert_send SET next_attempt_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND")
    mysql.commit()
    assert deliver_alerts(mysql, channels_of(robots), routed)["channels"] == {
        "crawl_dingtalk_product": {"sent": 1, "failed": 0, "deferred": 0, "no_channel": 0}
    }


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda conn, a: actions.set_alert_status(conn, 999999, "acknowledged", actor="a", reason="r"), 404),
        (lambda conn, a: actions.set_alert_status(conn, a, "fixed", actor="a", reason="r"), 400),
        (lambda conn, a: actions.set_alert_status(conn, a, "acknowledged", actor="", reason="r"), 400),
        (lambda conn, a: actions.mute(conn, "success_rate", minutes=0, actor="a", reason="r"), 400),
        (lambda conn, a: actions.mute(conn, "success_rate", minutes=10**6, actor="a", reason="r"), 400),
        (lambda conn, a: actions.mute(conn, " ", minutes=5, actor="a", reason="r"), 400),
        (lambda conn, a: actions.unmute(conn, 999999, actor="a", reason="r"), 404),
    ],
)
def test_bad_lifecycle_actions_are_refused_and_change_nothing(mysql, call, status):
    (alert_id,) = record_findings(mysql, [rate_finding()], window=five_minutes(0))

    with pytest.raises(actions.Refused) as refused:
        call(mysql, alert_id)

    assert refused.value.status == status
    assert [row[1] for row in alerts(mysql)] == ["open"]
    with mysql.cursor() as cur:
        cur.execute("SELECT (SELECT COUNT(*) FROM amazon_operator_action) + (SELECT COUNT(*) FROM amazon_alert_mute)")
        assert cur.fetchone() == (0,)


def test_a_closed_alert_cannot_be_acknowledged(mysql):
    (alert_id,) = record_findings(mysql, [rate_finding()], window=five_minutes(1), resolves=("success_rate",))
    record_findings(mysql, [], window=five_minutes(0), resolves=("success_rate",))

    with pytest.raises(actions.Refused, match="is closed") as refused:
        actions.set_alert_status(mysql, alert_id, "expected", actor="a", reason="maintenance")

    assert refused.value.status == 409


def test_routes_come_from_the_settings_file_environment_and_variable(settings):
    from crawlops.settings import Settings

    routes = [{"crawl_objects": ["product_detail"], "channels": ["crawl_feishu"], "continue": True, "owner": "p"}]
    loaded = Settings.load(environ={"CRAWLOPS__ALERTS__ROUTES": json.dumps(routes)})

    (route,) = loaded.alerts.routes
    assert route.continue_matching and route.channels == ("crawl_feishu",)
    with pytest.raises(ValueError, match=r"routes\[0\]: unknown keys \['chanels'\]"):
        Settings.load(environ={}, overrides={"alerts": {"routes": [{"chanels": ["x"]}]}})
    with pytest.raises(ValueError, match=r"routes\[0\]\.levels"):
        Settings.load(environ={}, overrides={"alerts": {"routes": [{"levels": ["LOUD"]}]}})


def test_a_mute_set_after_an_alert_went_out_holds_its_escalation_until_it_ends(mysql, robots, routed):
    record_findings(mysql, [rate_finding("search_result", level=Level.ERROR)], window=five_minutes(0))
    deliver_alerts(mysql, channels_of(robots), routed)
    mute = actions.mute(mysql, "success_rate", minutes=30, actor="bob", reason="known outage")
    _age(mysql, "created_at", routed.escalate_after_seconds + 60)

    assert deliver_alerts(mysql, channels_of(robots), routed)["escalated"] == 0

    actions.unmute(mysql, mute["mute_id"], actor="bob", reason="outage over, still failing")
    assert deliver_alerts(mysql, channels_of(robots), routed)["escalated"] == 1
    assert "ESCALATED" in robots["crawl_dingtalk"].messages[-1]["markdown"]["text"]


def test_each_window_keeps_what_its_run_said_and_a_rerun_withdraws_only_its_own(mysql):
    from crawlops.model import hour_window_starting
    from crawlops.store import alerts as store_alerts

    top = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [hour_window_starting(top - dt.timedelta(hours=k), "UTC") for k in (3, 2)]
    for hour, words in zip(hours, ("12 invalid rows", "40 invalid rows"), strict=True):
        finding = Finding(Level.ERROR, SOURCE, "invalid_data", words, subject="amazon_search_result")
        record_findings(mysql, [finding], window=hour, resolves=("invalid_data",), scope="amazon_search_result")

    said = store_alerts.hourly_titles(mysql, ["invalid_data"], hours[0].naive()[0], hours[1].naive()[1], SOURCE)
    assert [(start, title) for _, start, _, title in said] == [
        (hours[0].naive()[0], "12 invalid rows"),
        (hours[1].naive()[0], "40 invalid rows"),
    ]
    ((_, status, occurrences, *_),) = alerts(mysql)
    assert (status, occurrences) == ("open", 2)
    # The first hour re-run finds nothing: its occurrence goes, the alert (seen later) stays current.
    record_findings(mysql, [], window=hours[0], resolves=("invalid_data",), scope="amazon_search_result")
    said = store_alerts.hourly_titles(mysql, ["invalid_data"], hours[0].naive()[0], hours[1].naive()[1], SOURCE)
    assert [title for *_, title in said] == ["40 invalid rows"]
    ((_, status, occurrences, *_),) = alerts(mysql)
    assert (status, occurrences) == ("open", 1)
    # The second hour re-run finds nothing either: nothing is left of it, withdrawn.
    record_findings(mysql, [], window=hours[1], resolves=("invalid_data",), scope="amazon_search_result")
    with mysql.cursor() as cur:
        cur.execute("SELECT occurrences, resolved_at IS NOT NULL FROM amazon_alert")
        assert cur.fetchall() == ((0, 1),)


def test_a_failed_send_is_not_retried_once_someone_acknowledged_the_alert(mysql, robots, routed):
    fake = robots["crawl_dingtalk"]
    fake.mode = "http500"
    (alert_id,) = record_findings(mysql, [rate_finding("search_result", level=Level.ERROR)], window=five_minutes(0))
    assert deliver_alerts(mysql, channels_of(robots), routed)["failed"] == 1
    actions.set_alert_status(mysql, alert_id, "acknowledged", actor="alice", reason="on it")
    fake.mode = "ok"
    with mysql.cursor() as cur:
        cur.execute("UPDATE amazon_alert_send SET next_attempt_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND")
    mysql.commit()

    outcome = deliver_alerts(mysql, channels_of(robots), routed)

    assert (outcome["sent"], outcome["cancelled"], fake.messages) == (0, 1, [])
    with mysql.cursor() as cur:
        cur.execute(
            "SELECT s.status, a.delivery_status FROM amazon_alert_send s JOIN amazon_alert a ON a.id = s.alert_id"
        )
        assert cur.fetchall() == (("cancelled", "skipped"),)


def test_a_channel_that_gave_up_once_and_took_a_later_reminder_reads_sent(mysql, robots, routed):
    fake = robots["crawl_dingtalk"]
    fake.mode = "http500"
    record_findings(mysql, [rate_finding("search_result")], window=five_minutes(1))
    for _ in range(routed.max_delivery_attempts):
        with mysql.cursor() as cur:
            cur.execute("UPDATE amazon_alert_send SET next_attempt_at = NULL")
        mysql.commit()
        deliver_alerts(mysql, channels_of(robots), routed)
    assert [row[5] for row in alerts(mysql)] == ["abandoned"]
    fake.mode = "ok"
    record_findings(mysql, [rate_finding("search_result")], window=five_minutes(0))  # it repeats: judged again

    deliver_alerts(mysql, channels_of(robots), routed)

    assert [row[5] for row in alerts(mysql)] == ["sent"] and len(fake.messages) == 1


def test_deliveries_take_turns_and_one_that_cannot_wait_leaves_the_work_to_the_next(mysql, robots, routed):
    from conftest import MYSQL_URL

    from crawlops.db import connect
    from crawlops.delivery import DELIVERY_LOCK

    record_findings(mysql, [rate_finding("search_result", level=Level.ERROR)], window=five_minutes(0))
    other = connect(MYSQL_URL)
    with mysql.cursor() as cur:
        cur.execute("SELECT LEFT(CONCAT(DATABASE(), '/', %s), 64)", (DELIVERY_LOCK,))
        (name,) = cur.fetchone()
    try:
        with other.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (name,))
            assert cur.fetchone() == (1,)
        quick = dataclasses.replace(routed, delivery_timeout_seconds=0.1)
        assert deliver_alerts(mysql, channels_of(robots), quick) == {"busy": True}
        assert robots["crawl_dingtalk"].messages == []
    finally:
        other.close()  # the lock goes with its session
    assert deliver_alerts(mysql, channels_of(robots), routed)["sent"] == 1


def test_an_apprise_token_in_the_host_part_is_a_secret():
    from crawlops_airflow.channels import AppriseChannel

    channel = AppriseChannel("crawl_feishu", [{"path": "feishu://t0k3n-abcdef123"}], timeout_seconds=1)

    assert "t0k3n-abcdef123" in channel.secrets()
