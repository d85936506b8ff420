"""Data-quality checks beyond the Great Expectations suite, and the data-side repairs.

- volume against its own history (z-score per hour of day or of week);
- schema drift of a results table against the columns its suite expects;
- completeness: finished tasks whose elements were taken and never answered;
- freshness: the age of the newest row where crawling is expected, at the run's own time;
- quarantine: invalid rows moved, with the rule they failed, in one transaction;
- re-crawl: rows lacking a required field traced back to their elements, crawled once more.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import statistics
from collections.abc import Sequence
from typing import Any

from crawlops import lifecycle, store
from crawlops.alerts import Finding, Level
from crawlops.db import Connection, batched
from crawlops.model import Element, TaskStatus, Window
from crawlops.planning import CRAWL_OBJECTS
from crawlops.queue import RedisClient
from crawlops.settings import QualitySettings, Settings

log = logging.getLogger(__name__)
SOURCE = "amazon_data_supervision"

# ---------------------------------------------------------------------------------------
# Volume against history


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
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO amazon_volume_hourly (table_name, hour, row_count, history_points, mean, std, "
            "band_low, band_high, anomalous, direction, dag_run_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
            "row_count = VALUES(row_count), history_points = VALUES(history_points), mean = VALUES(mean), "
            "std = VALUES(std), band_low = VALUES(band_low), band_high = VALUES(band_high), "
            "anomalous = VALUES(anomalous), direction = VALUES(direction), dag_run_id = VALUES(dag_run_id)",
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
    conn.commit()


def hourly_counts(conn: Connection, table: str, hours: Sequence[dt.datetime]) -> dict[dt.datetime, int]:
    """Rows per ``create_hour`` for the given UTC hours (naive), through the create_hour index."""
    if not hours:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT create_hour, COUNT(*) FROM {table} WHERE create_hour IN ("  # noqa: S608 - table is a constant
            + ", ".join(["%s"] * len(hours))
            + ") GROUP BY create_hour",
            list(hours),
        )
        return {hour: int(count) for hour, count in cur.fetchall()}


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


# ---------------------------------------------------------------------------------------
# Schema drift

TYPE_FAMILIES = {
    "string": {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"},
    "numeric": {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double"},
    "datetime": {"datetime", "timestamp", "date"},
}


def volume_check(
    conn: Connection, table: str, window: Window, settings: Settings, *, dag_run_id: str | None
) -> tuple[dict[str, Any], list[Finding]]:
    """``check_volume``, with the hour's count and band kept in the ``amazon_volume_hourly``
    rollup the Crawl Ops page draws."""
    verdict, findings = check_volume(conn, table, window, settings)
    record_volume(conn, table, window, verdict, settings.quality, dag_run_id=dag_run_id)
    return verdict.to_json(), findings


def suite_schema_check(conn: Connection, table: str, suite: str) -> tuple[dict[str, Any], list[Finding]]:
    """``check_schema_drift`` against the columns the suite file (in ``include/expectations/``) expects."""
    from crawlops import validation
    from crawlops.settings import include_dir

    expected = validation.expected_columns(validation.load_suite(include_dir() / "expectations" / suite))
    return {"expected_columns": expected}, check_schema_drift(conn, table, expected)


def check_schema_drift(conn: Connection, table: str, expected: dict[str, str]) -> list[Finding]:
    """An ERROR naming each expected column that is missing or no longer of its type family."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (table,),
        )
        actual = {name.lower(): data_type.lower() for name, data_type in cur.fetchall()}
    findings = []
    for column, family in expected.items():
        data_type = actual.get(column.lower())
        if data_type is None:
            title = f"{table}.{column} is missing (the suite expects a {family} column)"
        elif data_type not in TYPE_FAMILIES[family]:
            title = f"{table}.{column} is {data_type}, the suite expects a {family} column"
        else:
            continue
        findings.append(
            Finding(
                Level.ERROR,
                SOURCE,
                "schema_drift",
                title,
                subject=f"{table}.{column}",
                details={"expected": family, "actual": data_type},
            )
        )
    return findings


# ---------------------------------------------------------------------------------------
# Completeness


def check_completeness(
    conn: Connection, r: RedisClient, settings: Settings, window: Window, *, dry_run: bool = False
) -> tuple[dict[str, Any], list[Finding]]:
    """The hour's account of unanswered elements, after settling whatever is due.

    Settling runs in every supervision run (``lifecycle.track``); here it runs once more, so
    the hour's verdict never waits on a failed health task. Then every task settled in the
    window with elements taken and never answered is a ``missing_data`` WARNING (they went
    to a retry task, or the task is Dead).
    """
    now = lifecycle.decision_time(conn, window.end)
    tracking = lifecycle.settle_finished(conn, r, settings, now=now, dry_run=dry_run)
    start, end = window.naive()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, task_type, task_status, element_count, answered_count, empty_count, failed_count, "
            "lost_count FROM amazon_task_information WHERE settled_at >= %s AND settled_at < %s "
            "ORDER BY task_id",
            (start, end),
        )
        rows = cur.fetchall()
    findings = {(f.check, f.subject): f for f in tracking.findings(SOURCE)}
    missing: dict[str, int] = {}
    for task_id, task_type, status, elements, answered, empty, failed, lost in rows:
        if not lost:
            continue
        missing[task_id] = int(lost)
        then = f"retry task {task_id}_fail" if status == TaskStatus.FAILED.value else f"task is {status}"
        findings.setdefault(
            ("missing_data", task_id),
            Finding(
                Level.WARNING,
                SOURCE,
                "missing_data",
                f"{task_id}: {lost} elements taken and never answered",
                subject=task_id,
                details={
                    "task_type": task_type,
                    "elements": elements,
                    "answered": answered,
                    "empty": empty,
                    "failed": failed,
                    "lost": lost,
                },
                action=f"sent to the retry path: {then}",
            ),
        )
    for s in tracking.settled:
        if s.lost:
            missing.setdefault(s.task_id, s.lost)
    summary = {
        "settled_tasks": len(rows),
        "missing": missing,
        "waiting": tracking.waiting,
        "repair": {"retries": tracking.retries, "dead": [d.task_id for d in tracking.dead]},
    }
    return summary, list(findings.values())


# ---------------------------------------------------------------------------------------
# Freshness


def check_freshness(
    conn: Connection, settings: Settings, reference: dt.datetime
) -> tuple[dict[str, Any], list[Finding]]:
    """Is data still arriving where crawling is expected? Judged at ``reference`` (the run's time).

    Crawling is expected for a crawl object, and for each marketplace in its tasks, while
    it has tasks that were pushed by ``reference`` and are open or finished within
    ``freshness_seconds`` before it. The age of the newest row (``create_time`` at or
    before ``reference``) is counted from the later of that row and the first push of the
    expected tasks, so a crawl resuming after an idle spell is not stale at once. Older
    than ``freshness_seconds``: an ERROR. Nothing expected (an idle crawl): nothing judged.
    """

    limit = settings.quality.freshness_seconds
    ref = reference.astimezone(dt.UTC).replace(tzinfo=None)
    since = ref - dt.timedelta(seconds=limit)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, task_type, pushed_at FROM amazon_task_information WHERE pushed_at IS NOT NULL "
            "AND pushed_at <= %s AND (finished_at IS NULL OR finished_at >= %s) AND task_status <> %s",
            (ref, since, TaskStatus.DEAD.value),
        )
        expected: dict[str, list[tuple[str, dt.datetime]]] = {}
        for task_id, task_type, pushed_at in cur.fetchall():
            expected.setdefault(str(task_type), []).append((str(task_id), pushed_at))
        judged: dict[str, Any] = {}
        findings: list[Finding] = []
        for crawl_object, tasks in sorted(expected.items()):
            table = CRAWL_OBJECTS[crawl_object].results_table
            started = min(pushed for _, pushed in tasks)
            marks = ", ".join(["%s"] * len(tasks))
            cur.execute(
                f"SELECT DISTINCT marketplace FROM amazon_task_element WHERE task_id IN ({marks})",  # noqa: S608
                [t for t, _ in tasks],
            )
            markets = sorted(str(m) for (m,) in cur.fetchall() if m)
            cur.execute(f"SELECT MAX(create_time) FROM {table} WHERE create_time <= %s", (ref,))  # noqa: S608
            scopes: list[tuple[str, str | None, Any]] = [(crawl_object, None, cur.fetchone()[0])]
            for market in markets:
                cur.execute(
                    f"SELECT MAX(create_time) FROM {table} WHERE marketplace = %s AND create_time <= %s",  # noqa: S608
                    (market, ref),
                )
                scopes.append((crawl_object, market, cur.fetchone()[0]))
            for obj, scope_market, newest in scopes:
                subject = obj if scope_market is None else f"{obj}/{scope_market}"
                age = (ref - max(newest or started, started)).total_seconds()
                judged[subject] = {"newest": newest, "age_seconds": round(age), "open_or_recent_tasks": len(tasks)}
                if age > limit:
                    where = f"{table}" + (f" ({scope_market})" if scope_market else "")
                    findings.append(
                        Finding(
                            Level.ERROR,
                            SOURCE,
                            "freshness",
                            f"{where}: newest row is {age / 60:.0f} min old (limit {limit / 60:.0f} min) "
                            f"while {len(tasks)} {obj} tasks are open or just finished",
                            subject=subject,
                            details={**judged[subject], "limit_seconds": limit, "table": table, "market": scope_market},
                            action="none automatic: check the crawler fleet for this crawl object and marketplace",
                        )
                    )
    return {"limit_seconds": limit, "scopes": judged}, findings


# ---------------------------------------------------------------------------------------
# Quarantine of invalid rows

RESULT_COLUMNS = (
    "id, task_id, keyword, marketplace, asin, title, price, currency, rating, review_count, page, position, create_time"
)
ASIN_PATTERN = "^B0[0-9A-Z]{8}$"


def _rules(settings: Settings) -> list[tuple[str, str, list[Any]]]:
    """(rule name, SQL predicate on a results row, its parameters); the names match the suite's."""
    markets = list(settings.dispatch.marketplaces)
    return [
        ("price_non_negative", "price < 0", []),
        ("rating_range", "(rating < 0 OR rating > 5)", []),
        # utf8mb4_bin: REGEXP under a _ci collation would accept lower-case ASINs.
        ("asin_format", "asin COLLATE utf8mb4_bin NOT REGEXP %s", [ASIN_PATTERN]),
        ("marketplace_known", "marketplace NOT IN (" + ", ".join(["%s"] * len(markets)) + ")", markets),
    ]


def quality_score(
    conn: Connection, table: str, window: Window, settings: Settings, required: Sequence[str]
) -> tuple[float | None, int]:
    """The share of the window's rows that pass every validity rule and have every required
    field (``required``), and the row count; no rows: (None, 0). A NULL fails only its
    required-field rule, like the suite counts it."""
    start, end = window.naive()
    broken = [f"COALESCE({predicate}, 0)" for _, predicate, _ in _rules(settings)]
    broken += [f"`{column}` IS NULL" for column in required]
    params = [p for _, _, rule_params in _rules(settings) for p in rule_params]
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT COUNT(*), SUM(NOT ({' OR '.join(broken)})) FROM {table} "  # noqa: S608 - constants
            "WHERE create_time >= %s AND create_time < %s",
            [*params, start, end],
        )
        rows, good = cur.fetchone()
    rows = int(rows or 0)
    return (round(int(good or 0) / rows, 6) if rows else None), rows


def quality_score_finding(
    table: str, window: Window, score: float | None, rows: int, threshold: float
) -> list[Finding]:
    """An ERROR when the hour's quality score is below ``data_quality_threshold``."""
    if score is None or score >= threshold:
        return []
    return [
        Finding(
            Level.ERROR,
            SOURCE,
            "data_quality",
            f"{table} {window}: quality score {score:.1%} below {threshold:.0%} ({rows} rows)",
            subject=table,
            details={"score": score, "threshold": threshold, "rows": rows},
            action="invalid rows are quarantined by quarantine_invalid; rows missing required fields stay",
        )
    ]


def find_invalid_rows(conn: Connection, table: str, window: Window, settings: Settings) -> dict[int, str]:
    """Row id -> first rule it fails, for rows of the window (duplicates: every copy but the first)."""
    start, end = window.naive()
    invalid: dict[int, str] = {}
    with conn.cursor() as cur:
        for rule, predicate, params in _rules(settings):
            cur.execute(
                f"SELECT id FROM {table} WHERE create_time >= %s AND create_time < %s AND {predicate} "  # noqa: S608
                "FOR UPDATE",
                [start, end, *params],
            )
            for (row_id,) in cur.fetchall():
                invalid.setdefault(int(row_id), rule)
        cur.execute(
            f"SELECT DISTINCT s.id FROM {table} s JOIN {table} d ON d.task_id = s.task_id "  # noqa: S608
            "AND d.page = s.page AND d.keyword = s.keyword AND d.position = s.position AND d.id < s.id "
            "AND d.create_time >= %s AND d.create_time < %s "
            "WHERE s.create_time >= %s AND s.create_time < %s FOR UPDATE",
            (start, end, start, end),
        )
        for (row_id,) in cur.fetchall():
            invalid.setdefault(int(row_id), "unique_result")
    return invalid


def quarantine_invalid(
    conn: Connection,
    table: str,
    window: Window,
    settings: Settings,
    *,
    dry_run: bool = False,
    dag_run_id: str | None = None,
) -> tuple[dict[str, Any], list[Finding]]:
    """Move the window's invalid rows to ``<table>_quarantine`` with their rule, in one transaction.

    The rows are locked when found, copied, then deleted by id, and the counts are checked
    before commit, so rows in main + quarantine always equal the rows before.
    """
    start, end = window.naive()
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT COUNT(*) FROM {table} WHERE create_time >= %s AND create_time < %s",  # noqa: S608
            (start, end),
        )
        (rows,) = cur.fetchone()
    invalid = find_invalid_rows(conn, table, window, settings)
    by_rule: dict[str, list[int]] = {}
    for row_id, rule in sorted(invalid.items()):
        by_rule.setdefault(rule, []).append(row_id)
    if not dry_run and invalid:
        moved = 0
        with conn.cursor() as cur:
            for rule, ids in by_rule.items():
                for chunk in batched(ids, 1000):
                    marks = ", ".join(["%s"] * len(chunk))
                    cur.execute(
                        f"INSERT INTO {table}_quarantine ({RESULT_COLUMNS}, failed_rule, dag_run_id) "  # noqa: S608
                        f"SELECT {RESULT_COLUMNS}, %s, %s FROM {table} WHERE id IN ({marks})",
                        [rule, dag_run_id, *chunk],
                    )
                    copied = cur.rowcount
                    cur.execute(f"DELETE FROM {table} WHERE id IN ({marks})", chunk)  # noqa: S608
                    if copied != len(chunk) or cur.rowcount != len(chunk):
                        conn.rollback()
                        raise RuntimeError(f"quarantine of {rule} moved {copied}/{cur.rowcount} of {len(chunk)} rows")
                    moved += copied
        conn.commit()
        log.info("quarantined %d rows of %s: %s", moved, table, {k: len(v) for k, v in by_rule.items()})
    else:
        conn.rollback()  # release the row locks taken while looking
    error_rate = len(invalid) / rows if rows else 0.0
    counts = {rule: len(ids) for rule, ids in by_rule.items()}
    summary = {"rows": rows, "invalid": len(invalid), "by_rule": counts, "error_rate": round(error_rate, 5)}
    findings = []
    if invalid:
        over = error_rate > settings.quality.error_rate_max
        findings.append(
            Finding(
                Level.ERROR if over else Level.INFO,
                SOURCE,
                "invalid_data",
                f"{table}: {len(invalid)} invalid rows of {rows} ({error_rate:.2%}"
                + (f", above {settings.quality.error_rate_max:.0%})" if over else ")"),
                subject=table,
                details=summary,
                action=("would move" if dry_run else "moved") + f" them to {table}_quarantine with the failed rule",
            )
        )
    return summary, findings


# ---------------------------------------------------------------------------------------
# Re-crawl of rows lacking a required field


@dataclasses.dataclass
class IncompleteRows:
    """The window's rows lacking a required field, traced back to the elements they answer."""

    rows: int = 0
    by_column: dict[str, int] = dataclasses.field(default_factory=dict)
    elements: dict[str, list[Element]] = dataclasses.field(default_factory=dict)  # by task id
    newest: dict[bytes, dt.datetime] = dataclasses.field(default_factory=dict)  # element digest -> newest row
    untraceable: int = 0  # rows naming no element: a key field missing, or no such element in their task


def trace_incomplete_rows(conn: Connection, table: str, window: Window, required: Sequence[str]) -> IncompleteRows:
    """Rows of ``table`` created in the window with a NULL in any ``required`` column, and
    the manifest elements they answer: the row's task and the crawl object's result keys
    (for search results: keyword, marketplace, page), matched byte for byte."""
    objects = {name: o for name, o in CRAWL_OBJECTS.items() if o.results_table == table}
    if not objects:
        raise ValueError(f"no crawl object writes its results to {table!r}")
    if not required:
        return IncompleteRows()
    keys = list(dict.fromkeys(c for o in objects.values() for c in o.result_keys.values()))
    missing = " OR ".join(f"`{c}` IS NULL" for c in required)
    start, end = window.naive()
    traced = IncompleteRows()
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(f'SUM(`{c}` IS NULL)' for c in required)}, COUNT(*) FROM {table} "  # noqa: S608
            f"WHERE create_time >= %s AND create_time < %s AND ({missing})",
            (start, end),
        )
        *nulls, rows = cur.fetchone()
        traced.rows = int(rows or 0)
        traced.by_column = {c: int(n) for c, n in zip(required, nulls, strict=True) if n}
        if not traced.rows:
            return traced
        cur.execute(
            f"SELECT task_id, {', '.join(keys)}, COUNT(*), MAX(create_time) FROM {table} "  # noqa: S608
            f"WHERE create_time >= %s AND create_time < %s AND ({missing}) GROUP BY task_id, {', '.join(keys)}",
            (start, end),
        )
        groups: dict[str, dict[tuple, tuple[int, dt.datetime]]] = {}
        for task_id, *row in cur.fetchall():
            *key, count, newest = row
            if task_id is None or any(v is None for v in key):
                traced.untraceable += int(count)
            else:
                groups.setdefault(task_id, {})[tuple(key)] = (int(count), newest)
    tasks = {t.task_id: t for chunk in batched(sorted(groups), 1000) for t in _tasks(conn, chunk)}
    for task_id, wanted in groups.items():
        task = tasks.get(task_id)
        crawl_object = objects.get(task.task_type) if task else None
        if task is None or crawl_object is None:
            traced.untraceable += sum(count for count, _ in wanted.values())
            continue
        fields = {column: field for field, column in crawl_object.result_keys.items()}
        matched: set[tuple] = set()
        for part in store.stream_elements(conn, task, batch_size=5000, fields=True):
            for element in part:
                key = tuple(getattr(element, fields[c]) if c in fields else None for c in keys)
                if key in wanted:
                    matched.add(key)
                    traced.elements.setdefault(task_id, []).append(element)
                    traced.newest[element.digest] = wanted[key][1]
        traced.untraceable += sum(count for key, (count, _) in wanted.items() if key not in matched)
    return traced


def _tasks(conn: Connection, task_ids: Sequence[str]) -> list[store.TaskRow]:
    return store.select_tasks(conn, "task_id IN (" + ", ".join(["%s"] * len(task_ids)) + ")", list(task_ids))


def recrawl_incomplete(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    table: str,
    window: Window,
    *,
    required: Sequence[str],
    dry_run: bool = False,
) -> tuple[dict[str, Any], list[Finding]]:
    """The window's rows lacking a required field: their elements are crawled once more
    through the dispatch core (``lifecycle.recrawl``: the chain's retry, usual budget).

    One ``incomplete_data`` finding for the window: INFO while every such row is on its way
    to its one re-crawl (sent now or by an earlier run); WARNING when some cannot be:
    rows naming no element, rows still incomplete after their element's re-crawl, or a
    chain whose retry budget is spent. The rows themselves stay where they are.
    """
    traced = trace_incomplete_rows(conn, table, window, required)
    done = lifecycle.recrawl(conn, r, settings, traced.elements, dry_run=dry_run) if traced.elements else None
    done = done or lifecycle.Recrawl(dry_run=dry_run)
    # An element sent before whose rows arrived since: the re-crawl answered, still incomplete.
    after = sum(1 for digest, asked in done.earlier.items() if traced.newest.get(digest, asked) >= asked)
    summary = {
        "rows": traced.rows,
        "by_column": traced.by_column,
        "elements": sum(len(v) for v in traced.elements.values()),
        "untraceable_rows": traced.untraceable,
        "incomplete_after_recrawl": after,
        **done.to_json(),
    }
    if not traced.rows:
        return summary, []
    stuck = traced.untraceable + after + done.budget_spent
    columns = ", ".join(f"{c} {n}" for c, n in sorted(traced.by_column.items()))
    verb = "would send" if dry_run else "sent"
    left = [
        f"{n} {what}"
        for n, what in (
            (traced.untraceable, "rows name no element"),
            (after, "elements still incomplete after their one re-crawl"),
            (done.budget_spent, "elements not re-crawled: retry budget spent"),
        )
        if n
    ]
    finding = Finding(
        Level.WARNING if stuck else Level.INFO,
        SOURCE,
        "incomplete_data",
        f"{table} {window}: {traced.rows} rows lack a required field ({columns})",
        subject=table,
        details=summary,
        action=f"{verb} {done.sent} elements for one more crawl"
        + (f" ({', '.join(summary['retry_tasks'][:3])})" if summary["retry_tasks"] else "")
        + (f"; {len(done.earlier) - after} sent by an earlier run" if len(done.earlier) > after else "")
        + (f"; {'; '.join(left)}" if left else ""),
    )
    return summary, [finding]
