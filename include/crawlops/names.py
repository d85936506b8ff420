"""Names other systems depend on (see the SPEC): the DAG ids, each DAG's period and the
connection ids, stated once."""

from __future__ import annotations

DISPATCH_DAG = "amazon_task_dispatch"
SUPERVISION_DAG = "amazon_data_supervision"

# Each DAG's schedule period in minutes: its cron, its run window, the window a failure is filed under.
PERIOD_MINUTES = {DISPATCH_DAG: 60, SUPERVISION_DAG: 5}

# Trigger-form params that pick an hour: the run then works on the period that closes that hour.
HOUR_PARAMS = ("interval_start", "check_hour")


def cron(dag_id: str) -> str:
    """The cron expression of a DAG's period (at minute 0 of the hour, then every period)."""
    minutes = PERIOD_MINUTES[dag_id]
    if minutes % 60 == 0:
        return "0 * * * *" if minutes == 60 else f"0 */{minutes // 60} * * *"
    return f"*/{minutes} * * * *"


# The Airflow connections of the SPEC: every hook's default, and the default of every
# operator's and task runtime's ``*_conn_id`` argument.
MYSQL_CONN_ID = "crawl_mysql"
REDIS_CONN_ID = "crawl_redis"
DINGTALK_CONN_ID = "crawl_dingtalk"
