"""Alert delivery to a DingTalk robot: signing, suppression, batching, rate limit, retries.

Alerts are rows of ``amazon_alert`` (see ``crawlops.alerts``); ``deliver_alerts`` sends the
pending ones at or above the configured level and records the outcome on each row:

- ``sent``: delivered (``delivered_at``; ``suppressed_count`` = similar ones held back before it);
- ``suppressed``: the same source, check and subject went out within the suppression window;
- ``logged``: below the level that is sent (stored and logged only);
- ``failed``: the robot answered a non-zero ``errcode``, an HTTP error, or nothing in time;
  retried by a later call after ``retry_backoff_seconds`` doubling per attempt;
- ``abandoned``: still failing after ``max_delivery_attempts``;
- ``no_channel``: no robot is configured.

Delivery never raises: a DingTalk outage must not fail a DAG run. Error texts stored or
logged are built from status codes and DingTalk's ``errmsg`` only, never from URLs, so the
token and signature cannot leak through them.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

from crawlops.db import Connection
from crawlops.findings import Level
from crawlops.settings import AlertSettings
from crawlops.store import alerts as store_alerts

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://oapi.dingtalk.com"
CHANNEL = "dingtalk"


class DeliveryError(RuntimeError):
    """A message did not go out; the text is safe to store and log."""


@dataclasses.dataclass(frozen=True)
class DingTalkRobot:
    """A DingTalk custom robot: ``token`` is the access token, ``secret`` signs (optional)."""

    token: str
    secret: str | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 10.0

    def sign(self, timestamp_ms: int) -> str:
        """base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")), as DingTalk checks it."""
        if not self.secret:
            raise ValueError("this robot has no secret to sign with")
        digest = hmac.new(
            self.secret.encode("utf-8"), f"{timestamp_ms}\n{self.secret}".encode(), hashlib.sha256
        ).digest()
        return base64.b64encode(digest).decode("ascii")

    def url(self, timestamp_ms: int | None = None) -> str:
        """The send URL: access_token, plus timestamp and URL-encoded sign for a signed robot."""
        query = {"access_token": self.token}
        if self.secret:
            timestamp_ms = timestamp_ms or int(time.time() * 1000)
            query |= {"timestamp": str(timestamp_ms), "sign": self.sign(timestamp_ms)}
        return f"{self.base_url.rstrip('/')}/robot/send?{urllib.parse.urlencode(query)}"

    def secrets(self) -> list[str]:
        """Values to register with a secret masker."""
        return [s for s in (self.token, self.secret) if s]

    def send_markdown(self, title: str, text: str) -> None:
        """POST one markdown message; raises ``DeliveryError`` unless DingTalk answers errcode 0."""
        import requests

        timestamp_ms = int(time.time() * 1000)
        body: dict[str, Any] = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
        try:
            response = requests.post(self.url(timestamp_ms), json=body, timeout=self.timeout_seconds)
        except requests.Timeout:
            raise DeliveryError(f"no answer within {self.timeout_seconds:g} s") from None
        except requests.RequestException as exc:
            raise DeliveryError(f"request failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise DeliveryError(f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryError("answer is not JSON") from None
        if answer.get("errcode") != 0:
            raise DeliveryError(f"errcode {answer.get('errcode')}: {str(answer.get('errmsg', ''))[:200]}")


@dataclasses.dataclass
class PendingAlert:
    id: int
    level: Level
    source: str
    check: str
    subject: str
    title: str
    action: str | None
    fingerprint: str
    window_start: dt.datetime
    window_end: dt.datetime
    attempts: int
    dag_run_id: str | None
    held_back: int = 0
    held_since: dt.datetime | None = None


def _now(conn: Connection) -> dt.datetime:
    with conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(3)")
        return cur.fetchone()[0]


def _pending(conn: Connection, now: dt.datetime, limit: int = 500) -> list[PendingAlert]:
    return [
            PendingAlert(
                id=row[0], level=Level(row[1]), source=row[2], check=row[3], subject=row[4], title=row[5],
                action=row[6], fingerprint=row[7], window_start=row[8], window_end=row[9], attempts=row[10],
                dag_run_id=row[11],
            )
            for row in store_alerts.pending(conn, now, limit)
        ]  # fmt: skip


def _mark(conn: Connection, ids: Sequence[int], status: str, **columns: Any) -> None:
    store_alerts.set_delivery_status(conn, ids, status, **columns)


def run_link(base_url: str, dag_id: str, run_id: str | None) -> str | None:
    """Link to a DAG run in the Airflow 3 UI."""
    if not run_id:
        return None
    quote = urllib.parse.quote
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _render(alert: PendingAlert, base_url: str) -> str:
    lines = [
        f"**{alert.level.value}** · {alert.source} · {alert.check}" + (f" · {alert.subject}" if alert.subject else "")
    ]
    lines.append(f"> {alert.title}")
    if alert.action:
        lines.append(f"> done: {alert.action}")
    if alert.held_back:
        lines.append(f"> ({alert.held_back} similar held back since {alert.held_since:%Y-%m-%d %H:%M} UTC)")
    window = f"{alert.window_start:%Y-%m-%d %H:%M}–{alert.window_end:%H:%M} UTC"
    link = run_link(base_url, alert.source, alert.dag_run_id)
    lines.append(f"> window {window}" + (f" · [Airflow run]({link})" if link else ""))
    return "\n".join(lines)


def compose(alerts: Sequence[PendingAlert], settings: AlertSettings) -> list[tuple[str, str, list[int]]]:
    """Batch alerts into as few markdown messages as the size limit allows: (title, text, alert ids)."""
    messages: list[tuple[str, str, list[int]]] = []
    blocks: list[tuple[PendingAlert, str]] = [(a, _render(a, settings.airflow_base_url)) for a in alerts]
    while blocks:
        chunk: list[tuple[PendingAlert, str]] = []
        size = 0
        while blocks and (not chunk or size + len(blocks[0][1].encode()) + 2 <= settings.max_message_bytes):
            alert, text = blocks.pop(0)
            chunk.append((alert, text))
            size += len(text.encode()) + 2
        top = max((a.level for a, _ in chunk), key=lambda level: level.rank)
        title = f"[{top.value}] crawl alerts: {len(chunk)}"
        header = f"### {title}\n\n"
        messages.append((title, header + "\n\n".join(t for _, t in chunk), [a.id for a, _ in chunk]))
    return messages


def deliver_alerts(
    conn: Connection, robot: DingTalkRobot | None, settings: AlertSettings, *, dag_run_id: str | None = None
) -> dict[str, Any]:
    """Send what is pending to the robot (see the module docstring); returns counts by outcome."""
    now = _now(conn)
    pending = _pending(conn, now)
    threshold = Level(settings.min_level).rank
    quiet = [a.id for a in pending if a.level.rank < threshold]
    loud = [a for a in pending if a.level.rank >= threshold]
    _mark(conn, quiet, "logged")
    outcome: dict[str, Any] = {"logged": len(quiet), "sent": 0, "suppressed": 0, "failed": 0, "deferred": 0}
    if robot is None:
        _mark(conn, [a.id for a in loud], "no_channel")
        conn.commit()
        outcome["no_channel"] = len(loud)
        return outcome

    to_send = _apply_suppression(conn, loud, now, settings, outcome)
    budget = settings.max_messages_per_minute - _sent_last_minute(conn, now)
    messages = compose(to_send, settings)
    if len(messages) > budget:
        deferred = [i for _, _, ids in messages[max(budget, 0) :] for i in ids]
        _mark(conn, deferred, "stored", next_attempt_at=now + dt.timedelta(seconds=60))
        outcome["deferred"] = len(deferred)
        messages = messages[: max(budget, 0)]
    held = {a.id: a.held_back for a in to_send}
    conn.commit()
    for title, text, ids in messages:
        error = None
        try:
            robot.send_markdown(title, text)
        except DeliveryError as exc:
            error = str(exc)
        _record_attempt(conn, ids, error, now=now, settings=settings, held=held, dag_run_id=dag_run_id)
        outcome["failed" if error else "sent"] += len(ids)
        if error:
            log.warning("DingTalk delivery of %d alerts failed: %s (retried later)", len(ids), error)
        else:
            log.info("DingTalk: sent %d alerts in one message", len(ids))
    return outcome


def send_document(
    conn: Connection, robot: DingTalkRobot, title: str, text: str, settings: AlertSettings, *, dag_run_id: str | None
) -> str | None:
    """Send one markdown document (the daily report) within the rate budget; returns the error, if any.

    The attempt is logged in ``amazon_alert_delivery`` like alert messages, so it counts
    toward the robot's 20 a minute. It never raises.
    """
    if _sent_last_minute(conn, _now(conn)) >= settings.max_messages_per_minute:
        return "rate budget for this minute spent; not sent"
    error = None
    try:
        robot.send_markdown(title, text)
    except DeliveryError as exc:
        error = str(exc)
    store_alerts.log_message(conn, channel=CHANNEL, alerts=0, error=error, dag_run_id=dag_run_id)
    conn.commit()
    return error


def _apply_suppression(
    conn: Connection, alerts: list[PendingAlert], now: dt.datetime, settings: AlertSettings, outcome: dict[str, Any]
) -> list[PendingAlert]:
    """Hold back alerts whose twin went out within the window; count what was held for the next one."""
    window = dt.timedelta(seconds=settings.suppression_window_seconds)
    to_send, seen, suppressed = [], set(), []
    for alert in alerts:
        last_sent = store_alerts.last_sent_at(conn, alert.fingerprint)
        if alert.fingerprint in seen or (last_sent is not None and last_sent > now - window):
            suppressed.append(alert.id)
            continue
        seen.add(alert.fingerprint)
        alert.held_back, alert.held_since = store_alerts.held_back(conn, alert.fingerprint)
        to_send.append(alert)
    _mark(conn, suppressed, "suppressed")
    outcome["suppressed"] = len(suppressed)
    return to_send


def _sent_last_minute(conn: Connection, now: dt.datetime) -> int:
    return store_alerts.messages_since(conn, CHANNEL, now - dt.timedelta(seconds=60))


def _record_attempt(
    conn: Connection,
    ids: list[int],
    error: str | None,
    *,
    now: dt.datetime,
    settings: AlertSettings,
    held: dict[int, int],
    dag_run_id: str | None,
) -> None:
    store_alerts.log_message(conn, channel=CHANNEL, alerts=len(ids), error=error, dag_run_id=dag_run_id)
    if error is None:
        store_alerts.record_sent(conn, ids, held)
    else:
        store_alerts.record_failed(
            conn, ids, error, now=now, max_attempts=settings.max_delivery_attempts,
            backoff_seconds=settings.retry_backoff_seconds,
        )  # fmt: skip
    conn.commit()
