"""What a task needs from Airflow: its window, its settings, and its connections.

Imported inside task callables only, so DAG files stay cheap to parse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from crawlops.db import Connection, prepare
from crawlops.model import Window, day_ending, hour_window_starting, last_complete_hour, last_complete_interval
from crawlops.names import HOUR_PARAMS, PERIOD_MINUTES
from crawlops.queue import RedisClient
from crawlops.settings import VARIABLE_NAME, Settings, dag_timezone

if TYPE_CHECKING:
    import redis

MYSQL_CONN_ID = "crawl_mysql"
REDIS_CONN_ID = "crawl_redis"

log = logging.getLogger(__name__)


def period_minutes(context: Mapping[str, Any]) -> int:
    """The schedule period of the context's DAG (``crawlops.names.PERIOD_MINUTES``; else an hour)."""
    dag = context.get("dag")
    dag_id = dag.dag_id if dag is not None else getattr(context.get("ti"), "dag_id", None)
    return PERIOD_MINUTES.get(dag_id or "", 60)


def run_window(context: Mapping[str, Any], *, minutes: int | None = None) -> Window:
    """The window a run works on (``minutes``: default the DAG's period).

    1. An hour a person picked in the trigger form (``interval_start`` for dispatch,
       ``check_hour`` for supervision): the period that closes that hour.
    2. The run's data interval (scheduled runs, backfills, manual runs given a logical date).
    3. A manual run with no logical date has no data interval: it takes the last complete
       interval before the run's ``run_after``, which is stored on the run, so clearing and
       re-running it works on the same window again.
    """
    tz = dag_timezone()
    minutes = minutes or period_minutes(context)
    for param in HOUR_PARAMS:
        requested = requested_hour(context, param)
        if requested is not None:
            return Window(requested.end - dt.timedelta(minutes=min(minutes, 60)), requested.end)
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
    """The hour an hourly check judges: the one picked with ``hour_param`` (or a standard hour
    param) in the trigger form, else the last complete hour at the end of the run's window,
    which is the hour that closes with it in the run that closes an hour."""
    picked = requested_hour(context, hour_param) if hour_param else None
    return picked or last_complete_hour(run_window(context).end, dag_timezone())


def report_day(context: Mapping[str, Any]) -> Window:
    """The day a daily report covers: the day up to the end of the run's window (the whole
    day in the run that closes it); with an hour picked in the form, that hour's whole day."""
    tz = dag_timezone()
    window = run_window(context)
    if any((context.get("params") or {}).get(p) for p in HOUR_PARAMS):
        local = window.start.astimezone(ZoneInfo(tz))
        midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(tz))
        window = Window(midnight - dt.timedelta(minutes=5), midnight)
    return day_ending(window, tz)


def check_schema(conn: Connection) -> int:
    """The database's schema version; a database behind this package fails the task at once,
    without retries, saying which migrations to apply (they run at deploy, never in a DAG run)."""
    from airflow.sdk.exceptions import AirflowFailException

    from crawlops.migrations import SchemaBehind, check

    try:
        return check(conn)
    except SchemaBehind as exc:
        raise AirflowFailException(str(exc)) from None


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


def open_mysql() -> Connection:
    """A utf8mb4/UTC MySQLdb connection from the ``crawl_mysql`` Airflow connection; the caller
    closes it (for callers that must tell a failed connect apart from what follows)."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    return prepare(MySqlHook(mysql_conn_id=MYSQL_CONN_ID).get_conn())


@contextlib.contextmanager
def mysql_connection() -> Iterator[Connection]:
    """``open_mysql`` as a context manager that closes the connection."""
    conn = open_mysql()
    try:
        yield conn
    finally:
        conn.close()


def sqlalchemy_url() -> str:
    """``mysql+pymysql://`` URL of the ``crawl_mysql`` connection, for Great Expectations, with the
    connection's extras (TLS above all) carried as URL query parameters: see :func:`mysql_sqlalchemy_url`."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(MYSQL_CONN_ID)
    return mysql_sqlalchemy_url(
        host=conn.host, port=conn.port, login=conn.login, password=conn.password, schema=conn.schema,
        extra=conn.extra_dejson,
    )  # fmt: skip


#: TLS settings SQLAlchemy's MySQL dialects read from the URL query into pymysql's ``ssl`` dict.
_SSL_KEYS = ("ca", "cert", "key", "capath", "cipher", "check_hostname")
#: Extras handed to pymysql unchanged (SQLAlchemy converts the numbers and flags).
_PASSED_EXTRAS = ("charset", "unix_socket", "init_command", "local_infile", "connect_timeout", "read_timeout",
                  "write_timeout")  # fmt: skip
#: Extras of a MySQL connection that choose MySqlHook's own client and cursor: nothing to GE's engine.
_HOOK_ONLY_EXTRAS = ("client", "cursor")
_SSL_MODES = ("DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY")


def mysql_sqlalchemy_url(
    *,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    schema: str | None,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A ``mysql+pymysql://`` URL for a MySQL connection's fields and extras (``extra_dejson``).

    Carried as query parameters, which SQLAlchemy's pymysql dialect turns into connect
    arguments: ``charset`` (default utf8mb4), ``unix_socket``, ``init_command``,
    ``local_infile`` and the timeouts as they are; TLS from ``ssl`` (a dict, or its JSON, as
    MySqlHook takes it: ``ca``, ``cert``, ``key``, ``capath``, ``cipher``, ``check_hostname``),
    or the same as top-level ``ssl_*`` extras, as ``ssl_ca=...`` and so on; and ``ssl_mode``:
    ``DISABLED`` drops the TLS settings, ``REQUIRED`` asks for TLS even without a CA (then
    unverified), ``VERIFY_CA`` and ``VERIFY_IDENTITY`` need a CA and verify the certificate
    (``VERIFY_IDENTITY`` the host name too), ``PREFERRED`` (the default) keeps ``ssl`` as
    given. TLS settings that cannot be carried, and ``iam``, are refused with ValueError
    rather than silently connecting without them; any other unknown extra is left out with
    a warning.

    pymysql, unlike libmysqlclient, falls back to plain text when the server offers no TLS,
    whatever the mode: requiring TLS is the server's job (``REQUIRE SSL`` on the user).
    """
    import sqlalchemy as sa

    extra = dict(extra or {})
    if extra.pop("iam", False):
        raise ValueError("IAM authentication (extra 'iam') is not supported for the SQLAlchemy URL")
    ssl = extra.pop("ssl", None) or {}
    if isinstance(ssl, str):
        ssl = json.loads(ssl)
    if not isinstance(ssl, dict):
        raise ValueError(f"extra 'ssl' must be a JSON object, not {type(ssl).__name__}")
    ssl = dict(ssl)
    for key in [k for k in extra if k.startswith("ssl_") and k != "ssl_mode"]:
        ssl[key.removeprefix("ssl_")] = extra.pop(key)
    unknown = sorted(set(ssl) - set(_SSL_KEYS))
    if unknown:
        raise ValueError(f"TLS settings {unknown} cannot be carried to the SQLAlchemy URL (known: {_SSL_KEYS})")
    mode = str(extra.pop("ssl_mode", "") or "PREFERRED").upper()
    if mode not in _SSL_MODES:
        raise ValueError(f"extra ssl_mode={mode!r}: one of {', '.join(_SSL_MODES)}")
    has_ca = bool(ssl.get("ca") or ssl.get("capath"))
    if mode == "DISABLED":
        ssl = {}
    elif mode in ("VERIFY_CA", "VERIFY_IDENTITY") and not has_ca:
        raise ValueError(f"ssl_mode {mode} needs a CA (extra ssl.ca or ssl.capath)")
    elif mode in ("REQUIRED", "VERIFY_CA"):
        # A non-empty ssl dict turns TLS on; pymysql verifies the certificate iff it has a CA
        # (REQUIRED with a CA is VERIFY_CA, as in MySQL's own client), never the host name.
        ssl["check_hostname"] = False
    elif mode == "VERIFY_IDENTITY":
        ssl["check_hostname"] = True
    query = {f"ssl_{k}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in ssl.items() if v is not None}
    query["charset"] = str(extra.pop("charset", None) or "utf8mb4")
    for key in _PASSED_EXTRAS:
        value = extra.pop(key, None)
        if value is not None and value != "":
            query[key] = str(int(value) if isinstance(value, bool) else value)
    for key in _HOOK_ONLY_EXTRAS:
        extra.pop(key, None)
    if extra:
        log.warning("extras %s of the MySQL connection are not used for the SQLAlchemy URL", sorted(extra))
    url = sa.engine.URL.create(
        "mysql+pymysql", username=login or None, password=password or None, host=host or "127.0.0.1",
        port=int(port or 3306), database=schema or None, query=query,
    )  # fmt: skip
    return url.render_as_string(hide_password=False)


def redis_client() -> redis.Redis:
    """The redis client of the ``crawl_redis`` connection (database number from its extra)."""
    from airflow.providers.redis.hooks.redis import RedisHook

    return RedisHook(redis_conn_id=REDIS_CONN_ID).get_conn()


class TaskRun:
    """What one task run works with: its MySQL connection, its window, and (made on first
    use) its settings and Redis client; ``record`` stores a check's findings and outcome."""

    def __init__(self, context: Mapping[str, Any], conn: Connection, window: Window) -> None:
        self.context, self.conn, self.window = context, conn, window

    @functools.cached_property
    def settings(self) -> Settings:
        return load_settings()

    @functools.cached_property
    def redis(self) -> RedisClient:
        return redis_client()

    @property
    def run_id(self) -> str:
        return str(self.context.get("run_id"))

    @property
    def dry_run(self) -> bool:
        return bool((self.context.get("params") or {}).get("dry_run"))

    @property
    def params(self) -> Mapping[str, Any]:
        return self.context.get("params") or {}

    def record(
        self,
        check: str | None,
        findings: Sequence[Any],
        *,
        details: Mapping[str, Any] | None = None,
        resolves: Sequence[str] = (),
        status: str | None = None,
        window: Window | None = None,
        deliver: bool = False,
    ) -> list[Any]:
        """Store the findings (``resolves``: the finding names this check owns, so one a re-run
        no longer makes is resolved) and, with ``check``, its outcome row for the window:
        ``status`` or else ``fail`` with findings and ``pass`` without; ``deliver``: then send
        the run's alerts."""
        from crawlops.alerts import record_check, record_findings

        window = window or self.window
        record_findings(self.conn, findings, window=window, dag_run_id=self.run_id, resolves=resolves)
        if check:
            record_check(
                self.conn, check, window, status=status or ("fail" if findings else "pass"), findings=len(findings),
                details=dict(details or {}), dag_run_id=self.run_id,
            )  # fmt: skip
        if deliver:
            self.deliver()
        return list(findings)

    @property
    def run_url(self) -> str | None:
        from crawlops.delivery import run_link

        dag = self.context.get("dag")
        return run_link(self.settings.alerts.airflow_base_url, dag.dag_id if dag else "", self.run_id)

    def robot(self) -> Any:
        """The DingTalk robot of ``crawl_dingtalk``, or None when no channel is configured."""
        from crawlops_airflow.hooks import DingTalkHook

        return DingTalkHook(timeout_seconds=self.settings.alerts.delivery_timeout_seconds).get_conn()

    def deliver(self, *, unsent_reports: bool = False) -> list[str]:
        """Deliver the run's alerts (and earlier failed deliveries) to DingTalk, batched; with
        ``unsent_reports``, also daily reports that did not go out (returns their days).
        Never raises: what could not be sent stays stored for a later run."""
        from crawlops import report
        from crawlops.settings import dag_timezone
        from crawlops_airflow.notifiers import DingTalkNotifier

        DingTalkNotifier().notify(self.context)
        if not unsent_reports:
            return []
        try:
            robot = self.robot()
            if robot is None:
                return []
            return report.resend_unsent(self.conn, robot, self.settings, tz=dag_timezone(), dag_run_id=self.run_id)
        except Exception:
            log.exception("resending daily reports failed; a later run tries again")
            return []

    def summarize(self, *, required: Mapping[str, Any]) -> dict[str, Any]:
        """The end of a supervision run: its findings by level, logged; its alerts and any
        unsent daily report delivered; then fails when a ``required`` step's result is None
        (it did not complete), naming it."""
        from crawlops.alerts import findings_by_level

        start, end = self.window.naive()
        summary: dict[str, Any] = {"window": [start.isoformat(), end.isoformat()],
                                   "findings_by_level": findings_by_level(self.conn, self.run_id)}  # fmt: skip
        log.info("run summary: %s", summary)
        resent = self.deliver(unsent_reports=True)
        if resent:
            summary["reports_sent_late"] = resent
            log.info("daily reports sent late: %s", resent)
        missing = [name for name, value in required.items() if value is None]
        if missing:
            raise RuntimeError(f"{' and '.join(missing)} did not complete: see those tasks; findings were recorded")
        return summary


_WINDOWS: dict[str, Callable[[Mapping[str, Any]], Window]] = {
    "run": run_window,
    "closing_hour": closing_hour,
    "day": report_day,
}


@contextlib.contextmanager
def task_run(context: Mapping[str, Any], window: str | Window = "run") -> Iterator[TaskRun]:
    """The runtime of one task: its window (``run``, ``closing_hour``, ``day``, or a given one,
    worked out before anything is opened, so a bad param fails first) and a MySQL connection
    closed on the way out."""
    resolved = window if isinstance(window, Window) else _WINDOWS[window](context)
    with mysql_connection() as conn:
        yield TaskRun(context, conn, resolved)
