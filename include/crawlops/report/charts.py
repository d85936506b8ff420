"""The report's charts as inline SVG (no script, no external resource)."""

from __future__ import annotations

import html
import math
from typing import Any

from crawlops.report.model import ReportData
from crawlops.report.text import num_text, one_line, pct_text

LEVEL_COLORS = {"CRITICAL": "#7f1d1d", "ERROR": "#dc2626", "WARNING": "#f59e0b", "INFO": "#0ea5e9"}
OK, BAD, NONE, BAR, BAND = "#16a34a", "#dc2626", "#e5e7eb", "#2563eb", "#bfdbfe"

REPAIRED = "#f59e0b"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _nice_max(value: float) -> tuple[float, float]:
    """A round axis maximum at or above ``value`` and its tick step (4-5 ticks)."""
    if value <= 0:
        return 4.0, 1.0
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(step, 1.0)  # counts: whole-number ticks
    return step * math.ceil(value / step), step


def legend(items: list[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i style="background:{color}"></i>{_e(text)}</span>' for color, text in items)
        + "</div>"
    )


def volume_svg(data: ReportData) -> str:
    entries, labels = data.volume.hours, data.hours
    width, height, left, right, top, bottom = 1040, 280, 60, 12, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([e.rows or 0 for e in entries] + [e.band_high or 0 for e in entries] + [1])
    y_max, step = _nice_max(peak * 1.05)
    slot = plot_w / max(len(entries), 1)

    def y(value: float) -> float:
        return top + plot_h - plot_h * min(value, y_max) / y_max

    parts = [
        f'<svg class="chart" id="chart-volume" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Rows per hour with the expected band">'
    ]
    tick = 0.0
    while tick <= y_max + 1e-9:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{num_text(tick)}</text>'
        )
        tick += step
    for i, (entry, label) in enumerate(zip(entries, labels, strict=True)):
        x = left + i * slot
        if entry.band_low is not None and entry.band_high is not None:
            y_hi, y_lo = y(entry.band_high), y(entry.band_low)
            parts.append(
                f'<rect class="band" x="{x + 1:.1f}" y="{y_hi:.1f}" width="{slot - 2:.1f}" '
                f'height="{max(y_lo - y_hi, 1):.1f}" fill="{BAND}" opacity="0.7"/>'
            )
            if entry.mean is not None:
                parts.append(
                    f'<line x1="{x + 1:.1f}" x2="{x + slot - 1:.1f}" y1="{y(entry.mean):.1f}" '
                    f'y2="{y(entry.mean):.1f}" stroke="#60a5fa" stroke-dasharray="3 2"/>'
                )
        bar_w = slot * 0.56
        bar_y = y(entry.rows or 0)
        color = BAD if entry.outside else BAR
        band = (
            f"expected {num_text(entry.band_low)}–{num_text(entry.band_high)}"
            if entry.band_low is not None
            else f"no band ({entry.history_points} past hours)"
        )
        parts.append(
            f'<rect class="bar" x="{x + (slot - bar_w) / 2:.1f}" y="{bar_y:.1f}" width="{bar_w:.1f}" '
            f'height="{top + plot_h - bar_y:.1f}" fill="{color}"><title>{_e(label)}: {num_text(entry.rows)} rows, '
            f"{_e(band)}</title></rect>"
        )
        if len(entries) <= 26 or i % 2 == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle">{_e(label[:2])}</text>'
            )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#9ca3af"/>'
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 2}" text-anchor="middle">hour ({_e(data.timezone)})</text>'
        "</svg>"
    )
    return "".join(parts)


def quality_svg(data: ReportData) -> str:
    suites, labels = data.quality.suites, data.hours
    width, left, right, top, row_h = 1040, 200, 12, 6, 30
    names = list(suites) or ["(no validation runs)"]
    height = top + row_h * len(names) + 24
    slot = (width - left - right) / max(len(labels), 1)
    parts = [
        f'<svg class="chart" id="chart-quality" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Suite verdict per hour">'
    ]
    for row, name in enumerate(names):
        y = top + row * row_h
        parts.append(
            f'<text x="{left - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">{_e(one_line(name, 30))}</text>'
        )
        cells = suites[name].hours if name in suites else [None] * len(labels)
        for i, cell in enumerate(cells):
            if cell is None:
                color, tip = NONE, "not validated"
            elif cell.verdict == "repaired":
                color = REPAIRED
                tip = f"repaired: failed first, passed after repair; {num_text(cell.row_count)} rows"
            elif cell.verdict == "passed":
                color = OK
                tip = f"passed: {cell.evaluated} expectations, {num_text(cell.row_count)} rows"
            else:
                color = BAD
                tip = f"failed {cell.failed} of {cell.evaluated} expectations, {num_text(cell.row_count)} rows"
            if cell is not None and cell.quality_score is not None:
                tip += f", quality score {pct_text(cell.quality_score)}"
            parts.append(
                f'<rect class="cell" x="{left + i * slot + 1:.1f}" y="{y + 2}" width="{slot - 2:.1f}" '
                f'height="{row_h - 4}" rx="3" fill="{color}">'
                f"<title>{_e(name)} {_e(labels[i])}: {_e(tip)}</title></rect>"
            )
            if cell is not None and cell.verdict == "failed":
                parts.append(
                    f'<text x="{left + i * slot + slot / 2:.1f}" y="{y + row_h / 2 + 4:.1f}" text-anchor="middle" '
                    f'style="fill:#fff;font-weight:600">{cell.failed}</text>'
                )
    for i, label in enumerate(labels):
        if len(labels) <= 26 or i % 2 == 0:
            parts.append(
                f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                f"{_e(label[:2])}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def alerts_svg(data: ReportData) -> str:
    by_level = data.alerts.by_level
    levels = list(by_level)
    width, height, left, right, top, bottom = 340, 200, 36, 8, 18, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max, step = _nice_max(max([*by_level.values(), 1]) * 1.1)
    slot = plot_w / max(len(levels), 1)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / y_max

    parts = [
        f'<svg class="chart" id="chart-alerts" viewBox="0 0 {width} {height}" role="img" aria-label="Alerts by level">'
    ]
    tick = 0.0
    while tick <= y_max + 1e-9:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{num_text(tick)}</text>'
        )
        tick += step
    for i, level in enumerate(levels):
        count = by_level[level]
        bar_w = slot * 0.5
        x = left + i * slot + (slot - bar_w) / 2
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y(count):.1f}" width="{bar_w:.1f}" height="{y(0) - y(count):.1f}" '
            f'fill="{LEVEL_COLORS.get(level, "#6b7280")}"><title>{_e(level)}: {count}</title></rect>'
            f'<text x="{x + bar_w / 2:.1f}" y="{y(count) - 4:.1f}" text-anchor="middle" '
            f'style="font-weight:600;fill:#111827">{count}</text>'
            f'<text x="{x + bar_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{_e(level)}</text>'
        )
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(0)}" y2="{y(0)}" stroke="#9ca3af"/></svg>')
    return "".join(parts)
