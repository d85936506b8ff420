"""CrawlAlertNotifier: delivers the package's alerts to the channels their routes name.

Channels are Airflow connections (``crawlops_airflow.channels``): DingTalk robots
(``DingTalkHook``, ``crawl_dingtalk`` by default) and Apprise connections. Used two ways:

- as a failure callback (``on_failure_callback=CrawlAlertNotifier(record_failure=True)``):
  records an ERROR alert naming the DAG, task and run with the exception's first line,
  then delivers;
- at the end of each run (``CrawlAlertNotifier().notify(context)``): routes every alert
  waiting, queues reminders and escalations, and sends what is due on each channel
  (earlier failed sends whose backoff has passed too), batched per channel.

A channel whose connection does not exist gets nothing: its alerts are stored and logged
and the run says so. Nothing here ever fails a task: delivery problems are recorded on the
alerts' sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from airflow.sdk import BaseNotifier

from crawlops.db import Connection
from crawlops.names import DINGTALK_CONN_ID, MYSQL_CONN_ID
from crawlops_airflow.hooks import DingTalkHook


class CrawlAlertNotifier(BaseNotifier):
    """Delivers the run's alerts to their routed channels; ``conn_id`` is the DingTalk robot
    that is told when the crawl database itself (``mysql_conn_id``) cannot be reached."""

    template_fields = ("conn_id",)

    def __init__(
        self, *, conn_id: str = DINGTALK_CONN_ID, mysql_conn_id: str = MYSQL_CONN_ID, record_failure: bool = False
    ):
        super().__init__()
        self.conn_id = conn_id
        self.mysql_conn_id = mysql_conn_id
        self.record_failure = record_failure

    @cached_property
    def hook(self) -> DingTalkHook:
        """The outage robot's hook, built once (its timeout is set from the settings at delivery)."""
        return DingTalkHook(self.conn_id)

    def notify(self, context: Mapping[str, Any]) -> None:
        try:
            self._notify(context)
        except Exception:  # a notifier must never fail the run it reports on
            self.log.exception("alert delivery failed; what was stored is retried by a later run")

    def _notify(self, context: Mapping[str, Any]) -> None:
        from crawlops.delivery import deliver_alerts
        from crawlops_airflow.channels import build_channels, channel_names
        from crawlops_airflow.hooks.mysql import CrawlMySqlHook
        from crawlops_airflow.variables import settings_or_defaults

        settings = settings_or_defaults()
        hook = self.hook
        hook.timeout_seconds = settings.alerts.delivery_timeout_seconds
        try:
            conn = CrawlMySqlHook(self.mysql_conn_id).connect()
        except Exception as exc:  # the alert path must not depend on the component that failed
            from crawlops_airflow.outages import outage_alarm

            outage_alarm("MySQL", exc, settings, context, robot=hook.get_conn())
            return
        try:
            if self.record_failure:
                _record_task_failure(conn, context)
            names = channel_names(settings.alerts)
            channels = build_channels(names, timeout_seconds=settings.alerts.delivery_timeout_seconds)
            outcome = deliver_alerts(conn, channels, settings.alerts, dag_run_id=context.get("run_id"))
        finally:
            conn.close()
        missing = [name for name, channel in channels.items() if channel is None]
        if missing and outcome.get("no_channel"):
            self.log.warning(
                "alert channels without a connection: %s; %d alerts for them stored and logged only",
                ", ".join(missing),
                outcome["no_channel"],
            )
        self.log.info("alert delivery: %s", outcome)


def _record_task_failure(conn: Connection, context: Mapping[str, Any]) -> None:
    from crawlops.alerts import record_findings
    from crawlops.findings import Finding, Level
    from crawlops_airflow.exceptions import SuiteValidationFailed
    from crawlops_airflow.windows import run_window

    exception = context.get("exception")
    if isinstance(exception, SuiteValidationFailed):
        return  # the suite's failed rules are alerts of their own already
    ti = context.get("ti") or context.get("task_instance")
    dag_id = context["dag"].dag_id if context.get("dag") else getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    first_line = (str(exception).strip().splitlines() or [type(exception).__name__])[0][:300]
    finding = Finding(
        Level.ERROR,
        dag_id,
        "task_failed",
        f"{dag_id}.{task_id} failed in run {context.get('run_id')}: {first_line}",
        subject=f"{dag_id}.{task_id}",
        details={"exception": type(exception).__name__ if exception else None, "try": getattr(ti, "try_number", None)},
        action="Airflow retries the task while it has retries left; this alert is for the failure that ended them",
    )
    try:
        window = run_window(context)
    except Exception:  # the failure may be the window itself (a bad param): file it under the run's interval
        window = run_window({**context, "params": {}})
    record_findings(conn, [finding], window=window, dag_run_id=context.get("run_id"))
