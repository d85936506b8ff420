"""Alert delivery: routing to channels, mutes, suppression, reminders, escalation, and per
channel batching, rate budget and retries.

Alerts are rows of ``amazon_alert`` (see ``crawlops.alerts``). ``deliver_alerts`` judges each
alert waiting (new, risen, or repeating again) and records the outcome on its row:

- ``logged``: below the level that is sent (stored and logged only);
- ``muted``: a mute of its check (and subject) is in force: stored, not sent; a new
  occurrence after the mute ends is judged again;
- ``suppressed``: the same source, check and subject went out within the suppression window
  (a closed alert come back); the next message says how many were held back;
- otherwise routed (``crawlops.routing``): one send per channel is queued in the outbox
  (``amazon_alert_send``), and the alert's status sums its sends up: ``sent`` once every
  channel took it, ``failed`` while one retries (after ``retry_backoff_seconds``, doubling),
  ``abandoned`` after ``max_delivery_attempts``, ``no_channel`` when no channel exists.

An open alert nobody acknowledged that keeps repeating is sent again (a reminder) at most
once per suppression window; an ERROR or CRITICAL open and unacknowledged for
``escalate_after_seconds`` is sent once more to the escalation route.

Each channel has its own batches, rate budget (``max_messages_per_minute``) and retries, and
the channels are sent to at once: one that fails or hangs never delays or blocks another.
Delivery never raises: an outage must not fail a DAG run. Error texts stored or logged are
built from status codes and the service's error message only, never from URLs, so tokens
and signatures cannot leak through them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from crawlops import routing
from crawlops.channels import Channel, DeliveryError
from crawlops.db import Connection, LockTimeout, named_lock
from crawlops.findings import Level
from crawlops.routing import Mentions
from crawlops.settings import AlertSettings
from crawlops.store import alerts as store_alerts
from crawlops.store import incidents, outbox

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Send:
    """One queued message part: an alert, for one channel, of one kind."""

    id: int
    alert_id: int
    channel: str
    kind: str  # alert, reminder, escalation
    mentions: Mentions
    attempts: int
    level: Level
    source: str
    check: str
    subject: str
    title: str
    action: str | None
    window_start: dt.datetime
    window_end: dt.datetime
    dag_run_id: str | None
    occurrences: int
    first_seen: dt.datetime
    last_seen: dt.datetime | None
    owner: str | None
    held_back: int


def _now(conn: Connection) -> dt.datetime:
    with conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(3)")
        return cur.fetchone()[0]


def run_link(base_url: str, dag_id: str, run_id: str | None) -> str | None:
    """Link to a DAG run in the Airflow 3 UI."""
    if not run_id:
        return None
    quote = urllib.parse.quote
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _render(send: Send, base_url: str) -> str:
    head = {"reminder": "**still open** · ", "escalation": "**ESCALATED** · "}.get(send.kind, "")
    lines = [
        f"{head}**{send.level.value}** · {send.source} · {send.check}" + (f" · {send.subject}" if send.subject else "")
    ]
    lines.append(f"> {send.title}")
    if send.action:
        lines.append(f"> done: {send.action}")
    if send.kind != "alert" or send.occurrences > 1:
        seen = f"{send.last_seen:%Y-%m-%d %H:%M}" if send.last_seen else "?"
        lines.append(
            f"> seen {send.occurrences} times since {send.first_seen:%Y-%m-%d %H:%M}, last {seen} UTC"
            + (" · nobody has acknowledged it" if send.kind == "escalation" else "")
        )
    if send.held_back and send.kind == "alert":
        lines.append(f"> ({send.held_back} similar held back before this one)")
    if send.owner:
        lines.append(f"> owner: {send.owner}")
    window = f"{send.window_start:%Y-%m-%d %H:%M}–{send.window_end:%H:%M} UTC"
    link = run_link(base_url, send.source, send.dag_run_id)
    lines.append(f"> window {window}" + (f" · [Airflow run]({link})" if link else ""))
    return "\n".join(lines)


def compose(sends: Sequence[Send], settings: AlertSettings) -> list[tuple[str, str, Mentions, list[int]]]:
    """Batch one channel's sends into as few markdown messages as the size limit allows:
    (title, text, mentions, send ids)."""
    messages: list[tuple[str, str, Mentions, list[int]]] = []
    blocks: list[tuple[Send, str]] = [(s, _render(s, settings.airflow_base_url)) for s in sends]
    while blocks:
        chunk: list[tuple[Send, str]] = []
        size = 0
        while blocks and (not chunk or size + len(blocks[0][1].encode()) + 2 <= settings.max_message_bytes):
            send, text = blocks.pop(0)
            chunk.append((send, text))
            size += len(text.encode()) + 2
        top = max((s.level for s, _ in chunk), key=lambda level: level.rank)
        word = "escalated" if any(s.kind == "escalation" for s, _ in chunk) else "crawl alerts"
        title = f"[{top.value}] {word}: {len(chunk)}"
        mentions = Mentions()
        for s, _ in chunk:
            mentions = mentions | s.mentions
        header = f"### {title}\n\n"
        messages.append((title, header + "\n\n".join(t for _, t in chunk), mentions, [s.id for s, _ in chunk]))
    return messages


def deliver_alerts(
    conn: Connection,
    channels: Mapping[str, Channel | None],
    settings: AlertSettings,
    *,
    dag_run_id: str | None = None,
) -> dict[str, Any]:
    """Judge what waits, queue it per channel, escalate, and send (see the module docstring).

    ``channels``: every channel name the settings use, mapped to its channel or None when its
    connection does not exist. Returns counts by outcome, and per channel. One delivery at a
    time (a named lock): runs ending together never route, send or escalate the same alert
    twice; one that waits past the lock's time leaves what waits to the next run.
    """
    try:
        with named_lock(conn, DELIVERY_LOCK, int(2 * settings.delivery_timeout_seconds) + 5):
            return _deliver(conn, channels, settings, dag_run_id=dag_run_id)
    except LockTimeout:
        log.info("another run is delivering alerts; what waits goes out with it or with the next run")
        return {"busy": True}


def _deliver(
    conn: Connection, channels: Mapping[str, Channel | None], settings: AlertSettings, *, dag_run_id: str | None
) -> dict[str, Any]:
    now = _now(conn)
    incidents.close_quiet(conn, settings.quiet_close_seconds)
    incidents.reminders_due(conn, now - dt.timedelta(seconds=settings.suppression_window_seconds))
    outcome: dict[str, Any] = dict.fromkeys(
        ("logged", "muted", "suppressed", "skipped", "withdrawn", "sent", "failed", "deferred", "cancelled"), 0
    )
    outcome |= {"no_channel": 0, "escalated": 0, "channels": {}}
    mutes = incidents.active_mutes(conn, now)  # one read: routing, escalation and sending judge alike
    routed = _route_pending(conn, now, settings, outcome, mutes)
    routed |= _escalate(conn, now, settings, outcome, mutes)
    conn.commit()
    touched = _send_due(conn, now, channels, settings, outcome, mutes=mutes, dag_run_id=dag_run_id)
    outbox.summarise(conn, routed | touched)
    conn.commit()
    return outcome


def _route_pending(
    conn: Connection, now: dt.datetime, settings: AlertSettings, outcome: dict[str, Any], mutes: list[dict[str, Any]]
) -> set[int]:
    threshold = Level(settings.min_level).rank
    window = dt.timedelta(seconds=settings.suppression_window_seconds)
    marks: dict[str, list[int]] = {
        k: [] for k in ("logged", "muted", "suppressed", "skipped", "withdrawn", "no_channel")
    }
    routed: set[int] = set()
    seen: set[str] = set()
    for row in store_alerts.pending(conn, 500):
        alert_id, level, check, subject, fingerprint = row[0], Level(row[1]), row[3], row[4], row[7]
        status, sent_before = row[14], row[18] is not None
        reminder = sent_before and status == "open"
        if row[19]:  # a re-run no longer made it
            marks["withdrawn"].append(alert_id)
            continue
        if not sent_before and status != "open":  # acknowledged, expected or over before it went out
            marks["skipped"].append(alert_id)
            continue
        if level.rank < threshold:
            marks["logged"].append(alert_id)
            continue
        if _muted(mutes, check, subject):
            marks["muted"].append(alert_id)
            continue
        if not reminder:
            last_sent = store_alerts.last_sent_at(conn, fingerprint, other_than=alert_id)
            if fingerprint in seen or (last_sent is not None and last_sent > now - window):
                marks["suppressed"].append(alert_id)
                continue
        seen.add(fingerprint)
        if not reminder:  # the twins held back are accounted for by this alert's message
            store_alerts.account_held(conn, alert_id, store_alerts.held_back(conn, fingerprint))
        where = routing.route(settings, crawl_object=row[12], marketplace=row[13], check=check, level=level.value)
        if not where.targets:  # no route and no default channel
            marks["no_channel"].append(alert_id)
            continue
        kind = "reminder" if reminder else "alert"
        outbox.queue(conn, [(alert_id, ch, kind, m.to_json()) for ch, m in where.targets.items()])
        incidents.set_routed(conn, alert_id, owner=where.owner, channels=",".join(where.targets))
        routed.add(alert_id)
    for mark, ids in marks.items():
        store_alerts.set_delivery_status(conn, ids, mark)
        outcome[mark] += len(ids)
    return routed


def _muted(mutes: list[dict[str, Any]], check: str, subject: str) -> bool:
    return any(m["check"] == check and m["subject"] in ("", subject) for m in mutes)


def _escalate(
    conn: Connection, now: dt.datetime, settings: AlertSettings, outcome: dict[str, Any], mutes: list[dict[str, Any]]
) -> set[int]:
    if not settings.escalate_after_seconds:
        return set()
    opened_before = now - dt.timedelta(seconds=settings.escalate_after_seconds)
    escalated: set[int] = set()
    for alert_id, _, channels, check, subject in incidents.to_escalate(conn, opened_before, ("ERROR", "CRITICAL")):
        if _muted(mutes, check, subject):
            continue  # muted after it went out: quiet means quiet; it escalates if still open after the mute
        own = tuple(c for c in (channels or "").split(",") if c)
        if not incidents.mark_escalated(conn, alert_id):
            continue  # escalated meanwhile
        targets = routing.escalation(settings, own)
        outbox.queue(conn, [(alert_id, ch, "escalation", m.to_json()) for ch, m in targets.items()])
        escalated.add(alert_id)
    outcome["escalated"] = len(escalated)
    return set()  # escalations do not change the alert's delivery summary


def _send_due(
    conn: Connection,
    now: dt.datetime,
    channels: Mapping[str, Channel | None],
    settings: AlertSettings,
    outcome: dict[str, Any],
    *,
    mutes: list[dict[str, Any]],
    dag_run_id: str | None,
) -> set[int]:
    """Send what is due, each channel in its own thread; record results as they come."""
    by_channel: dict[str, list[Send]] = {}
    stale: dict[str, list[Send]] = {"skipped": [], "muted": []}
    for row in outbox.due(conn, now, 2000):
        send = _send(row)
        status, withdrawn = row[20], bool(row[21])
        if withdrawn or status in ("acknowledged", "expected") or (send.kind != "alert" and status != "open"):
            stale["skipped"].append(send)  # people acted on it, or it is over: no more about it
        elif _muted(mutes, send.check, send.subject):
            stale["muted"].append(send)
        else:
            by_channel.setdefault(send.channel, []).append(send)
    for mark, sends in stale.items():
        outbox.mark(conn, [s.id for s in sends], "cancelled")
        store_alerts.set_delivery_status(conn, sorted({s.alert_id for s in sends if s.kind == "alert"}), mark)
        outcome["cancelled"] += len(sends)
    touched = {s.alert_id for sends in by_channel.values() for s in sends}
    work: list[tuple[str, Channel, list[tuple[str, str, Mentions, list[int]]]]] = []
    for name, sends in by_channel.items():
        counts = outcome["channels"].setdefault(name, {"sent": 0, "failed": 0, "deferred": 0, "no_channel": 0})
        channel = channels.get(name)
        if channel is None:
            outbox.mark(conn, [s.id for s in sends], "no_channel")
            counts["no_channel"] += len(sends)
            outcome["no_channel"] += len(sends)
            log.warning("alert channel %s: no such connection; %d alerts stored and logged only", name, len(sends))
            continue
        budget = settings.max_messages_per_minute - store_alerts.messages_since(conn, name, now - _MINUTE)
        messages = compose(sends, settings)
        if len(messages) > max(budget, 0):
            later = [i for *_, ids in messages[max(budget, 0) :] for i in ids]
            outbox.mark(conn, later, "pending", next_attempt_at=now + _MINUTE)
            counts["deferred"] += len(later)
            outcome["deferred"] += len(later)
            messages = messages[: max(budget, 0)]
        if messages:
            work.append((name, channel, messages))
    conn.commit()
    if not work:
        return touched
    with ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="alert-channel") as pool:
        futures = {pool.submit(_send_all, channel, messages): name for name, channel, messages in work}
        for future in as_completed(futures):
            name = futures[future]
            for ids, error in future.result():
                _record(conn, name, ids, error, now=now, settings=settings, dag_run_id=dag_run_id)
                outcome["channels"][name]["failed" if error else "sent"] += len(ids)
                outcome["failed" if error else "sent"] += len(ids)
    return touched


_MINUTE = dt.timedelta(seconds=60)
DELIVERY_LOCK = "crawlops:deliver_alerts"


def _send_all(
    channel: Channel, messages: list[tuple[str, str, Mentions, list[int]]]
) -> list[tuple[list[int], str | None]]:
    """One channel's messages, in order (runs in the channel's thread, touches no database)."""
    results: list[tuple[list[int], str | None]] = []
    for title, text, mentions, ids in messages:
        try:
            channel.send(title, text, mentions)
            results.append((ids, None))
        except DeliveryError as exc:
            results.append((ids, str(exc)))
        except Exception as exc:  # a channel's own bug must not cost the other channels their sends
            results.append((ids, f"channel raised {type(exc).__name__}"))
    return results


def _record(
    conn: Connection,
    name: str,
    ids: list[int],
    error: str | None,
    *,
    now: dt.datetime,
    settings: AlertSettings,
    dag_run_id: str | None,
) -> None:
    store_alerts.log_message(conn, channel=name, alerts=len(ids), error=error, dag_run_id=dag_run_id)
    if error is None:
        outbox.sent(conn, ids)
        log.info("alert channel %s: sent %d alerts in one message", name, len(ids))
    else:
        outbox.failed(
            conn, ids, error, now=now, max_attempts=settings.max_delivery_attempts,
            backoff_seconds=settings.retry_backoff_seconds,
        )  # fmt: skip
        log.warning("alert channel %s: delivery of %d alerts failed: %s (retried later)", name, len(ids), error)
    conn.commit()


def _send(row: tuple[Any, ...]) -> Send:
    return Send(
        id=row[0], alert_id=row[1], channel=row[2], kind=row[3], mentions=Mentions.from_json(row[4]),
        attempts=row[5], level=Level(row[6]), source=row[7], check=row[8], subject=row[9], title=row[10],
        action=row[11], window_start=row[12], window_end=row[13], dag_run_id=row[14], occurrences=int(row[15]),
        first_seen=row[16], last_seen=row[17], owner=row[18],
        held_back=int(row[19] or 0),
    )  # fmt: skip


def send_document(
    conn: Connection,
    channel: Channel,
    title: str,
    text: str,
    settings: AlertSettings,
    *,
    name: str,
    dag_run_id: str | None,
) -> str | None:
    """Send one markdown document (the daily report) to the channel ``name`` within its rate
    budget; returns the error, if any.

    The attempt is logged in ``amazon_alert_delivery`` like alert messages, so it counts
    toward the channel's messages a minute. It never raises.
    """
    if store_alerts.messages_since(conn, name, _now(conn) - _MINUTE) >= settings.max_messages_per_minute:
        return "rate budget for this minute spent; not sent"
    error = None
    try:
        channel.send(title, text, routing.NO_MENTIONS)
    except DeliveryError as exc:
        error = str(exc)
    store_alerts.log_message(conn, channel=name, alerts=0, error=error, dag_run_id=dag_run_id)
    conn.commit()
    return error
