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


def outcome_line(data: ReportData, md: Any) -> str:
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


def render_markdown(data: ReportData, *, limit: int = MARKDOWN_LIMIT) -> str:
    """Compact Markdown for a DingTalk robot message; text from the data is escaped and single-line."""

    def md(text: Any, width: int = 80) -> str:
        return html.escape(one_line(text, width), quote=False)

    tasks, q, vol, alerts, system = data.tasks, data.quality, data.volume, data.alerts, data.system
    head = [
        f"### {md(data.title)}",
        f"{md(data.day)} 00:00 – 24:00 ({md(data.timezone)})",
        "",
        "**Tasks**",
        "",
    ]
    rows = list(tasks.by_type.items()) or [("(none)", tasks.total)]
    for task_type, t in rows:
        head.append(
            f"- {md(task_type, 40)}: {t.dispatched} dispatched, {t.completed} completed, {t.failed} failed, "
            f"{t.retried} retried, {t.dead} dead, {t.open} open; success {pct_text(t.success_rate)} "
            f"({t.empty_elements} answered empty, {t.lost_elements} lost); "
            f"time to complete mean {duration_text(t.mean_seconds)}, p95 {duration_text(t.p95_seconds)}"
        )
    failed = [md(h, 60) for h in failed_hours(data)]
    validated = q.passed + q.repaired + q.failed
    quality_line = f"**Data quality**: {q.passed} of {validated} validated hours passed"
    if q.repaired:
        quality_line += f", {q.repaired} repaired"
    if failed:
        quality_line += f", {q.failed} failed ({listed(failed, 6)})"
    if q.quality_score_min is not None:
        quality_line += f"; lowest quality score {pct_text(q.quality_score_min)}"
    if not q.suites:
        quality_line = "**Data quality**: no validation runs this day"
    outside = outside_hours(data)
    volume_line = f"**Volume**: {num_text(vol.total_rows)} rows in {md(vol.table)}; "
    volume_line += (
        f"{len(outside)} hours outside the expected band: {listed(outside, 4)}"
        if outside
        else "every hour with a band lies within it"
    )
    if vol.without_band:
        volume_line += f" ({vol.without_band} hours without enough history for a band)"
    levels = " · ".join(f"{level} {count}" for level, count in alerts.by_level.items())
    body = [
        "",
        quality_line,
        "",
        volume_line,
        "",
        outcome_line(data, md),
        "",
        f"**Alerts** ({alerts.total}): {levels}",
        "",
    ]
    alert_lines = [
        f"- {md(a.level, 10)} {md(a.check_name, 40)} {md(a.subject, 60)}: {md(a.title, 120)}" for a in alerts.top[:5]
    ]
    redis = system.redis
    if redis.reachable:
        memory = f"memory {bytes_text(redis.used_memory)}"
        memory += f" of {bytes_text(redis.maxmemory)}" if redis.maxmemory else " (no maxmemory)"
        redis_text = f"Redis reachable, {memory}" + (" **above the memory limit ratio**" if redis.memory_alarm else "")
    else:
        redis_text = f"**Redis unreachable** ({md(redis.error, 120)})"
    queues = "; ".join(md(line, 100) for line in queue_text(system.queues)) or "no open tasks"
    tail = ["", f"**System**: MySQL reachable · {redis_text} · queues: {queues}"]
    link = safe_link(data.run_url)
    if link:
        tail += ["", f"[Open the run in Airflow]({link})"]

    while True:
        text = "\n".join(head + body + alert_lines + tail)
        if len(text) <= limit or not alert_lines:
            break
        alert_lines.pop()  # drop the least important alert lines first
    return text if len(text) <= limit else text[: limit - 1] + "…"
