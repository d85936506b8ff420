"""How the report writes its numbers, the same in Markdown and HTML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crawlops.report.model import QueueDepth, ReportData


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _bytes(value: int | None) -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _one_line(text: Any, limit: int) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _safe_link(url: str | None) -> str | None:
    """Only plain web links become links; anything else (``javascript:``...) is shown as text."""
    if url and url.lower().startswith(("http://", "https://")) and not any(c.isspace() for c in url):
        return url
    return None


def _listed(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _failed_hours(data: ReportData) -> list[str]:
    return [
        f"{label} {data.hours[i]}"
        for label, suite in data.quality.suites.items()
        for i, cell in enumerate(suite.hours)
        if cell and cell.verdict == "failed"
    ]


def _outside_hours(data: ReportData) -> list[str]:
    return [
        f"{data.hours[i]} {_num(e.rows)} rows (expected {_num(e.band_low)}–{_num(e.band_high)})"
        for i, e in enumerate(data.volume.hours)
        if e.outside
    ]


def _queue_text(queues: Mapping[str, QueueDepth]) -> list[str]:
    lines = []
    for task_type, q in queues.items():
        queued = "queued unknown" if q.queued is None else f"{_num(q.queued)} queued"
        failing = "" if q.failed_waiting is None else f", {_num(q.failed_waiting)} failed waiting"
        lines.append(f"{task_type}: {_num(q.open_tasks)} open tasks, {queued}{failing}")
    return lines
