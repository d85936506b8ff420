"""Operator actions against the real MariaDB and Redis: re-drive a Dead task with a budget of its
own, release quarantined rows, each audited; bad input refused with nothing changed."""

from __future__ import annotations

import dataclasses
import json

import pytest
from support.chains import NOON, TASK, crawl_until_dead

from crawlops import actions, dispatch, lifecycle, quality


def rows(mysql, sql, params=()):
    mysql.commit()
    with mysql.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def chain(mysql):
    return rows(mysql, "SELECT task_id, task_source, root_task_id, task_status, retry_count, retry_limit "
                "FROM amazon_task_information ORDER BY retry_count")  # fmt: skip


def audit_rows(mysql):
    return rows(mysql, "SELECT action, subject, actor, reason, params, outcome FROM amazon_operator_action ORDER BY id")


def test_a_redrive_makes_a_retry_task_of_exactly_the_failing_elements_with_its_own_budget(
    mysql, redis_client, settings, config, crawler
):
    dead, failing = crawl_until_dead(mysql, redis_client, settings, config, crawler)
    before = chain(mysql)

    done = actions.redrive(mysql, redis_client, settings, dead, budget=2, actor="alice", reason="proxy pool fixed")

    retry = dead + "_fail"
    assert done["retry_task"] == retry and done["elements"] == 2
    assert sorted(m.decode() for m in redis_client.smembers(retry)) == sorted(failing)
    assert redis_client.ttl(retry) == -1  # the Dead task's fail set, kept with a TTL, is now a queue
    manifest = rows(mysql, "SELECT element FROM amazon_task_element WHERE task_id = %s", (retry,))
    assert sorted(e for (e,) in manifest) == sorted(failing)
    # one chain, one line: each task's source is the one before it
    after = chain(mysql)
    assert after[:-1] == before and after[-1][:5] == (retry, dead, TASK, "Pending", before[-1][4] + 1)
    assert [t[1] for t in after] == [None, *(t[0] for t in after[:-1])]
    (action, subject, actor, reason, params, outcome), = audit_rows(mysql)  # fmt: skip
    assert (action, subject, actor, reason) == ("redrive", dead, "alice", "proxy pool fixed")
    assert json.loads(params) == {"budget": 2} and json.loads(outcome)["retry_task"] == retry

    # budget 2: the re-drive crawls once, its retry once more, then the chain is Dead again
    crawler.fail(retry, crawler.take(retry, 10))
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    second = retry + "_fail"
    assert chain(mysql)[-1][:4] == (second, retry, TASK, "Pending")
    crawler.fail(second, crawler.take(second, 10))
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)
    assert chain(mysql)[-1][0] == second and chain(mysql)[-1][3] == "Dead"
    assert len(chain(mysql)) == len(before) + 2


def test_a_redriven_chain_that_answers_completes(mysql, redis_client, settings, config, crawler):
    dead, _ = crawl_until_dead(mysql, redis_client, settings, config, crawler)
    retry = actions.redrive(mysql, redis_client, settings, dead, budget=1, actor="alice", reason="fixed")["retry_task"]

    crawler.succeed(retry, crawler.take(retry, 10))
    lifecycle.sync_statuses(mysql, redis_client, settings)
    lifecycle.retry_failures(mysql, redis_client, settings)

    assert chain(mysql)[-1][:4] == (retry, dead, TASK, "Completed")


@pytest.mark.parametrize(
    ("task", "budget", "actor", "status", "says"),
    [
        ("search_result_1_hourly", 1, "alice", 404, "no task"),
        (TASK, 1, "alice", 409, "not Dead"),  # the noon task is Failed: its chain went on
        ("DEAD", 0, "alice", 400, "budget"),
        ("DEAD", 1000, "alice", 400, "budget"),
        ("DEAD", 1, " ", 400, "who acts"),
    ],
)
def test_bad_redrives_are_refused_and_change_nothing(
    mysql, redis_client, settings, config, crawler, task, budget, actor, status, says
):
    dead, _ = crawl_until_dead(mysql, redis_client, settings, config, crawler)
    before, keys = chain(mysql), sorted(redis_client.keys())

    with pytest.raises(actions.Refused) as refused:
        actions.redrive(mysql, redis_client, settings, dead if task == "DEAD" else task, budget=budget, actor=actor,
                        reason="because")  # fmt: skip

    assert refused.value.status == status and says in str(refused.value)
    assert chain(mysql) == before and sorted(redis_client.keys()) == keys and audit_rows(mysql) == ()


def test_a_task_is_redriven_once(mysql, redis_client, settings, config, crawler):
    dead, _ = crawl_until_dead(mysql, redis_client, settings, config, crawler)
    actions.redrive(mysql, redis_client, settings, dead, budget=1, actor="alice", reason="fixed")

    with pytest.raises(actions.Refused) as refused:
        actions.redrive(mysql, redis_client, settings, dead, budget=1, actor="bob", reason="again")

    assert refused.value.status == 409 and "re-driven already" in str(refused.value)
    assert len(audit_rows(mysql)) == 1


def test_release_moves_a_rules_rows_back_conserved_and_audited(mysql, redis_client, settings, config, crawler):
    config([("search_result", f"keyword {i}", "US", "hourly", 5) for i in range(6)])
    dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, NOON, "UTC"))
    dispatch.push_window(mysql, redis_client, settings, NOON)
    crawler.succeed(TASK, crawler.take(TASK, 30))
    with mysql.cursor() as cur:
        cur.execute("UPDATE amazon_search_result SET create_time = %s + INTERVAL id SECOND", (NOON.naive()[0],))
        cur.execute("UPDATE amazon_search_result SET price = -1 ORDER BY id LIMIT 4")
        cur.execute("UPDATE amazon_search_result SET rating = 9 ORDER BY id DESC LIMIT 3")
    mysql.commit()
    own = dataclasses.replace(settings, quality=dataclasses.replace(settings.quality, min_records_per_hour=1))
    quality.quarantine_invalid(mysql, "amazon_search_result", NOON, own, dry_run=False, dag_run_id="t")
    held = dict(rows(mysql, "SELECT failed_rule, COUNT(*) FROM amazon_search_result_quarantine GROUP BY 1"))
    assert held == {"price_non_negative": 4, "rating_range": 3}
    ids = sorted(i for (i,) in rows(mysql, "SELECT id FROM amazon_search_result_quarantine "
                                    "WHERE failed_rule = 'price_non_negative'"))  # fmt: skip

    done = actions.release(mysql, "search_result", "price_non_negative", actor="bob", reason="negative = free")

    assert done["released"] == 4
    main = rows(mysql, "SELECT COUNT(*) FROM amazon_search_result")[0][0]
    assert main + 3 == 30  # rows conserved: 27 in main, 3 still quarantined for the other rule
    assert dict(rows(mysql, "SELECT failed_rule, COUNT(*) FROM amazon_search_result_quarantine GROUP BY 1")) == {
        "rating_range": 3
    }
    back = rows(mysql, "SELECT id, price FROM amazon_search_result WHERE id IN (%s, %s, %s, %s)", tuple(ids))
    assert sorted(i for i, _ in back) == ids and {float(p) for _, p in back} == {-1.0}  # the same rows, ids kept
    ((action, subject, actor, *_),) = audit_rows(mysql)
    assert (action, subject, actor) == ("release", "amazon_search_result:price_non_negative", "bob")

    for crawl_object, rule, status in (("search_result", "price_non_negative", 404), ("no_such", "x", 404)):
        with pytest.raises(actions.Refused) as refused:
            actions.release(mysql, crawl_object, rule, actor="bob", reason="again")
        assert refused.value.status == status
    assert len(audit_rows(mysql)) == 1


def test_the_cli_redrives_and_refuses(mysql, redis_client, settings, config, crawler, monkeypatch, capsys):
    dead, _ = crawl_until_dead(mysql, redis_client, settings, config, crawler)
    monkeypatch.setenv(
        "CRAWLOPS_REDIS_URL", f"redis://127.0.0.1:6379/{redis_client.connection_pool.connection_kwargs['db']}"
    )

    assert actions.main(["redrive", TASK, "--budget", "1", "--by", "ops", "--why", "try"]) == 2
    assert "refused (409)" in capsys.readouterr().err
    assert actions.main(["redrive", dead, "--budget", "1", "--by", "ops", "--why", "site back"]) == 0
    assert json.loads(capsys.readouterr().out)["retry_task"] == dead + "_fail"
    assert audit_rows(mysql)[0][:3] == ("redrive", dead, "ops")


def test_the_daily_report_tells_the_days_actions(mysql, redis_client, settings, config, crawler):
    import datetime as dt

    from crawlops import report
    from crawlops.model import Window

    dead, _ = crawl_until_dead(mysql, redis_client, settings, config, crawler)
    actions.redrive(mysql, redis_client, settings, dead, budget=1, actor="alice", reason="proxies <back>")
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    built = report.build_daily_report(mysql, redis_client, settings, Window(today, today + dt.timedelta(days=1)),
                                      tz="UTC")  # fmt: skip
    yesterday = report.build_daily_report(mysql, redis_client, settings, Window(today - dt.timedelta(days=1), today),
                                          tz="UTC")  # fmt: skip

    assert [(a.actor, a.action, a.subject) for a in built.data.actions] == [("alice", "redrive", dead)]
    assert f"**Operator actions** (1): alice redrive {dead}" in built.markdown
    assert 'id="action-table"' in built.html and "proxies &lt;back&gt;" in built.html  # escaped
    assert yesterday.data.actions == [] and "action-table" not in yesterday.html
