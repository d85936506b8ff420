"""Findings: what a check found and what was done about it, as plain values.

A ``Finding`` names its level, the DAG (``source``, from ``crawlops.names``), the check, the
subject and the window-free facts; the builders here make the findings several checks share.
Nothing here reads or writes anything: ``crawlops.alerts`` stores findings, ``crawlops.delivery``
sends them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return list(Level).index(self)


@dataclasses.dataclass(frozen=True)
class Finding:
    """What a check found, and what was done about it."""

    level: Level
    source: str
    check: str
    title: str
    subject: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    action: str = ""

    @property
    def fingerprint(self) -> str:
        """Identity of "the same alert": source, check and subject, not the wording."""
        key = "\x1f".join((self.source, self.check, self.subject))
        return hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(
            Level(data["level"]), data["source"], data["check"], data["title"],
            data.get("subject", ""), data.get("details") or {}, data.get("action", ""),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "source": self.source,
            "check": self.check,
            "subject": self.subject,
            "title": self.title,
            "details": self.details,
            "action": self.action,
        }


def reason_summary(reasons: dict[str, int]) -> str:
    """`` (blocked 3, http_503 2)``: failures by reason class, most first; empty without any."""
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return " (" + ", ".join(f"{reason} {n}" for reason, n in ranked) + ")" if ranked else ""


def example_lines(examples: Iterable[dict[str, str]]) -> str:
    """Example elements with their reasons, for an alert's text: ``{...} blocked (robot check); ...``."""
    return "; ".join(
        f"{e['element']} {e['reason']}" + (f" ({e['detail']})" if e.get("detail") else "") for e in examples
    )


def dead_task_findings(dead: Iterable[dict[str, Any]], *, source: str) -> list[Finding]:
    """CRITICAL findings naming each task whose retry budget is spent, why its elements failed
    and a few of them."""
    return [
        Finding(
            Level.CRITICAL,
            source,
            "task_dead",
            f"{d['task_id']} is Dead: {d['failed_elements']} elements still failing after {d['retry_count']} retries"
            + reason_summary(d.get("reasons") or {}),
            subject=d["task_id"],
            details=dict(d),
            action=f"no more retries; failed elements kept in {d['task_id']}_fail for inspection"
            + (f"; e.g. {example_lines(d['examples'])}" if d.get("examples") else ""),
        )
        for d in dead
    ]


def skipped_rows_finding(skipped: dict[str, int], *, source: str, examples: list[dict[str, Any]]) -> Finding | None:
    """One WARNING counting the config rows a dispatch run skipped, per reason."""
    if not skipped:
        return None
    total = sum(skipped.values())
    return Finding(
        Level.WARNING,
        source,
        "config_rows_skipped",
        f"{total} config rows skipped: " + ", ".join(f"{reason} {n}" for reason, n in skipped.items()),
        subject="amazon_crawl_config",
        details={"by_reason": skipped, "examples": examples[:10]},
        action="fix or disable these rows in amazon_crawl_config; the other rows were dispatched",
    )
