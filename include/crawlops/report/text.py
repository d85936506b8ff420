"""How the report writes its numbers, the same in Markdown and HTML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crawlops.report.model import QueueDepth, ReportData


def num_text(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def pct_text(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def bytes_text(value: int | None) -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def one_line(text: Any, limit: int) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def safe_link(url: str | None) -> str | None:
    """Only plain web links become links; anything else (``javascript:``...) is shown as text."""
    if url and url.lower().startswith(("http://", "https://")) and not any(c.isspace() for c in url):
        return url
    return None


def listed(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def failed_hours(data: ReportData) -> list[str]:
    return [
        f"{label} {data.hours[i]}"
        for label, suite in data.quality.suites.items()
        for i, cell in enumerate(suite.hours)
        if cell and cell.verdict == "failed"
    ]


def outside_hours(data: ReportData) -> list[str]:
    return [
        f"{data.hours[i]} {num_text(e.rows)} rows (expected {num_text(e.band_low)}–{num_text(e.band_high)})"
        for i, e in enumerate(data.volume.hours)
        if e.outside
    ]


def queue_text(queues: Mapping[str, QueueDepth]) -> list[str]:
    lines = []
    for task_type, q in queues.items():
        queued = "queued unknown" if q.queued is None else f"{num_text(q.queued)} queued"
        failing = "" if q.failed_waiting is None else f", {num_text(q.failed_waiting)} failed waiting"
        lines.append(f"{task_type}: {num_text(q.open_tasks)} open tasks, {queued}{failing}")
    return lines
