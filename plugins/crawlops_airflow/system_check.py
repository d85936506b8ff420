"""The supervision's system check: MySQL, the settings Variable and Redis reachable, Redis
memory, the schema migrated; an outage is told without the component that failed
(``crawlops_airflow.outages``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crawlops.names import DINGTALK_CONN_ID, MYSQL_CONN_ID, REDIS_CONN_ID
from crawlops_airflow.outages import outage_alarm, record_recovered_outages
from crawlops_airflow.variables import load_settings
from crawlops_airflow.windows import run_window


def check_system(
    context: Mapping[str, Any],
    *,
    mysql_conn_id: str = MYSQL_CONN_ID,
    redis_conn_id: str = REDIS_CONN_ID,
    dingtalk_conn_id: str = DINGTALK_CONN_ID,
) -> dict[str, Any]:
    """MySQL and Redis reachable, Redis memory, the schema migrated. A fault is told to
    DingTalk on this first attempt (MySQL's and the settings Variable's without MySQL), then
    raised, so Airflow retries the task with backoff. A malformed settings Variable, or a
    database schema behind the package, fails at once, naming it."""
    from airflow.sdk.exceptions import AirflowFailException

    from crawlops import health
    from crawlops.settings import VARIABLE_NAME, Settings
    from crawlops_airflow.hooks.mysql import CrawlMySqlHook
    from crawlops_airflow.runtime import TaskRun, check_schema

    def alarm(component: str, error: BaseException, settings: Settings) -> None:
        outage_alarm(component, error, settings, context, dingtalk_conn_id=dingtalk_conn_id)

    window, variable = run_window(context), f"settings Variable {VARIABLE_NAME}"
    try:
        settings = load_settings()
    except AirflowFailException:
        raise  # malformed: fails at once, naming it (the failure callback reports it)
    except Exception as exc:  # unreachable
        alarm(variable, exc, Settings.load())
        raise
    try:
        conn = CrawlMySqlHook(mysql_conn_id).connect()
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    except Exception as exc:
        alarm("MySQL", exc, settings)
        raise
    try:
        check_schema(conn)  # behind: fails at once, saying which migrations to apply
        run = TaskRun(context, conn, window, redis_conn_id=redis_conn_id, dingtalk_conn_id=dingtalk_conn_id)
        recovered = record_recovered_outages(conn, ["MySQL", variable], window, context)
        try:
            facts, findings = health.probe_redis(run.redis, settings)
        except health.SystemFault as fault:
            run.record(None, [fault.finding])
            run.deliver()  # now, not after the retries (suppressed while it lasts)
            raise
        run.record(None, findings)
    finally:
        conn.close()
    return {"mysql": "ok", "redis": facts, "recovered": recovered, "findings": [f.to_json() for f in findings]}
