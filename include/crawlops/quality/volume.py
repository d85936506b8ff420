"""Volume against its own history: the hour's row count, z-scored per hour of day or of week."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import statistics
from collections.abc import Sequence
from typing import Any

from crawlops.db import Connection
from crawlops.findings import Finding, Level
from crawlops.model import Window
from crawlops.names import SUPERVISION_DAG as SOURCE
from crawlops.settings import QualitySettings, Settings
from crawlops.store import results, verdicts

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VolumeVerdict:
    observed: int
    points: int
    mean: float | None
    std: float | None
    z: float | None
    anomalous: bool | None  # None: too little history to judge
    direction: str | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def history_hours(hour: dt.datetime, quality: QualitySettings) -> list[dt.datetime]:
    """The same hour of the day (or of the week) over the history period, newest first."""
    step = dt.timedelta(days=1 if quality.anomaly_seasonality == "hour_of_day" else 7)
    count = quality.anomaly_history_days // step.days
    return [hour - step * k for k in range(1, count + 1)]


def judge_volume(observed: int, history: Sequence[int], quality: QualitySettings) -> VolumeVerdict:
    """z-score of ``observed`` against ``history``.

    Counts are noisy like a Poisson process, so the spread is never taken below sqrt(mean):
    a perfectly flat history does not make a tiny wobble look like an anomaly.
    """
    if len(history) < quality.anomaly_min_points:
        return VolumeVerdict(observed, len(history), None, None, None, None, None)
    mean = statistics.fmean(history)
    std = max(statistics.pstdev(history), math.sqrt(mean), 1.0)
    z = (observed - mean) / std
    drop = z <= -quality.anomaly_z and quality.anomaly_direction in ("drop", "both")
    spike = z >= quality.anomaly_z and quality.anomaly_direction in ("spike", "both")
    return VolumeVerdict(
        observed, len(history), round(mean, 2), round(std, 2), round(z, 2), drop or spike,
        "drop" if drop else "spike" if spike else None,
    )  # fmt: skip


def volume_band(verdict: VolumeVerdict, quality: QualitySettings) -> tuple[float | None, float | None]:
    """The expected range mean ± anomaly_z * std (floored at 0), or (None, None) without a verdict."""
    if verdict.mean is None or verdict.std is None:
        return None, None
    return round(max(verdict.mean - quality.anomaly_z * verdict.std, 0.0), 2), round(
        verdict.mean + quality.anomaly_z * verdict.std, 2
    )


def record_volume(
    conn: Connection,
    table: str,
    window: Window,
    verdict: VolumeVerdict,
    quality: QualitySettings,
    *,
    dag_run_id: str | None,
) -> None:
    """Upsert the hour's row of the ``amazon_volume_hourly`` rollup (re-running the hour rewrites it)."""
    low, high = volume_band(verdict, quality)
    verdicts.upsert_volume(
        conn,
        (
            table,
            window.naive()[0],
            verdict.observed,
            verdict.points,
            verdict.mean,
            verdict.std,
            low,
            high,
            verdict.anomalous,
            verdict.direction,
            dag_run_id,
        ),
    )


def hourly_counts(conn: Connection, table: str, hours: Sequence[dt.datetime]) -> dict[dt.datetime, int]:
    """Rows per ``create_hour`` for the given UTC hours (naive), through the create_hour index."""
    return results.hourly_counts(conn, table, hours)


def check_volume(
    conn: Connection, table: str, window: Window, settings: Settings
) -> tuple[VolumeVerdict, list[Finding]]:
    """The window's row count against the same hour's history (hours with no rows are left out)."""
    hour = window.naive()[0]
    past = history_hours(hour, settings.quality)
    counts = hourly_counts(conn, table, [hour, *past])
    history = [counts[h] for h in past if counts.get(h)]
    verdict = judge_volume(counts.get(hour, 0), history, settings.quality)
    findings = []
    if verdict.anomalous:
        findings.append(
            Finding(
                Level.ERROR if verdict.direction == "drop" else Level.WARNING,
                SOURCE,
                "volume_anomaly",
                f"{table}: {verdict.observed} rows in {hour:%Y-%m-%d %H}:00, a {verdict.direction} "
                f"(usual {verdict.mean:.0f} ± {verdict.std:.0f}, z={verdict.z})",
                subject=table,
                details=verdict.to_json(),
            )
        )
    return verdict, findings


def volume_check(
    conn: Connection, table: str, window: Window, settings: Settings, *, dag_run_id: str | None
) -> tuple[dict[str, Any], list[Finding]]:
    """``check_volume``, with the hour's count and band kept in the ``amazon_volume_hourly``
    rollup the Crawl Ops page draws."""
    verdict, findings = check_volume(conn, table, window, settings)
    record_volume(conn, table, window, verdict, settings.quality, dag_run_id=dag_run_id)
    return verdict.to_json(), findings
