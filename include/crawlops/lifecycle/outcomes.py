"""What the lifecycle steps saw and did: the outcome records and the findings they make."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any

from crawlops import store
from crawlops.findings import Finding, Level, dead_task_findings, example_lines, reason_summary
from crawlops.model import TaskStatus

log = logging.getLogger(__name__)


EXAMPLES = 3  # example elements a finding names


@dataclasses.dataclass(frozen=True)
class DeadTask:
    task_id: str
    root_task_id: str
    retry_count: int
    failed_elements: int
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)  # reason class -> elements
    examples: list[dict[str, str]] = dataclasses.field(default_factory=list)  # element, reason, detail


@dataclasses.dataclass(frozen=True)
class Rejected:
    """Members a worker put in a ``_fail`` or ``_empty`` set that the task's manifest does not hold."""

    key: str
    count: int
    examples: list[str]


@dataclasses.dataclass(frozen=True)
class Settled:
    """How a finished (or timed-out) task's elements ended."""

    task_id: str
    task_type: str
    status: str
    elements: int
    answered: int
    empty: int
    failed: int
    lost: int
    withdrawn: int
    retry_task: str | None
    reason: str
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)  # unanswered elements by reason class
    examples: list[dict[str, str]] = dataclasses.field(default_factory=list)  # element, reason, detail


@dataclasses.dataclass(frozen=True)
class Handed:
    """Where one task's elements that need another crawl went: ``joined`` the open task of
    its retry chain, ``created`` a retry task of the chain's last task, or ``budget_spent``
    (the chain has had ``retry_limit`` retries)."""

    task_id: str
    retry_task: str | None
    count: int
    how: str


@dataclasses.dataclass
class OpenTasks:
    """Open tasks as the sync left them, with their queue and fail-set sizes."""

    tasks: list[store.OpenTask]
    queued: dict[str, int]
    failed: dict[str, int]
    moved: dict[str, int]
    lost: list[str]
    emptied: dict[str, int] = dataclasses.field(default_factory=dict)
    rejected: list[Rejected] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Tracking:
    """What one pass of sync, settle and reconcile saw and did (``dry_run``: would do)."""

    dry_run: bool = False
    open: OpenTasks | None = None
    settled: list[Settled] = dataclasses.field(default_factory=list)
    waiting: dict[str, int] = dataclasses.field(default_factory=dict)
    retries: dict[str, int] = dataclasses.field(default_factory=dict)
    dead: list[DeadTask] = dataclasses.field(default_factory=list)
    repushed: dict[str, int] = dataclasses.field(default_factory=dict)
    lost_queues: list[str] = dataclasses.field(default_factory=list)
    rejected: list[Rejected] = dataclasses.field(default_factory=list)
    redis: dict[str, Any] = dataclasses.field(default_factory=dict)

    def merge(self, other: Tracking) -> Tracking:
        self.open = other.open or self.open
        self.settled += other.settled
        self.waiting.update(other.waiting)
        self.retries.update(other.retries)
        self.dead += other.dead
        self.repushed.update(other.repushed)
        self.lost_queues += [t for t in other.lost_queues if t not in self.lost_queues]
        self.rejected += other.rejected
        self.redis = other.redis or self.redis
        return self

    def findings(self, source: str) -> list[Finding]:
        """WARNING for lost elements, lost queues and rejected members; CRITICAL for Dead tasks."""
        verb = "would " if self.dry_run else ""
        found = []
        for s in self.settled:
            if s.lost:
                then = (
                    f"{verb}create retry task {s.retry_task}"
                    if s.retry_task
                    else "retry budget spent: task is Dead"
                    if s.status == TaskStatus.DEAD.value
                    else "no action"
                )
                found.append(
                    Finding(
                        Level.WARNING,
                        source,
                        "missing_data",
                        f"{s.task_id}: {s.lost} elements taken and never answered" + reason_summary(s.reasons),
                        subject=s.task_id,
                        details=dataclasses.asdict(s),
                        action=f"{then} with its {s.lost + s.failed + s.withdrawn} unanswered elements, e.g. "
                        + example_lines(s.examples),
                    )
                )
        for task_id in self.lost_queues:
            count = self.repushed.get(task_id, 0)
            found.append(
                Finding(
                    Level.WARNING,
                    source,
                    "queue_lost",
                    f"{task_id}: its Redis queue was lost (Redis restarted or flushed)",
                    subject=task_id,
                    details={"repushed": count, "redis": self.redis},
                    action=f"{verb}re-push {count} unanswered elements from the MySQL manifest",
                )
            )
        for rejected in self.rejected:
            found.append(
                Finding(
                    Level.WARNING,
                    source,
                    "bad_member",
                    f"{rejected.key}: {rejected.count} members that are not elements of the task",
                    subject=rejected.key,
                    details={"count": rejected.count, "examples": rejected.examples},
                    action="removed from the set; never dispatched. Check the worker that wrote them",
                )
            )
        return found + dead_task_findings([dataclasses.asdict(d) for d in self.dead], source=source)

    def settle_summary(self) -> dict[str, Any]:
        """What a settle pass did (``dry_run``: would do): retries made, Dead tasks, tasks waiting."""
        return {
            "dry_run": self.dry_run,
            "settled": len(self.settled),
            "retries": self.retries,
            "dead": [dataclasses.asdict(d) for d in self.dead],
            "waiting": self.waiting,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "moved": self.open.moved if self.open else {},
            "emptied": self.open.emptied if self.open else {},
            "settled": [dataclasses.asdict(s) for s in self.settled],
            "waiting": self.waiting,
            "retries": self.retries,
            "dead": [dataclasses.asdict(d) for d in self.dead],
            "repushed": self.repushed,
            "lost_queues": self.lost_queues,
            "rejected": [dataclasses.asdict(r) for r in self.rejected],
            "redis": self.redis,
        }


@dataclasses.dataclass
class Recrawl:
    """What one re-crawl request did (``dry_run``: would do), per task of the elements."""

    dry_run: bool = False
    handed: list[Handed] = dataclasses.field(default_factory=list)
    # elements whose chain re-crawled them already (digest -> when it was asked): not sent again
    earlier: dict[bytes, dt.datetime] = dataclasses.field(default_factory=dict)
    unknown_tasks: list[str] = dataclasses.field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(h.count for h in self.handed if h.retry_task)

    @property
    def budget_spent(self) -> int:
        return sum(h.count for h in self.handed if not h.retry_task)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "sent": self.sent,
            "retry_tasks": sorted({h.retry_task for h in self.handed if h.retry_task}),
            "handed": [dataclasses.asdict(h) for h in self.handed],
            "budget_spent": self.budget_spent,
            "sent_earlier": len(self.earlier),
            "unknown_tasks": self.unknown_tasks,
        }
