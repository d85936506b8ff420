"""Alerts about the alert path's own dependencies: MySQL (and the settings it needs) down.

Every other alert is a row of ``amazon_alert`` first and a DingTalk message second. That
cannot work when MySQL itself is down, so an outage is told straight to the robot, signed
like every message, from state kept outside MySQL (the caller stores ``state``, a JSON
object, in an Airflow Variable):

- the first failed check of an outage sends a CRITICAL message at once;
- while it lasts, a reminder goes out every ``suppression_window_seconds``, never more
  than ``max_messages_per_minute`` outage messages a minute;
- once the component is back, ``recovered`` returns the outage as a finding to record in
  ``amazon_alert`` (marked as delivered when a message went out) and a WARNING saying how
  long it lasted, which the normal delivery sends.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from crawlops.channels import DeliveryError, DingTalkRobot
from crawlops.findings import Finding, Level
from crawlops.names import SUPERVISION_DAG
from crawlops.settings import AlertSettings

log = logging.getLogger(__name__)
SOURCE = SUPERVISION_DAG
_SENT = "_sent"  # timestamps of outage messages in the last minute


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def note_outage(
    state: dict[str, Any],
    component: str,
    error: str,
    *,
    now: float,
    robot: DingTalkRobot | None,
    settings: AlertSettings,
    run_url: str | None = None,
) -> str:
    """Record a failed check of ``component`` in ``state`` and send what is due; returns what happened
    (``sent``, ``reminder sent``, ``suppressed``, ``rate limited``, ``no channel`` or the delivery error)."""
    entry = state.setdefault(component, {"since": now, "checks": 0, "messages": 0, "last_sent": None})
    entry.update(checks=entry["checks"] + 1, last_seen=now, error=error[:300])
    recent = [t for t in state.get(_SENT, []) if t > now - 60]
    state[_SENT] = recent
    last = entry["last_sent"]
    if last is not None and now - last < settings.suppression_window_seconds:
        return "suppressed"
    if robot is None:
        return "no channel"
    if len(recent) >= settings.max_messages_per_minute:
        return "rate limited"
    reminder = last is not None
    minutes = (now - entry["since"]) / 60
    title = f"[CRITICAL] {component} unreachable" + (f" for {minutes:.0f} min" if reminder else "")
    lines = [
        f"### {title}",
        f"- **since**: {_stamp(entry['since'])}, {entry['checks']} failed checks",
        f"- **error**: {entry['error']}",
        "- **what it means**: supervision cannot store or send its other alerts until it is back; "
        "dispatch and status tracking wait too",
        "- **action**: restore it; this outage is recorded in amazon_alert once it is back",
    ]
    if run_url:
        lines.append(f"- [the failing run]({run_url})")
    try:
        robot.send_markdown(title, "\n".join(lines))
    except DeliveryError as exc:
        log.warning("outage message for %s not delivered: %s", component, exc)
        return f"not delivered: {exc}"
    entry["last_sent"] = now
    entry["messages"] += 1
    entry.setdefault("first_sent_at_check", entry["checks"])
    state[_SENT] = [*recent, now]
    return "reminder sent" if reminder else "sent"


def recovered(state: dict[str, Any], component: str, *, now: float) -> list[tuple[Finding, bool]]:
    """``component`` works again: its outage as findings (with whether a message already went
    out), removed from ``state``. Nothing when there was no outage."""
    entry = state.pop(component, None)
    if entry is None:
        return []
    minutes = (now - entry["since"]) / 60
    details = {
        "since": _stamp(entry["since"]),
        "back": _stamp(now),
        "failed_checks": entry["checks"],
        "messages": entry["messages"],
        "error": entry.get("error"),
    }
    outage = Finding(
        Level.CRITICAL,
        SOURCE,
        "outage",
        f"{component} was unreachable from {details['since']} ({entry['checks']} failed checks)",
        subject=component,
        details=details,
        action=f"told to DingTalk directly ({entry['messages']} messages) while it was down",
    )
    back = Finding(
        Level.WARNING,
        SOURCE,
        "outage_recovered",
        f"{component} is back after {minutes:.0f} min",
        subject=component,
        details=details,
        action="tracking, checks and alert delivery resume with this run",
    )
    return [(outage, entry["messages"] > 0), (back, False)]
