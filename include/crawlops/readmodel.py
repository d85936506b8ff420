"""The one read model behind the Crawl Ops page and the daily report.

Both show the same things about a run of whole UTC hours: each suite's verdict per hour,
rows per hour against the band the volume check judges by. They are computed here, once,
as typed records, and each reader only formats them (``dashboard`` as JSON for the page,
``report`` as Markdown and HTML), so the page and the report cannot disagree about an hour.

One vocabulary: a suite's hour is ``passed``, ``repaired`` (a run failed, a later one passed
after a repair) or ``failed``, the words ``amazon_validation_run.verdict`` stores; a re-run
never erases a failure. A volume hour's ``source`` says where its count comes from:
``rollup`` (what the volume check saw at the hour's close, with the band it judged by),
``live`` (counted now; its band computed as the check would, from the same history) or
``missing`` (neither: older than the reader counts live, and never judged).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence

from crawlops import quality
from crawlops.db import Connection
from crawlops.settings import QualitySettings
from crawlops.store import verdicts

HOUR = dt.timedelta(hours=1)
VERDICT_RANK = {"passed": 0, "repaired": 1, "failed": 2}


@dataclasses.dataclass(slots=True)
class QualityCell:
    """A suite's hour: the worst verdict of its runs, their counts added, the lowest score,
    the expectations that failed in any of them, and the newest run."""

    success: bool = True
    verdict: str = "passed"
    evaluated: int = 0
    failed: int = 0
    row_count: int = 0
    quality_score: float | None = None
    failures: list[str] = dataclasses.field(default_factory=list)
    run_id: str | None = None

    def merge(self, run: QualityCell) -> None:
        """Fold another run of the same hour into this cell."""
        self.success = self.success and run.success
        self.verdict = max(self.verdict, run.verdict, key=VERDICT_RANK.__getitem__)
        self.evaluated += run.evaluated
        self.failed += run.failed
        self.row_count += run.row_count
        if run.quality_score is not None:
            scores = [s for s in (self.quality_score, run.quality_score) if s is not None]
            self.quality_score = min(scores)
        self.failures += [n for n in run.failures if n not in self.failures]
        self.run_id = run.run_id or self.run_id


@dataclasses.dataclass(slots=True)
class SuiteQuality:
    suite: str
    table: str
    hours: list[QualityCell | None] = dataclasses.field(default_factory=list)
    passed: int = 0
    repaired: int = 0
    failed: int = 0
    not_validated: int = 0
    quality_score_min: float | None = None
    quality_score_mean: float | None = None

    @property
    def label(self) -> str:
        return self.suite if self.suite == self.table else f"{self.suite} ({self.table})"

    def tally(self) -> None:
        cells = [c for c in self.hours if c is not None]
        self.passed = sum(1 for c in cells if c.verdict == "passed")
        self.repaired = sum(1 for c in cells if c.verdict == "repaired")
        self.failed = sum(1 for c in cells if c.verdict == "failed")
        self.not_validated = len(self.hours) - len(cells)
        scores = [c.quality_score for c in cells if c.quality_score is not None]
        self.quality_score_min = min(scores) if scores else None
        self.quality_score_mean = round(sum(scores) / len(scores), 6) if scores else None


@dataclasses.dataclass(slots=True)
class Quality:
    suites: dict[str, SuiteQuality] = dataclasses.field(default_factory=dict)
    passed: int = 0
    repaired: int = 0
    failed: int = 0
    not_validated: int = 0
    quality_score_min: float | None = None


@dataclasses.dataclass(slots=True)
class VolumeHour:
    """``outside`` and ``anomalous`` stay None for an hour without a band or still open."""

    hour: str
    rows: int | None
    history_points: int = 0
    mean: float | None = None
    band_low: float | None = None
    band_high: float | None = None
    outside: bool | None = None
    anomalous: bool | None = None
    source: str = "live"
    direction: str | None = None


@dataclasses.dataclass(slots=True)
class Volume:
    table: str
    anomaly_z: float
    total_rows: int = 0
    outside_band: int = 0
    without_band: int = 0
    missing_hours: int = 0
    anomalous_hours: int = 0
    hours: list[VolumeHour] = dataclasses.field(default_factory=list)


def _hour_index(start: dt.datetime, window_start: dt.datetime) -> int:
    return int((window_start.replace(tzinfo=dt.UTC) - start) // HOUR)


def suite_quality(conn: Connection, start: dt.datetime, hours: int) -> Quality:
    """Suite verdicts for ``hours`` whole hours from ``start`` (UTC), from the validation runs
    whose window starts in them. A run shorter than an hour counts in the hour it starts in;
    several runs of one hour fold into one cell (``QualityCell.merge``); ``quality_score`` is
    the share of the hour's rows passing every validity and required-field rule."""
    end = start + HOUR * hours
    result = Quality()
    rows = verdicts.validation_rows(conn, start.replace(tzinfo=None), end.replace(tzinfo=None))
    for suite_name, table, window_start, verdict, evaluated, failed, row_count, outcomes, run_id, score, ok in rows:
        run = QualityCell(
            success=bool(ok), verdict=str(verdict), evaluated=int(evaluated or 0), failed=int(failed or 0),
            row_count=int(row_count or 0), quality_score=None if score is None else float(score),
            failures=[o["name"] for o in json.loads(outcomes or "{}").get("outcomes", []) if not o.get("success")],
            run_id=run_id,
        )  # fmt: skip
        suite = SuiteQuality(suite_name, table, [None] * hours)
        suite = result.suites.setdefault(suite.label, suite)
        index = _hour_index(start, window_start)
        cell = suite.hours[index]
        if cell is None:
            suite.hours[index] = run
        else:
            cell.merge(run)
    for suite in result.suites.values():
        suite.tally()
        result.passed += suite.passed
        result.repaired += suite.repaired
        result.failed += suite.failed
        result.not_validated += suite.not_validated
    lowest = [s.quality_score_min for s in result.suites.values() if s.quality_score_min is not None]
    result.quality_score_min = min(lowest) if lowest else None
    return result


def _history_counts(
    conn: Connection, table: str, rollup: dict[dt.datetime, int], hours: Sequence[dt.datetime]
) -> dict[dt.datetime, int]:
    """Rows of each naive hour: the rollup's where it has the hour, else counted now."""
    counted = quality.hourly_counts(conn, table, [h for h in hours if h not in rollup])
    return {h: rollup[h] if h in rollup else counted.get(h, 0) for h in hours}


def volume(
    conn: Connection,
    table: str,
    hours: Sequence[dt.datetime],
    q: QualitySettings,
    *,
    now: dt.datetime,
    live_max: int | None = None,
) -> Volume:
    """Rows per hour of ``table`` (UTC hours, oldest first) against the volume check's band.

    Hours the check judged come from the ``amazon_volume_hourly`` rollup with the band it
    used. The others are counted now, the newest ``live_max`` of them at most (older ones are
    ``missing``), and get the band the check would compute: mean ± anomaly_z * std over the
    same hour's history (``quality.history_hours``; hours with no rows left out), the history
    read from the rollup where it has the hour. The hour still open gets a band but no verdict.
    """
    naive = [h.replace(tzinfo=None) for h in hours]
    result = Volume(table=table, anomaly_z=q.anomaly_z)
    if not naive:
        return result
    past = {h: quality.history_hours(h, q) for h in naive}
    oldest = min([naive[0], *(p for ps in past.values() for p in ps)])
    judged = {row[0]: row for row in verdicts.volume_rows(conn, table, oldest, naive[-1] + HOUR)}
    unjudged = [h for h in naive if h not in judged]
    live = set(unjudged if live_max is None else unjudged[-live_max:] if live_max > 0 else [])
    history_of = sorted({p for h in live for p in past[h]})
    counts = _history_counts(conn, table, {h: int(r[1]) for h, r in judged.items()}, [*sorted(live), *history_of])
    for hour in naive:
        entry = VolumeHour(hour=hour.replace(tzinfo=dt.UTC).isoformat(), rows=None, source="missing")
        if hour in judged:
            _, rows, points, mean, low, high, anomalous, direction = judged[hour]
            entry = dataclasses.replace(
                entry, rows=int(rows), source="rollup", history_points=int(points), mean=mean, band_low=low,
                band_high=high, anomalous=None if anomalous is None else bool(anomalous), direction=direction,
            )  # fmt: skip
        closed = hour.replace(tzinfo=dt.UTC) + HOUR <= now
        if hour in live:
            verdict = quality.judge_volume(counts[hour], [counts[p] for p in past[hour] if counts[p]], q)
            low, high = quality.volume_band(verdict, q)
            entry = dataclasses.replace(
                entry, rows=counts[hour], source="live", history_points=verdict.points, mean=verdict.mean,
                band_low=low, band_high=high, anomalous=verdict.anomalous if closed else None,
                direction=verdict.direction if closed else None,
            )  # fmt: skip
        if closed and entry.rows is not None and entry.band_low is not None and entry.band_high is not None:
            entry.outside = not entry.band_low <= entry.rows <= entry.band_high
        result.hours.append(entry)
    result.total_rows = sum(e.rows or 0 for e in result.hours)
    result.outside_band = sum(1 for e in result.hours if e.outside)
    result.without_band = sum(1 for e in result.hours if e.band_low is None)
    result.missing_hours = sum(1 for e in result.hours if e.source == "missing")
    result.anomalous_hours = sum(1 for e in result.hours if e.anomalous)
    return result
