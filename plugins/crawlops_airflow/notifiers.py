"""DingTalkNotifier: delivers the package's alerts to the ``crawl_dingtalk`` robot.

Used two ways:

- as a failure callback (``on_failure_callback=DingTalkNotifier(record_failure=True)``):
  records an ERROR alert naming the DAG, task and run with the exception's first line,
  then delivers;
- at the end of each run (``DingTalkNotifier().notify(context)``): delivers every pending
  alert of the run, and earlier failed deliveries whose backoff has passed, batched into
  as few messages as DingTalk's limits allow.

The connection: password = access token, extra ``{"secret": "..."}`` for a signed robot,
host (with scheme and port, e.g. ``http://127.0.0.1:8089``) overrides
``https://oapi.dingtalk.com``. Token, secret and signed URLs are registered with Airflow's
secret masker. Without the connection, alerts are stored and logged and the run says so once.
Nothing here ever fails a task: delivery problems are recorded on the alerts.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier

DINGTALK_CONN_ID = "crawl_dingtalk"


class DingTalkNotifier(BaseNotifier):
    template_fields = ("conn_id",)

    def __init__(self, *, conn_id: str = DINGTALK_CONN_ID, record_failure: bool = False):
        super().__init__()
        self.conn_id = conn_id
        self.record_failure = record_failure

    def robot(self, timeout_seconds: float) -> Any:
        """The robot of the connection, or None when the connection does not exist."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException
        from airflow.sdk.log import mask_secret

        from crawlops.delivery import DEFAULT_BASE_URL, DingTalkRobot

        try:
            conn = BaseHook.get_connection(self.conn_id)
        except AirflowNotFoundException:
            return None
        base_url = DEFAULT_BASE_URL
        if conn.host:
            scheme = conn.conn_type if conn.conn_type in ("http", "https") else "https"
            base_url = conn.host if "://" in conn.host else f"{scheme}://{conn.host}"
            base_url += f":{conn.port}" if conn.port else ""
        robot = DingTalkRobot(
            token=conn.password or "",
            secret=conn.extra_dejson.get("secret") or None,
            base_url=base_url,
            timeout_seconds=timeout_seconds,
        )
        for value in robot.secrets():
            mask_secret(value)
        if robot.secret:
            mask_secret(robot.url())  # the signed URL, as a whole, too
        return robot if robot.token else None

    def resend_reports(self, context: Any) -> list[str]:
        """Send the daily reports of the last week that did not go out (rate budget spent,
        DingTalk down); each one sent is recorded and its check turns ``pass``. Never raises."""
        import datetime as dt
        from zoneinfo import ZoneInfo

        from crawlops import report
        from crawlops.delivery import send_document
        from crawlops.settings import dag_timezone
        from crawlops_airflow.runtime import mysql_connection, settings_or_defaults

        sent: list[str] = []
        try:
            settings = settings_or_defaults()
            robot = self.robot(settings.alerts.delivery_timeout_seconds)
            if robot is None:
                return sent
            with mysql_connection() as conn:
                for day, markdown in report.unsent_reports(conn):
                    error = send_document(
                        conn, robot, f"Crawl daily report {day}", markdown, settings.alerts,
                        dag_run_id=context.get("run_id"),
                    )  # fmt: skip
                    report.record_delivery(conn, day, error)
                    if error:
                        break  # the budget or the robot: a later run goes on
                    start = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(dag_timezone()))
                    with conn.cursor() as cur:
                        cur.execute(
                            "UPDATE amazon_check_run SET status = 'pass' WHERE check_name = 'daily_report' "
                            "AND status = 'unsent' AND window_start = %s",
                            (start.astimezone(dt.UTC).replace(tzinfo=None),),
                        )
                    conn.commit()
                    sent.append(str(day))
        except Exception:
            self.log.exception("resending daily reports failed; a later run tries again")
        return sent

    def notify(self, context: Any) -> None:
        try:
            self._notify(context)
        except Exception:  # a notifier must never fail the run it reports on
            self.log.exception("alert delivery failed; what was stored is retried by a later run")

    def _notify(self, context: Any) -> None:
        from crawlops.delivery import deliver_alerts
        from crawlops_airflow.runtime import open_mysql, settings_or_defaults

        settings = settings_or_defaults()
        try:
            conn = open_mysql()
        except Exception as exc:  # the alert path must not depend on the component that failed
            outage_alarm("MySQL", exc, settings, context, notifier=self)
            return
        try:
            if self.record_failure:
                _record_task_failure(conn, context)
            robot = self.robot(settings.alerts.delivery_timeout_seconds)
            run_id = context.get("run_id")
            outcome = deliver_alerts(conn, robot, settings.alerts, dag_run_id=run_id)
        finally:
            conn.close()
        if robot is None and outcome.get("no_channel"):
            self.log.warning(
                "no alert channel: connection %s is not set; %d alerts stored and logged only",
                self.conn_id,
                outcome["no_channel"],
            )
        else:
            self.log.info("alert delivery: %s", outcome)


def _record_task_failure(conn: Any, context: Any) -> None:
    from crawlops.alerts import Finding, Level, record_findings
    from crawlops_airflow.operators import SuiteValidationFailed
    from crawlops_airflow.runtime import run_window

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
    minutes = 60 if dag_id == "amazon_task_dispatch" else 5
    try:
        window = run_window(context, minutes=minutes)
    except Exception:  # the failure may be the window itself (a bad param): file it under the run's interval
        window = run_window({**context, "params": {}}, minutes=minutes)
    record_findings(conn, [finding], window=window, dag_run_id=context.get("run_id"))


OUTAGE_VARIABLE = "crawlops_outage_state"


def _outage_state() -> dict[str, Any]:
    import json

    from airflow.sdk import Variable

    try:
        raw = Variable.get(OUTAGE_VARIABLE, default=None)
        return json.loads(raw) if raw else {}
    except Exception:  # an unreadable state only costs a repeated message
        return {}


def _save_outage_state(state: dict[str, Any]) -> None:
    import json

    from airflow.sdk import Variable

    try:
        Variable.set(OUTAGE_VARIABLE, json.dumps(state), description="crawlops: outages told to DingTalk directly")
    except Exception as exc:
        import logging

        logging.getLogger(__name__).warning("outage state not saved (%s): the next check may repeat the message", exc)


def outage_alarm(
    component: str, error: BaseException | str, settings: Any, context: Any, *, notifier: DingTalkNotifier | None = None
) -> str:
    """Tell DingTalk that ``component`` is down, without MySQL: signed, deduplicated and
    rate-limited through state in the Airflow Variable ``crawlops_outage_state``."""
    import logging
    import time

    from crawlops.delivery import run_link
    from crawlops.outage import note_outage

    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
    robot = (notifier or DingTalkNotifier()).robot(settings.alerts.delivery_timeout_seconds)
    dag = context.get("dag")
    run_url = run_link(settings.alerts.airflow_base_url, dag.dag_id if dag else "", context.get("run_id"))
    state = _outage_state()
    outcome = note_outage(
        state, component, text.splitlines()[0] if text else "", now=time.time(), robot=robot,
        settings=settings.alerts, run_url=run_url,
    )  # fmt: skip
    _save_outage_state(state)
    logging.getLogger(__name__).error("%s unreachable (%s); DingTalk: %s", component, text[:200], outcome)
    return outcome


def record_recovered_outages(conn: Any, components: list[str], window: Any, context: Any) -> list[str]:
    """Outages told to DingTalk while MySQL was down, recorded in ``amazon_alert`` now that it is
    back (a message that went out is marked delivered); returns the components that recovered."""
    import time

    from crawlops.alerts import record_findings
    from crawlops.outage import recovered

    state = _outage_state()
    back = [c for c in components if c in state]
    if not back:
        return []
    for component in back:
        for finding, delivered in recovered(state, component, now=time.time()):
            (alert_id,) = record_findings(conn, [finding], window=window, dag_run_id=context.get("run_id"))
            if delivered:
                with conn.cursor() as cur:
                    cur.execute(
                        "UPDATE amazon_alert SET delivery_status = 'sent', delivered_at = UTC_TIMESTAMP() "
                        "WHERE id = %s",
                        (alert_id,),
                    )
                conn.commit()
    _save_outage_state(state)
    return back
