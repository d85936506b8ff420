"""The report as one DingTalk markdown message (no tables there: per-object lines)."""

from __future__ import annotations

import html
from typing import Any

from crawlops.report.model import ReportData
from crawlops.report.text import (
    bytes_text,
    duration_text,
    failed_hours,
    listed,
    num_text,
    one_line,
    outside_hours,
    pct_text,
    queue_text,
    safe_link,
)

MARKDOWN_LIMIT = 4000


def outcome_line(data: ReportData) -> str:
    """What the crawlers saw: answers, failures by reason, the marketplaces with the highest
    failure and empty shares (kit workers' counts)."""
    seen = data.outcomes
    if not seen.total:
        return "**What the crawlers saw**: no answers counted (kit workers count them)"
    reasons = ", ".join(f"{md(r, 30)} {num_text(n)}" for r, n in seen.failed_by_reason.items()) or "none"
    worst = sorted(seen.markets, key=lambda m: -(sum(m.failed.values()) + m.empty) / max(m.total, 1))[:4]
    shares = "; ".join(
        f"{md(m.marketplace, 8)} {md(m.crawl_object, 30)}: "
        + ", ".join(f"{md(k, 30)} {pct_text(v)}" for k, v in sorted(m.shares.items(), key=lambda kv: -kv[1])[:3] if v)
        for m in worst
        if any(m.shares.values())
    )
    return f"**What the crawlers saw**: {num_text(seen.total)} answers; failures by reason: {reasons}" + (
        f"; highest shares: {shares}" if shares else ""
    )


def md(text: Any, width: int = 80) -> str:
    """A text from the data, on one line, cut to ``width`` and escaped for DingTalk's Markdown."""
    return html.escape(one_line(text, width), quote=False)


def task_lines(data: ReportData) -> list[str]:
    """One line per crawl object: tasks by outcome, success, time to complete."""
    tasks = data.tasks
    rows = list(tasks.by_type.items()) or [("(none)", tasks.total)]
    return [
        f"- {md(task_type, 40)}: {t.dispatched} dispatched, {t.completed} completed, {t.failed} failed, "
        f"{t.retried} retried, {t.dead} dead, {t.open} open; success {pct_text(t.success_rate)} "
        f"({t.empty_elements} answered empty, {t.lost_elements} lost); "
        f"time to complete mean {duration_text(t.mean_seconds)}, p95 {duration_text(t.p95_seconds)}"
        for task_type, t in rows
    ]


def quality_line(data: ReportData) -> str:
    q = data.quality
    if not q.suites:
        return "**Data quality**: no validation runs this day"
    failed = [md(h, 60) for h in failed_hours(data)]
    line = f"**Data quality**: {q.passed} of {q.passed + q.repaired + q.failed} validated hours passed"
    if q.repaired:
        line += f", {q.repaired} repaired"
    if failed:
        line += f", {q.failed} failed ({listed(failed, 6)})"
    if q.quality_score_min is not None:
        line += f"; lowest quality score {pct_text(q.quality_score_min)}"
    return line


def volume_line(data: ReportData) -> str:
    vol, outside = data.volume, outside_hours(data)
    line = f"**Volume**: {num_text(vol.total_rows)} rows in {md(vol.table)}; "
    line += (
        f"{len(outside)} hours outside the expected band: {listed(outside, 4)}"
        if outside
        else "every hour with a band lies within it"
    )
    if vol.without_band:
        line += f" ({vol.without_band} hours without enough history for a band)"
    for name, other in data.volumes.items():
        line += f"; {md(name)}: {num_text(other.total_rows)} rows in {md(other.table)}"
        line += f", {other.outside_band} hours outside the band" if other.outside_band else ""
    return line


def system_lines(data: ReportData) -> list[str]:
    system, redis = data.system, data.system.redis
    if redis.reachable:
        memory = f"memory {bytes_text(redis.used_memory)}"
        memory += f" of {bytes_text(redis.maxmemory)}" if redis.maxmemory else " (no maxmemory)"
        redis_text = f"Redis reachable, {memory}" + (" **above the memory limit ratio**" if redis.memory_alarm else "")
    else:
        redis_text = f"**Redis unreachable** ({md(redis.error, 120)})"
    queues = "; ".join(md(line, 100) for line in queue_text(system.queues)) or "no open tasks"
    lines = ["", f"**System**: MySQL reachable · {redis_text} · queues: {queues}"]
    link = safe_link(data.run_url)
    return [*lines, "", f"[Open the run in Airflow]({link})"] if link else lines


def render_markdown(data: ReportData, *, limit: int = MARKDOWN_LIMIT) -> str:
    """Compact Markdown for a DingTalk robot message; text from the data is escaped and single-line."""
    alerts = data.alerts
    head = [f"### {md(data.title)}", f"{md(data.day)} 00:00 – 24:00 ({md(data.timezone)})", "", "**Tasks**", ""]
    head += task_lines(data)
    levels = " · ".join(f"{level} {count}" for level, count in alerts.by_level.items())
    body = ["", quality_line(data), "", volume_line(data), "", outcome_line(data), ""]
    if data.actions:
        done = "; ".join(f"{md(a.actor, 40)} {md(a.action, 20)} {md(a.subject, 80)}" for a in data.actions[:3])
        more = f" (+{len(data.actions) - 3} more)" if len(data.actions) > 3 else ""
        body += [f"**Operator actions** ({len(data.actions)}): {done}{more}", ""]
    body += [f"**Alerts** ({alerts.total}): {levels}", ""]
    alert_lines = [
        f"- {md(a.level, 10)} {md(a.check_name, 40)} {md(a.subject, 60)}: {md(a.title, 120)}" for a in alerts.top[:5]
    ]
    tail = system_lines(data)
    while True:
        text = "\n".join(head + body + alert_lines + tail)
        if len(text) <= limit or not alert_lines:
            break
        alert_lines.pop()  # drop the least important alert lines first
    return text if len(text) <= limit else text[: limit - 1] + "…"
