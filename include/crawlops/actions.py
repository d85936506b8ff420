"""Operator actions on what supervision found, each audited (``amazon_operator_action``):

- **re-drive** a ``Dead`` task with a budget of its own: its unanswered elements (no rows, no
  empty answer anywhere in its retry chain) become its retry task ``<task>_fail``, the chain
  staying one line; the retry task may be retried until the chain has had ``budget`` more
  crawls, then it is Dead again;
- **release** a crawl object's rows quarantined for a rule back into its results table, once
  the rule is fixed: rows conserved (main + quarantine unchanged), ids kept;
- **acknowledge** an alert ("seen, working on it": no reminders, no escalation) or mark it
  **expected** ("maintenance tonight"), with a note;
- **mute** a check (for one subject, or every one) for some minutes: its alerts are stored,
  not sent; **unmute** ends a mute early.

Bad input changes nothing and raises ``Refused`` with an HTTP status (400 bad input, 404
unknown, 409 not in a state for it). Callers: the CLI below; the Crawl Ops app.

    python -m crawlops.actions redrive TASK_ID --budget 2 --by alice --why "site fixed"
    python -m crawlops.actions release product_detail price_non_negative --by bob --why "rule fixed"
    python -m crawlops.actions ack 42 --by alice --why "looking at the DE proxies"
    python -m crawlops.actions mute success_rate --subject product_review --minutes 120 --by bob --why "deploy"
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from typing import Any

from crawlops import objects, queue, store
from crawlops.db import Connection
from crawlops.lifecycle.common import tracking_lock
from crawlops.model import TaskStatus, fail_key
from crawlops.queue import RedisClient
from crawlops.settings import Settings
from crawlops.store import audit, incidents
from crawlops.store import results as store_results

log = logging.getLogger(__name__)

MAX_BUDGET = 10  # more crawls than this of the same elements is a config problem, not a re-drive
MAX_MUTE_MINUTES = 7 * 24 * 60  # a longer mute is a route or a threshold to change
ALERT_STATUSES = ("acknowledged", "expected")


class Refused(ValueError):
    """An action refused before anything changed: ``status`` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _who_and_why(actor: str, reason: str) -> tuple[str, str]:
    actor, reason = (actor or "").strip(), (reason or "").strip()
    if not actor:
        raise Refused(400, "who acts is required")
    if not reason:
        raise Refused(400, "a reason is required")
    return actor, reason


def redrive(
    conn: Connection, r: RedisClient, settings: Settings, task_id: str, *, budget: int, actor: str, reason: str
) -> dict[str, Any]:
    """Re-drive the Dead task ``task_id``: its unanswered elements become ``<task_id>_fail``,
    which (with its own retries) may crawl them ``budget`` more times. Returns what was done."""
    actor, reason = _who_and_why(actor, reason)
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= MAX_BUDGET:
        raise Refused(400, f"budget must be a whole number from 1 to {MAX_BUDGET}, not {budget!r}")
    limits = settings.dispatch
    with tracking_lock(conn, settings, True):  # settling and re-driving never interleave
        found = store.select_tasks(conn, "task_id = %s", (task_id,))
        if not found:
            raise Refused(404, f"no task {task_id!r}")
        task = found[0]
        if task.task_status != TaskStatus.DEAD.value:
            raise Refused(409, f"task {task_id} is {task.task_status}, not Dead")
        retry_id = fail_key(task_id)
        if store.select_tasks(conn, "task_id = %s", (retry_id,)):
            raise Refused(409, f"task {task_id} was re-driven already: {retry_id}")
        elements = [e for part in store.stream_elements(conn, task, batch_size=limits.mysql_batch_size,
                                                        exclude_done=True, fields=True) for e in part]  # fmt: skip
        if not elements:
            raise Refused(409, f"task {task_id} has no unanswered element left")
        # The retry task may reach retry count task.retry_count + budget: ``budget`` crawls in all.
        source = dataclasses.replace(task, retry_limit=task.retry_count + budget)
        epoch = queue.current_epoch(r, create=True)
        count = store.record_retry_task(conn, source, elements, epoch=epoch, batch_size=limits.mysql_batch_size)
        if count is None:
            raise Refused(409, f"task {task_id} was re-driven already: {retry_id}")
        r.delete(retry_id)  # the Dead task's fail set, kept for inspection, gives way to the queue
        queue.add_members(r, retry_id, [e.text for e in elements], limits.redis_batch_size)
        queue.index_open(r, [retry_id], {retry_id: task.priority})
        outcome = {"retry_task": retry_id, "elements": count, "retry_limit": source.retry_limit}
        with conn.cursor() as cur:
            outcome["audit_id"] = audit.record(cur, action="redrive", subject=task_id, actor=actor, reason=reason,
                                               params={"budget": budget}, outcome=outcome)  # fmt: skip
        conn.commit()
    log.warning("%s re-drove Dead task %s: %d elements in %s (%s)", actor, task_id, count, retry_id, reason)
    return {"task_id": task_id, **outcome}


def release(conn: Connection, crawl_object: str, rule: str, *, actor: str, reason: str) -> dict[str, Any]:
    """Move every row of ``crawl_object`` quarantined for ``rule`` back into its results table."""
    actor, reason = _who_and_why(actor, reason)
    if crawl_object not in objects.REGISTRY:
        raise Refused(404, f"no crawl object {crawl_object!r}; known: {sorted(objects.REGISTRY)}")
    table = objects.get(crawl_object).results_table
    ids = store_results.quarantined_ids(conn, table, rule)
    if not ids:
        conn.rollback()
        raise Refused(404, f"no rows of {table} are quarantined for {rule!r}")
    moved = store_results.release(conn, table, ids)
    outcome: dict[str, Any] = {"table": table, "released": moved}
    with conn.cursor() as cur:
        outcome["audit_id"] = audit.record(cur, action="release", subject=f"{table}:{rule}", actor=actor,
                                           reason=reason, params={"crawl_object": crawl_object, "rule": rule},
                                           outcome=outcome)  # fmt: skip
    conn.commit()
    log.warning("%s released %d rows of %s quarantined for %s (%s)", actor, moved, table, rule, reason)
    return {"crawl_object": crawl_object, "rule": rule, **outcome}


def set_alert_status(conn: Connection, alert_id: int, status: str, *, actor: str, reason: str) -> dict[str, Any]:
    """Acknowledge a live alert, or mark it expected: it stays listed, gets no reminders and
    never escalates; a closed (or withdrawn) one is refused."""
    actor, reason = _who_and_why(actor, reason)
    if status not in ALERT_STATUSES:
        raise Refused(400, f"status must be one of {ALERT_STATUSES}, not {status!r}")
    alert = incidents.get(conn, alert_id, lock=True)
    if alert is None:
        conn.rollback()
        raise Refused(404, f"no alert {alert_id}")
    if alert["status"] not in incidents.LIVE or alert["resolved_at"] is not None:
        conn.rollback()
        raise Refused(409, f"alert {alert_id} is {alert['status']}: only a live alert can be {status}")
    with conn.cursor() as cur:
        incidents.set_status(cur, alert_id, status, actor=actor, note=reason)
        audit_id = audit.record(cur, action=status,
                                subject=f"alert {alert_id}: {alert['check_name']} {alert['subject']}".strip(),
                                actor=actor, reason=reason, params={"alert_id": alert_id},
                                outcome={"was": alert["status"]})  # fmt: skip
    conn.commit()
    log.warning("%s marked alert %d (%s) %s: %s", actor, alert_id, alert["check_name"], status, reason)
    return {"alert_id": alert_id, "status": status, "was": alert["status"], "audit_id": audit_id}


def mute(conn: Connection, check: str, *, subject: str = "", minutes: int, actor: str, reason: str) -> dict[str, Any]:
    """Mute ``check`` (for ``subject``; empty: every subject) for ``minutes``."""
    actor, reason = _who_and_why(actor, reason)
    check, subject = (check or "").strip(), (subject or "").strip()
    if not check:
        raise Refused(400, "the check to mute is required")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MUTE_MINUTES:
        raise Refused(400, f"minutes must be a whole number from 1 to {MAX_MUTE_MINUTES}, not {minutes!r}")
    with conn.cursor() as cur:
        mute_id = incidents.add_mute(cur, check, subject, minutes, actor=actor, reason=reason)
        audit_id = audit.record(cur, action="mute", subject=f"{check} {subject}".strip(), actor=actor, reason=reason,
                                params={"check": check, "subject": subject, "minutes": minutes},
                                outcome={"mute_id": mute_id})  # fmt: skip
    conn.commit()
    log.warning("%s muted %s%s for %d min: %s", actor, check, f" ({subject})" if subject else "", minutes, reason)
    return {"mute_id": mute_id, "check": check, "subject": subject, "minutes": minutes, "audit_id": audit_id}


def unmute(conn: Connection, mute_id: int, *, actor: str, reason: str) -> dict[str, Any]:
    """End a mute in force now."""
    actor, reason = _who_and_why(actor, reason)
    with conn.cursor() as cur:
        if not incidents.end_mute(cur, mute_id, actor=actor):
            conn.rollback()
            raise Refused(404, f"no mute {mute_id} in force")
        audit_id = audit.record(cur, action="unmute", subject=f"mute {mute_id}", actor=actor, reason=reason,
                                params={"mute_id": mute_id}, outcome={})  # fmt: skip
    conn.commit()
    return {"mute_id": mute_id, "ended": True, "audit_id": audit_id}


def _redis() -> RedisClient:
    import redis

    return redis.Redis.from_url(queue.env_redis_url())


def main(argv: list[str] | None = None) -> int:
    """The CLI: MySQL from ``CRAWLOPS_MYSQL_URL``, Redis from ``CRAWLOPS_REDIS_URL`` (or the local
    one's ``CRAWLOPS_REDIS_DB``), as the simulator and the worker kit read them."""
    from crawlops.db import connect

    parser = argparse.ArgumentParser(prog="python -m crawlops.actions", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("redrive", help="re-drive a Dead task with a budget of its own")
    one.add_argument("task_id")
    one.add_argument("--budget", type=int, required=True, help=f"crawls of its unanswered elements, 1-{MAX_BUDGET}")
    two = commands.add_parser("release", help="release a crawl object's rows quarantined for a rule")
    two.add_argument("crawl_object")
    two.add_argument("rule")
    three = commands.add_parser("ack", help="acknowledge an alert: no reminders, no escalation")
    four = commands.add_parser("expect", help="mark an alert expected (maintenance...)")
    for command in (three, four):
        command.add_argument("alert_id", type=int)
    five = commands.add_parser("mute", help="mute a check (one subject, or all) for some minutes")
    five.add_argument("check")
    five.add_argument("--subject", default="", help="only this subject (default: every subject)")
    five.add_argument("--minutes", type=int, required=True)
    six = commands.add_parser("unmute", help="end a mute now")
    six.add_argument("mute_id", type=int)
    for command in (one, two, three, four, five, six):
        command.add_argument("--by", required=True, help="who acts (the audit row's actor)")
        command.add_argument("--why", required=True, help="why (the audit row's reason)")
    args = parser.parse_args(argv)
    conn = connect()
    who = {"actor": args.by, "reason": args.why}
    try:
        if args.command == "redrive":
            done = redrive(conn, _redis(), Settings.load(), args.task_id, budget=args.budget, **who)
        elif args.command == "release":
            done = release(conn, args.crawl_object, args.rule, **who)
        elif args.command in ("ack", "expect"):
            status = "acknowledged" if args.command == "ack" else "expected"
            done = set_alert_status(conn, args.alert_id, status, **who)
        elif args.command == "mute":
            done = mute(conn, args.check, subject=args.subject, minutes=args.minutes, **who)
        else:
            done = unmute(conn, args.mute_id, **who)
    except Refused as refused:
        print(f"refused ({refused.status}): {refused}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    print(json.dumps(done, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
