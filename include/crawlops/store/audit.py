"""The operator actions' audit trail: ``amazon_operator_action``. Only this module holds its SQL."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from crawlops.db import Connection


def record(
    cur: Any, *, action: str, subject: str, actor: str, reason: str, params: dict[str, Any], outcome: dict[str, Any]
) -> int:
    """One action's row, on the caller's cursor (in its transaction); returns its id."""
    cur.execute(
        "INSERT INTO amazon_operator_action (action, subject, actor, reason, params, outcome, acted_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, UTC_TIMESTAMP())",
        (action, subject[:255], actor[:128], reason[:1000], json.dumps(params, sort_keys=True),
         json.dumps(outcome, sort_keys=True, default=str)),
    )  # fmt: skip
    return int(cur.lastrowid)


def actions_between(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Actions taken in [start, end) (naive UTC), newest first."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, action, subject, actor, reason, params, outcome, acted_at FROM amazon_operator_action "
            "WHERE acted_at >= %s AND acted_at < %s ORDER BY acted_at DESC, id DESC",
            (start, end),
        )
        rows = cur.fetchall()
    return [
        {"id": int(i), "action": a, "subject": s, "actor": who, "reason": why,
         "params": json.loads(p or "{}"), "outcome": json.loads(o or "{}"), "acted_at": at.isoformat()}
        for i, a, s, who, why, p, o, at in rows
    ]  # fmt: skip
