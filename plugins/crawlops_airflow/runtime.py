"""What a task needs from Airflow: its window, its settings, and its connections.

Imported inside task callables only, so DAG files stay cheap to parse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from crawlops.db import prepare
from crawlops.model import Window, hour_window_starting, last_complete_interval
from crawlops.settings import VARIABLE_NAME, Settings, dag_timezone

MYSQL_CONN_ID = "crawl_mysql"
REDIS_CONN_ID = "crawl_redis"

log = logging.getLogger(__name__)


def run_window(context: Mapping[str, Any], *, minutes: int = 60) -> Window:
    """The window a run works on (``minutes``: the DAG's schedule interval).

    1. The ``interval_start`` param, when a person asked for a specific hour.
    2. The run's data interval (scheduled runs, backfills, manual runs given a logical date).
    3. A manual run with no logical date has no data interval: it takes the last complete
       interval before the run's ``run_after``, which is stored on the run, so clearing and
       re-running it works on the same window again.
    """
    tz = dag_timezone()
    requested = requested_hour(context, "interval_start")
    if requested is not None:
        return requested
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and end > start:
        return Window(start, end)
    run_after = context["dag_run"].run_after
    window = last_complete_interval(run_after, tz, minutes=minutes)
    log.info("run has no data interval; using the last complete interval before run_after %s: %s", run_after, window)
    return window


def requested_hour(context: Mapping[str, Any], param: str) -> Window | None:
    """The hour a person picked in the trigger form (``param``), or None. A value that is not an
    ISO 8601 date-time on the hour (in the DAG timezone) fails the task at once, without
    retries, naming the param: retrying cannot fix it."""
    from airflow.sdk.exceptions import AirflowFailException

    value = (context.get("params") or {}).get(param)
    if not value:
        return None
    try:
        return hour_window_starting(dt.datetime.fromisoformat(str(value)), dag_timezone())
    except ValueError as exc:
        raise AirflowFailException(f"param {param}={value!r} is not an hour: {exc}") from None


def closing_hour(context: Mapping[str, Any], hour_param: str | None = None) -> Window:
    """The hour an hourly check judges: the one picked with ``hour_param`` in the trigger
    form, else the last complete hour at the end of the run's (5-minute) window, which is
    the hour that closes with it in the run that closes an hour."""
    from crawlops.model import last_complete_hour

    picked = requested_hour(context, hour_param) if hour_param else None
    return picked or last_complete_hour(run_window(context, minutes=5).end, dag_timezone())


def load_settings() -> Settings:
    """Settings file + environment, overridden by the Airflow Variable ``crawlops_settings``.

    A malformed Variable (not JSON, an unknown key, a wrong type) fails the task at once,
    without retries, naming the Variable: retrying cannot fix it.
    """
    from airflow.sdk import Variable
    from airflow.sdk.exceptions import AirflowFailException

    raw = Variable.get(VARIABLE_NAME, default=None)
    try:
        overrides = json.loads(raw) if isinstance(raw, str) else raw
        if overrides is not None and not isinstance(overrides, dict):
            raise ValueError("it must be a JSON object shaped like include/config/crawlops.toml")
        settings = Settings.load(overrides=overrides)
    except (ValueError, TypeError, KeyError) as exc:
        raise AirflowFailException(
            f"settings are malformed (Airflow Variable {VARIABLE_NAME}, or a CRAWLOPS__ environment variable): {exc}"
        ) from None
    if overrides:
        log.info("settings overridden by Variable %s: %s", VARIABLE_NAME, sorted(overrides))
    return settings


def settings_or_defaults() -> Settings:
    """``load_settings``, or the settings file and environment alone when the Variable cannot
    be read or is malformed (for the alert path, which must work whatever else is broken)."""
    try:
        return load_settings()
    except Exception as exc:
        log.warning("settings Variable %s unusable (%s); using the settings file and environment", VARIABLE_NAME, exc)
        return Settings.load()


def open_mysql() -> Any:
    """A utf8mb4/UTC MySQLdb connection from the ``crawl_mysql`` Airflow connection; the caller
    closes it (for callers that must tell a failed connect apart from what follows)."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    return prepare(MySqlHook(mysql_conn_id=MYSQL_CONN_ID).get_conn())


@contextlib.contextmanager
def mysql_connection() -> Iterator[Any]:
    """``open_mysql`` as a context manager that closes the connection."""
    conn = open_mysql()
    try:
        yield conn
    finally:
        conn.close()


def sqlalchemy_url() -> str:
    """``mysql+pymysql://`` URL of the ``crawl_mysql`` connection, for Great Expectations."""
    from urllib.parse import quote

    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(MYSQL_CONN_ID)
    auth = quote(conn.login or "", safe="") + (":" + quote(conn.password, safe="") if conn.password else "")
    return f"mysql+pymysql://{auth}@{conn.host or '127.0.0.1'}:{conn.port or 3306}/{conn.schema}?charset=utf8mb4"


def redis_client() -> Any:
    """The redis client of the ``crawl_redis`` connection (database number from its extra)."""
    from airflow.providers.redis.hooks.redis import RedisHook

    return RedisHook(redis_conn_id=REDIS_CONN_ID).get_conn()
