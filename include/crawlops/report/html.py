"""The report as one self-contained HTML page, from the Jinja2 template
``include/templates/daily_report.html.j2`` (autoescape on; charts are inline SVG)."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from zoneinfo import ZoneInfo

from crawlops.report import charts
from crawlops.report.model import ReportData
from crawlops.report.text import bytes_text, duration_text, num_text, pct_text, queue_text, safe_link
from crawlops.settings import include_dir


@functools.cache
def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(include_dir() / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(num=num_text, pct=pct_text, duration=duration_text, bytes=bytes_text)
    return env.get_template("daily_report.html.j2")


def render_html(data: ReportData) -> str:
    """One self-contained page: inline CSS and SVG, no script, no external resource."""
    from markupsafe import Markup

    tasks, q, vol, alerts, system = data.tasks, data.quality, data.volume, data.alerts, data.system
    total = tasks.total
    severe = alerts.by_level.get("CRITICAL", 0) + alerts.by_level.get("ERROR", 0)
    redis_ok = system.redis.reachable
    cards = [
        ("tasks dispatched", num_text(total.dispatched), ""),
        ("success rate", pct_text(total.success_rate), ""),
        ("dead tasks", num_text(total.dead), "bad" if total.dead else ""),
        ("rows", num_text(vol.total_rows), ""),
        ("hours outside band", num_text(vol.outside_band), "bad" if vol.outside_band else ""),
        ("quality hours failed", num_text(q.failed), "bad" if q.failed else ""),
        ("critical + error alerts", num_text(severe), "bad" if severe else ""),
        ("Redis", "reachable" if redis_ok else "unreachable", "word ok" if redis_ok else "word bad"),
    ]
    start, end = dt.datetime.fromisoformat(data.window.start), dt.datetime.fromisoformat(data.window.end)
    utc_span = "" if data.timezone == "UTC" else f" (UTC {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M})"
    task_rows = [(name, t, False) for name, t in tasks.by_type.items()]
    if len(task_rows) != 1:
        task_rows.append(("all", total, True))
    zone = ZoneInfo(data.timezone)
    alert_rows = [
        (
            a,
            charts.LEVEL_COLORS.get(a.level, "#6b7280"),
            f"{dt.datetime.fromisoformat(a.window_start).astimezone(zone):%H:%M}",
        )
        for a in alerts.top
    ]
    drawn = {
        "volume": charts.volume_svg(data),
        "quality": charts.quality_svg(data),
        "alerts": charts.alerts_svg(data),
        "volume_legend": charts.legend(
            [
                (charts.BAR, "rows in the hour"),
                (charts.BAD, "outside the expected band"),
                (charts.BAND, f"expected band (mean ± {vol.anomaly_z:g}σ)"),
            ]
        ),
        "quality_legend": charts.legend(
            [
                (charts.OK, "passed"),
                (charts.REPAIRED, "repaired (failed, then passed after a repair)"),
                (charts.BAD, "failed (number of failed expectations)"),
                (charts.NONE, "not validated"),
            ]
        ),
    }
    return str(
        _template().render(
            data=data,
            cards=cards,
            utc_span=utc_span,
            run_link=safe_link(data.run_url),
            task_rows=task_rows,
            vol=vol,
            q=q,
            alerts=alerts,
            alert_rows=alert_rows,
            system=system,
            redis=system.redis,
            queue_lines=queue_text(system.queues),
            seen=data.outcomes,
            reasons=list(data.outcomes.failed_by_reason),
            # drawn by crawlops.report.charts, which escapes every text it puts in them
            charts={name: Markup(svg) for name, svg in drawn.items()},  # noqa: S704
        )
    )
