"""The task runtime: what a task of the package's DAGs works with (``task_run``).

A task body opens ``task_run(context, window)`` and calls the domain; the runtime works
out the window first (``crawlops_airflow.windows``), opens the MySQL connection of
``mysql_conn_id`` and makes the settings and the Redis client of ``redis_conn_id`` on first
use; ``run.record`` stores a check's findings and outcome, ``run.deliver`` sends the run's
alerts to the robot of ``dingtalk_conn_id``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from crawlops.db import Connection
from crawlops.model import Window
from crawlops.names import DINGTALK_CONN_ID, MYSQL_CONN_ID, REDIS_CONN_ID
from crawlops.queue import RedisClient
from crawlops.settings import Settings
from crawlops_airflow.variables import load_settings
from crawlops_airflow.windows import WINDOWS

log = logging.getLogger(__name__)


def check_schema(conn: Connection) -> int:
    """The database's schema version; a database behind this package fails the task at once,
    without retries, saying which migrations to apply (they run at deploy, never in a DAG run)."""
    from airflow.sdk.exceptions import AirflowFailException

    from crawlops.migrations import SchemaBehind, check

    try:
        return check(conn)
    except SchemaBehind as exc:
        raise AirflowFailException(str(exc)) from None


class TaskRun:
    """What one task run works with: its MySQL connection, its window, and (made on first
    use) its settings and the Redis client of ``redis_conn_id``; ``record`` stores a check's
    findings and outcome; alerts go to the robot of ``dingtalk_conn_id``."""

    def __init__(
        self,
        context: Mapping[str, Any],
        conn: Connection,
        window: Window,
        *,
        redis_conn_id: str = REDIS_CONN_ID,
        dingtalk_conn_id: str = DINGTALK_CONN_ID,
    ) -> None:
        self.context, self.conn, self.window = context, conn, window
        self.redis_conn_id, self.dingtalk_conn_id = redis_conn_id, dingtalk_conn_id

    @functools.cached_property
    def settings(self) -> Settings:
        return load_settings()

    @functools.cached_property
    def redis(self) -> RedisClient:
        from crawlops_airflow.hooks.redis import CrawlRedisHook

        client: RedisClient = CrawlRedisHook(self.redis_conn_id).get_conn()
        return client

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
        scope: str | None = None,
    ) -> list[Any]:
        """Store the findings (``resolves``: the finding names this check owns, so one a re-run
        no longer makes is resolved) and, with ``check``, its outcome row for the window:
        ``status`` or else ``fail`` with findings and ``pass`` without; ``deliver``: then send
        the run's alerts; ``scope``: the table a per-object check is about (it resolves
        findings about that table only)."""
        from crawlops.alerts import record_check, record_findings

        window = window or self.window
        record_findings(
            self.conn, findings, window=window, dag_run_id=self.run_id, resolves=resolves, scope=scope,
            quiet_close_seconds=self.settings.alerts.quiet_close_seconds,
        )  # fmt: skip
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
        """The DingTalk robot of ``dingtalk_conn_id``, or None when no channel is configured."""
        from crawlops_airflow.hooks import DingTalkHook

        return DingTalkHook(
            self.dingtalk_conn_id, timeout_seconds=self.settings.alerts.delivery_timeout_seconds
        ).get_conn()

    def deliver(self, *, unsent_reports: bool = False) -> list[str]:
        """Deliver the run's alerts (and earlier failed sends) to their channels, batched; with
        ``unsent_reports``, also daily reports that did not go out (returns their days).
        Never raises: what could not be sent stays stored for a later run."""
        from crawlops import report
        from crawlops.settings import dag_timezone
        from crawlops_airflow.notifiers import CrawlAlertNotifier

        CrawlAlertNotifier(conn_id=self.dingtalk_conn_id).notify(self.context)
        if not unsent_reports:
            return []
        try:
            robot = self.robot()
            if robot is None:
                return []
            return report.resend_unsent(
                self.conn,
                robot,
                self.settings,
                tz=dag_timezone(),
                dag_run_id=self.run_id,
                channel=self.dingtalk_conn_id,
            )
        except Exception:
            log.exception("resending daily reports failed; a later run tries again")
            return []

    def summarize(self, *, required: Mapping[str, Any]) -> dict[str, Any]:
        """The end of a supervision run: its findings by level, logged; its alerts and any
        unsent daily report delivered; then fails when a ``required`` step's result is None
        (it did not complete), naming it."""
        from crawlops.store.alerts import findings_by_level

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


@contextlib.contextmanager
def task_run(
    context: Mapping[str, Any],
    window: str | Window = "run",
    *,
    mysql_conn_id: str = MYSQL_CONN_ID,
    redis_conn_id: str = REDIS_CONN_ID,
    dingtalk_conn_id: str = DINGTALK_CONN_ID,
) -> Iterator[TaskRun]:
    """The runtime of one task: its window (``run``, ``closing_hour``, ``day``, or a given one,
    worked out before anything is opened, so a bad param fails first) and a connection to
    ``mysql_conn_id`` closed on the way out."""
    from crawlops_airflow.hooks.mysql import CrawlMySqlHook

    resolved = window if isinstance(window, Window) else WINDOWS[window](context)
    with CrawlMySqlHook(mysql_conn_id).session() as conn:
        yield TaskRun(context, conn, resolved, redis_conn_id=redis_conn_id, dingtalk_conn_id=dingtalk_conn_id)
