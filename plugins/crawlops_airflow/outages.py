"""Outages of what the alert path itself needs (MySQL, the settings Variable, Redis), told
without it.

While MySQL is down nothing can be recorded in ``amazon_alert``, so an outage is told to
DingTalk directly, with its state (when told, when reminded) in the Airflow Variable
``crawlops_outage_state``: one message, a reminder every suppression window, rate-limited.
When MySQL is back the outage is recorded in ``amazon_alert`` like any finding.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crawlops.db import Connection
from crawlops.names import DINGTALK_CONN_ID

if TYPE_CHECKING:
    from crawlops.channels import DingTalkRobot
    from crawlops.model import Window
    from crawlops.settings import Settings

log = logging.getLogger(__name__)

OUTAGE_VARIABLE = "crawlops_outage_state"


def _outage_state() -> dict[str, Any]:
    from airflow.sdk import Variable

    try:
        raw = Variable.get(OUTAGE_VARIABLE, default=None)
        return json.loads(raw) if raw else {}
    except Exception:  # an unreadable state only costs a repeated message
        return {}


def _save_outage_state(state: dict[str, Any]) -> None:
    from airflow.sdk import Variable

    try:
        Variable.set(OUTAGE_VARIABLE, json.dumps(state), description="crawlops: outages told to DingTalk directly")
    except Exception as exc:
        log.warning("outage state not saved (%s): the next check may repeat the message", exc)


def outage_alarm(
    component: str,
    error: BaseException | str,
    settings: Settings,
    context: Mapping[str, Any],
    *,
    robot: DingTalkRobot | None = None,
    dingtalk_conn_id: str = DINGTALK_CONN_ID,
) -> str:
    """Tell DingTalk (``robot``, else the robot of ``dingtalk_conn_id``) that ``component`` is
    down, without MySQL: signed, deduplicated and rate-limited through state in the Airflow
    Variable ``crawlops_outage_state``."""
    from crawlops.delivery import run_link
    from crawlops.outage import note_outage
    from crawlops_airflow.hooks import DingTalkHook

    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else error
    if robot is None:
        robot = DingTalkHook(dingtalk_conn_id, timeout_seconds=settings.alerts.delivery_timeout_seconds).get_conn()
    dag = context.get("dag")
    run_url = run_link(settings.alerts.airflow_base_url, dag.dag_id if dag else "", context.get("run_id"))
    state = _outage_state()
    outcome = note_outage(
        state, component, text.splitlines()[0] if text else "", now=time.time(), robot=robot,
        settings=settings.alerts, run_url=run_url,
    )  # fmt: skip
    _save_outage_state(state)
    log.error("%s unreachable (%s); DingTalk: %s", component, text[:200], outcome)
    return outcome


def record_recovered_outages(
    conn: Connection, components: list[str], window: Window, context: Mapping[str, Any]
) -> list[str]:
    """Outages told to DingTalk while MySQL was down, recorded in ``amazon_alert`` now that it is
    back (a message that went out is marked delivered); returns the components that recovered."""
    from crawlops.alerts import record_findings
    from crawlops.outage import recovered
    from crawlops.store.alerts import mark_delivered

    state = _outage_state()
    back = [c for c in components if c in state]
    if not back:
        return []
    for component in back:
        for finding, delivered in recovered(state, component, now=time.time()):
            (alert_id,) = record_findings(conn, [finding], window=window, dag_run_id=context.get("run_id"))
            if delivered:
                mark_delivered(conn, [alert_id])
    _save_outage_state(state)
    return back
