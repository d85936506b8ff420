"""Retention (issue 16): what is past its time goes, in bounded batches, resumably, and nothing
of a retry chain with an open task is ever touched; against the real MariaDB and Redis."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from crawlops import dispatch, invariant, lifecycle, retention
from crawlops.model import UTC, element_digest, hour_window_starting
from crawlops.settings import Settings

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=UTC)
ELEMENTS = 3  # manifest rows per task


def ago(days: float) -> dt.datetime:
    """``days`` before NOW, as stored (naive UTC)."""
    return (NOW - dt.timedelta(days=days)).replace(tzinfo=None)


def add_chain(mysql, root: str, tasks: list[tuple[str, float | None]]) -> list[str]:
    """A retry chain: the root, then ``<root>_fail``, ``<root>_fail_fail``...; each task (status,
    settled that many days ago or None) with ELEMENTS manifest rows. Returns the task ids."""
    ids = [root + "_fail" * k for k in range(len(tasks))]
    with mysql.cursor() as cur:
        for k, (task_id, (status, settled)) in enumerate(zip(ids, tasks, strict=True)):
            start = ago(settled + 1 if settled is not None else 400)
            cur.execute(
                "INSERT INTO amazon_task_information (task_id, task_type, task_source, root_task_id, frequency, "
                "task_status, element_count, retry_count, interval_start, interval_end, finished_at, settled_at) "
                "VALUES (%s, 'search_result', %s, %s, 'hourly', %s, %s, %s, %s, %s, %s, %s)",
                (task_id, ids[k - 1] if k else None, root, status, ELEMENTS, k, start, start + dt.timedelta(hours=1),
                 ago(settled) if settled is not None else None, ago(settled) if settled is not None else None),
            )  # fmt: skip
            elements = [json.dumps({"keyword": f"{root} {n}", "marketplace": "US", "page": 1}) for n in range(ELEMENTS)]
            cur.executemany(
                "INSERT INTO amazon_task_element (task_id, seq, element_hash, element, target, marketplace, page) "
                "VALUES (%s, %s, %s, %s, %s, 'US', 1)",
                [(task_id, seq, element_digest(e), e, json.loads(e)["keyword"]) for seq, e in enumerate(elements, 1)],
            )
    mysql.commit()
    return ids


def column(mysql, sql, params=None) -> list:
    with mysql.cursor() as cur:
        cur.execute(sql, params)
        return [row[0] for row in cur.fetchall()]


def tasks_left(mysql) -> set[str]:
    return set(column(mysql, "SELECT task_id FROM amazon_task_information"))


def manifests_left(mysql) -> set[str]:
    return set(column(mysql, "SELECT DISTINCT task_id FROM amazon_task_element"))


def counts(mysql) -> dict[str, int]:
    return {table: column(mysql, f"SELECT COUNT(*) FROM {table}")[0] for table in TABLES}


TABLES = [
    "amazon_alert_send", "amazon_alert_delivery", "amazon_alert", "amazon_alert_mute", "amazon_check_run",
    "amazon_validation_run", "amazon_volume_hourly", "amazon_daily_report", "amazon_search_result_quarantine",
    "amazon_task_element", "amazon_task_information", "amazon_search_result",
]  # fmt: skip


def with_retention(settings: Settings, **changes) -> Settings:
    return dataclasses.replace(settings, retention=dataclasses.replace(settings.retention, **changes))


def seed_chains(mysql) -> dict[str, list[str]]:
    """Chains in every state that matters, against manifest_days 14 and task_days 90."""
    return {
        # closed 95 days ago: past both retentions
        "gone": add_chain(mysql, "search_result_1_hourly", [("Failed", 100), ("Completed", 95)]),
        "gone_dead": add_chain(mysql, "search_result_2_hourly", [("Failed", 300), ("Failed", 299), ("Dead", 298)]),
        # as old, but its retry is open (In Progress), or recorded and never pushed (Pending)
        "open": add_chain(mysql, "search_result_3_hourly", [("Failed", 100), ("In Progress", None)]),
        "pending": add_chain(mysql, "search_result_4_hourly", [("Failed", 300), ("Pending", None)]),
        # finished long ago but never settled (waiting out its grace period): not closed
        "unsettled": add_chain(mysql, "search_result_5_hourly", [("Failed", 300), ("Completed", None)]),
        # the root is old, the chain closed 10 days ago (its retry settled then): all of it stays
        "recent": add_chain(mysql, "search_result_6_hourly", [("Failed", 100), ("Completed", 10)]),
        # closed 20 days ago: the manifest goes (14), the task rows stay (90)
        "manifest_only": add_chain(mysql, "search_result_7_hourly", [("Failed", 30), ("Dead", 20)]),
    }


def test_an_expired_closed_chain_goes_with_its_manifest_and_an_open_chain_as_old_stays(mysql, settings):
    chains = seed_chains(mysql)

    summary = retention.purge(mysql, settings, NOW)

    stays = {t for name in ("open", "pending", "unsettled", "recent", "manifest_only") for t in chains[name]}
    assert tasks_left(mysql) == stays
    assert manifests_left(mysql) == stays - set(chains["manifest_only"])
    gone_tasks = len(chains["gone"]) + len(chains["gone_dead"])
    assert summary["tables"]["amazon_task_information"]["rows"] == gone_tasks
    assert summary["tables"]["amazon_task_element"]["rows"] == (gone_tasks + len(chains["manifest_only"])) * ELEMENTS
    assert summary["finished"] is True
    # Whatever the age: a year on, the open chains still keep every row.
    retention.purge(mysql, settings, NOW + dt.timedelta(days=365))
    open_chains = {t for name in ("open", "pending", "unsettled") for t in chains[name]}
    assert tasks_left(mysql) == open_chains == manifests_left(mysql)


def test_a_chain_closed_by_the_real_lifecycle_loses_its_manifest_then_its_rows_an_open_one_nothing(
    mysql, redis_client, settings, config, crawler
):
    noon = hour_window_starting(dt.datetime(2026, 11, 3, 12, tzinfo=UTC), "UTC")
    task, retry = "search_result_1793707200_hourly", "search_result_1793707200_hourly_fail"
    waiting = "search_result_1793710800_hourly"  # the next hour's task: pushed, never crawled, open
    config([("search_result", f"keyword {i}", "US", "hourly", 5) for i in range(2)])
    for window in (noon, hour_window_starting(noon.end, "UTC")):
        dispatch.record_plan(mysql, settings, dispatch.plan_window(mysql, settings, window, "UTC"))
        dispatch.push_window(mysql, redis_client, settings, window)
    taken = sorted(crawler.take(task, 10))
    crawler.succeed(task, taken[:8])
    crawler.fail(task, taken[8:])
    lifecycle.track(mysql, redis_client, settings)  # Failed, settled: its two failures are the retry task
    crawler.succeed(retry, crawler.take(retry, 2))
    lifecycle.track(mysql, redis_client, settings)  # the retry Completed and settled: the chain is closed
    assert set(column(mysql, "SELECT task_status FROM amazon_task_information WHERE root_task_id = %s", (task,))) == {
        "Failed", "Completed"}  # fmt: skip
    today = column(mysql, "SELECT UTC_TIMESTAMP()")[0].replace(tzinfo=UTC)

    retention.purge(mysql, settings, today + dt.timedelta(days=13))
    assert manifests_left(mysql) == {task, retry, waiting}  # closed 13 days: kept
    retention.purge(mysql, settings, today + dt.timedelta(days=15))
    assert manifests_left(mysql) == {waiting}
    assert tasks_left(mysql) == {task, retry, waiting}
    assert invariant.element_fates(mysql)["LOST"] == 0  # the root's elements went before its retry's
    retention.purge(mysql, settings, today + dt.timedelta(days=91))
    assert tasks_left(mysql) == {waiting} == manifests_left(mysql)
    assert column(mysql, "SELECT COUNT(*) FROM amazon_task_element WHERE task_id = %s", (waiting,)) == [10]


def seed_timed_rows(mysql) -> None:
    """Rows of the tables that expire by time: one just past and one just inside each default."""
    with mysql.cursor() as cur:
        for name, days in (("old", 91), ("new", 89)):
            cur.execute(
                "INSERT INTO amazon_alert (level, source, check_name, subject, title, fingerprint, window_start, "
                "window_end, created_at) VALUES ('WARNING', 's', 'c', %s, 't', %s, %s, %s, %s)",
                (name, f"{name:0>40}", ago(days), ago(days), ago(days)),
            )
            for channel in ("dingtalk", "other"):
                cur.execute(
                    "INSERT INTO amazon_alert_delivery (channel, sent_at, alert_count, success) VALUES (%s, %s, 1, 1)",
                    (channel, ago(days)),
                )
            cur.execute(
                "INSERT INTO amazon_alert_send (alert_id, channel, kind, status, created_at) "
                "VALUES (LAST_INSERT_ID(), %s, 'alert', 'sent', %s)",
                (name, ago(days)),
            )
            cur.execute(
                "INSERT INTO amazon_alert_mute (check_name, muted_from, muted_until, actor, reason) "
                "VALUES (%s, %s, %s, 'a', 'r')",
                (name, ago(days + 1), ago(days)),
            )
            cur.execute(
                "INSERT INTO amazon_check_run (check_name, window_start, window_end, status) "
                "VALUES (%s, %s, %s, 'pass')",
                (name, ago(days) - dt.timedelta(hours=1), ago(days)),
            )
            cur.execute(
                "INSERT INTO amazon_validation_run (suite_name, table_name, window_start, window_end, success, "
                "evaluated, failed) VALUES ('s', 'amazon_search_result', %s, %s, 1, 1, 0)",
                (ago(days), ago(days) + dt.timedelta(hours=1)),
            )
            cur.execute(
                "INSERT INTO amazon_daily_report (report_date, markdown, html) VALUES (%s, 'm', 'h')",
                (ago(days * 4).date(),),
            )
        for days in (401, 399):
            cur.execute(
                "INSERT INTO amazon_volume_hourly (table_name, hour, row_count, history_points) "
                "VALUES ('amazon_search_result', %s, 1, 1)",
                (ago(days).replace(minute=0, second=0),),
            )
        for row_id, days in ((1, 31), (2, 29)):
            cur.execute(
                "INSERT INTO amazon_search_result_quarantine (id, create_time, failed_rule, quarantined_at) "
                "VALUES (%s, %s, 'price_non_negative', %s)",
                (row_id, ago(days + 1), ago(days)),
            )
        cur.executemany(
            "INSERT INTO amazon_search_result (task_id, keyword, marketplace, page, create_time) "
            "VALUES ('search_result_1_hourly', 'k', 'US', 1, %s)",
            [(ago(400),), (ago(1),)],
        )
    mysql.commit()


def test_alerts_checks_and_verdicts_older_than_their_retention_go_newer_ones_stay(mysql, settings):
    seed_timed_rows(mysql)

    summary = retention.purge(mysql, settings, NOW)

    assert column(mysql, "SELECT subject FROM amazon_alert") == ["new"]
    assert column(mysql, "SELECT channel FROM amazon_alert_send") == ["new"]
    assert column(mysql, "SELECT check_name FROM amazon_alert_mute") == ["new"]
    assert sorted(column(mysql, "SELECT channel FROM amazon_alert_delivery")) == ["dingtalk", "other"]
    assert column(mysql, "SELECT sent_at FROM amazon_alert_delivery") == [ago(89)] * 2
    assert column(mysql, "SELECT check_name FROM amazon_check_run") == ["new"]
    assert column(mysql, "SELECT window_start FROM amazon_validation_run") == [ago(89)]
    assert column(mysql, "SELECT COUNT(*) FROM amazon_volume_hourly WHERE hour > %s", (ago(400),)) == [1]
    assert column(mysql, "SELECT COUNT(*) FROM amazon_volume_hourly") == [1]
    assert column(mysql, "SELECT id FROM amazon_search_result_quarantine") == [2]
    assert column(mysql, "SELECT COUNT(*) FROM amazon_daily_report") == [2]  # report_days 0: kept forever
    tables = summary["tables"]
    assert {t: tables[t]["rows"] for t in TABLES[:9]} == {
        "amazon_alert_send": 1, "amazon_alert_delivery": 2, "amazon_alert": 1, "amazon_alert_mute": 1,
        "amazon_check_run": 1, "amazon_validation_run": 1, "amazon_volume_hourly": 1, "amazon_daily_report": 0,
        "amazon_search_result_quarantine": 1,
    }  # fmt: skip
    assert tables["amazon_daily_report"]["cutoff"] is None and tables["amazon_alert"]["cutoff"] == "2026-09-01T12:00:00"

    retention.purge(mysql, with_retention(settings, report_days=360), NOW)  # reports of 364 and 356 days ago
    assert column(mysql, "SELECT report_date FROM amazon_daily_report") == [ago(89 * 4).date()]


def test_the_results_table_is_the_crawlers_and_untouched_by_default(mysql, settings):
    seed_timed_rows(mysql)  # one result row 400 days old, one a day old

    summary = retention.purge(mysql, settings, NOW + dt.timedelta(days=3650))

    assert column(mysql, "SELECT COUNT(*) FROM amazon_search_result") == [2]
    assert summary["tables"]["amazon_search_result"] == {
        "days": 0, "cutoff": None, "rows": 0, "batches": 0, "seconds": 0.0, "finished": True}  # fmt: skip
    # Its owners may opt in.
    retention.purge(mysql, with_retention(settings, results_days=30), NOW)
    assert column(mysql, "SELECT create_time FROM amazon_search_result") == [ago(1)]


def test_a_purge_stopped_by_its_budget_resumes_on_the_next_call_without_loss(mysql, settings):
    chains = seed_chains(mysql)
    seed_timed_rows(mysql)
    with mysql.cursor() as cur:  # enough old alerts for several batches
        cur.executemany(
            "INSERT INTO amazon_alert (level, source, check_name, subject, title, fingerprint, window_start, "
            "window_end, created_at) VALUES ('INFO', 's', 'c', %s, 't', %s, %s, %s, %s)",
            [(str(n), f"{n:040d}", ago(100 + n), ago(100 + n), ago(100 + n)) for n in range(7)],
        )
    mysql.commit()
    before = counts(mysql)
    expected = retention.purge(mysql, settings, NOW, dry_run=True)

    calls = []
    while not calls or not calls[-1]["finished"]:
        calls.append(retention.purge(mysql, settings, NOW, batch_size=2, max_seconds=0))
        assert len(calls) < 100

    assert len(calls) > 5 and not calls[0]["finished"]
    assert all(call["rows"] > 0 for call in calls[:-1])  # every call got something done
    # the first call: one batch (the outbox's one old row), then the budget is spent
    assert calls[0]["rows"] == 1 and calls[0]["tables"]["amazon_alert_send"] == {
        **calls[0]["tables"]["amazon_alert_send"], "rows": 1, "batches": 1, "finished": True}  # fmt: skip
    assert calls[1]["tables"]["amazon_alert_delivery"] == {
        **calls[1]["tables"]["amazon_alert_delivery"], "rows": 2, "batches": 1, "finished": False}  # fmt: skip
    deleted = {t: sum(c["tables"][t]["rows"] for c in calls) for t in TABLES}
    assert deleted == {t: expected["tables"][t]["rows"] for t in TABLES}
    assert counts(mysql) == {t: before[t] - deleted[t] for t in TABLES}
    stays = {t for name in ("open", "pending", "unsettled", "recent", "manifest_only") for t in chains[name]}
    assert tasks_left(mysql) == stays and manifests_left(mysql) == stays - set(chains["manifest_only"])
    assert column(mysql, "SELECT subject FROM amazon_alert") == ["new"]
    assert column(mysql, "SELECT channel FROM amazon_alert_send") == ["new"]
    assert column(mysql, "SELECT check_name FROM amazon_alert_mute") == ["new"]


class DiesOnDelete:
    """A connection that dies during its ``n``-th DELETE: the statement ran, the commit never came."""

    def __init__(self, conn, n: int) -> None:
        self.conn, self.n, self.deletes, self.fatal = conn, n, 0, ""

    def cursor(self, *args):
        return _Cursor(self, self.conn.cursor(*args))

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


class _Cursor:
    def __init__(self, owner: DiesOnDelete, cur) -> None:
        self.owner, self.cur = owner, cur

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cur.close()

    def __getattr__(self, name):
        return getattr(self.cur, name)

    def execute(self, sql, params=None):
        result = self.cur.execute(sql, params)
        if sql.startswith("DELETE"):
            self.owner.deletes += 1
            if self.owner.deletes == self.owner.n:
                self.owner.fatal = sql
                raise ConnectionError("MySQL server has gone away")
        return result


# DELETEs 1-4 are the delivery log's (one per channel, two channels, a transaction for both);
# each crawl object's quarantine adds one before the manifest's.
@pytest.mark.parametrize(("dies_at", "table"), [(6, "amazon_alert"), (16, "amazon_task_element")])
def test_a_purge_killed_mid_batch_loses_nothing_and_the_next_call_finishes(mysql, settings, dies_at, table):
    from conftest import MYSQL_URL

    from crawlops.db import connect

    chains = seed_chains(mysql)
    seed_timed_rows(mysql)
    before = counts(mysql)
    expected = retention.purge(mysql, settings, NOW, dry_run=True)
    victim = DiesOnDelete(connect(MYSQL_URL), dies_at)

    with pytest.raises(ConnectionError):
        retention.purge(victim, settings, NOW, batch_size=2)
    victim.close()  # the batch it was in is rolled back with the connection
    assert victim.fatal.startswith(f"DELETE FROM {table} ")
    partly = counts(mysql)
    assert partly != before and any(partly[t] > before[t] - expected["tables"][t]["rows"] for t in TABLES)

    resumed = retention.purge(mysql, settings, NOW, batch_size=2)

    assert resumed["finished"] is True
    assert counts(mysql) == {t: before[t] - expected["tables"][t]["rows"] for t in TABLES}
    stays = {t for name in ("open", "pending", "unsettled", "recent", "manifest_only") for t in chains[name]}
    assert tasks_left(mysql) == stays and manifests_left(mysql) == stays - set(chains["manifest_only"])


def test_a_dry_run_deletes_nothing_and_counts_what_the_real_run_then_deletes(mysql, settings):
    seed_chains(mysql)
    seed_timed_rows(mysql)
    before = counts(mysql)

    dry = retention.purge(mysql, settings, NOW, dry_run=True, batch_size=2)

    assert counts(mysql) == before
    assert dry["dry_run"] is True and dry["finished"] is True and dry["rows"] > 0
    real = retention.purge(mysql, settings, NOW, batch_size=2)
    assert {t: v["rows"] for t, v in dry["tables"].items()} == {t: v["rows"] for t, v in real["tables"].items()}
    # Batches too, but for task rows: a chain goes whole, so the real run may need fewer.
    assert {t: v["batches"] for t, v in dry["tables"].items() if t != "amazon_task_information"} == {
        t: v["batches"] for t, v in real["tables"].items() if t != "amazon_task_information"
    }
    assert counts(mysql) == {t: before[t] - real["tables"][t]["rows"] for t in TABLES}
