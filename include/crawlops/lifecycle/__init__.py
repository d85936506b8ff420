"""Task lifecycle after dispatch: status sync, settling finished tasks, lost-set recovery.

Every dispatched element ends in one of three ways: answered (result rows, or reported
empty through ``<task_id>_empty``), handed to a retry task, or in a ``Dead`` task. The
steps here make that true:

1. ``sync_open_tasks`` moves open tasks along from what their Redis sets show, ingests
   empty answers into the manifest and keeps the open-task index current.
2. ``settle_finished`` judges each finished task once: its unanswered elements (failed,
   or taken by a worker that never answered) become its retry task, or the task is Dead
   when its retry budget is spent. A task with elements still unaccounted for (in flight
   with a worker) waits until ``completeness_grace_seconds`` after it finished.
3. ``reconcile_lost`` re-publishes open tasks whose set was lost with a Redis restart.

These steps observe the live state of Redis, so unlike planning they are not bound to a
window: any run, scheduled or backfill, brings every task up to date, and running them
twice in a row changes nothing the second time. ``track`` runs all three under one lock.
"""

from __future__ import annotations

from crawlops.lifecycle.common import decision_time
from crawlops.lifecycle.outcomes import DeadTask, Handed, OpenTasks, Recrawl, Rejected, Settled, Tracking
from crawlops.lifecycle.reconcile import reconcile_lost, reconcile_summary, track
from crawlops.lifecycle.recrawl import recrawl
from crawlops.lifecycle.settle import hand_to_retry, retry_failures, settle_finished
from crawlops.lifecycle.sync import sync_open_tasks, sync_statuses

__all__ = [
    "DeadTask",
    "Handed",
    "OpenTasks",
    "Recrawl",
    "Rejected",
    "Settled",
    "Tracking",
    "decision_time",
    "hand_to_retry",
    "reconcile_lost",
    "reconcile_summary",
    "recrawl",
    "retry_failures",
    "settle_finished",
    "sync_open_tasks",
    "sync_statuses",
    "track",
]
