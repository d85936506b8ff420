"""`make demo`'s history: the last 48 hours, seeded through the package's own code paths, with five faults.

    python -m crawlops_dev.story      # seed the demo database (what `make demo` does before Airflow starts)

Each hour is what the DAGs would have done, done by the functions their tasks call:
dispatch plans, records and pushes the window (``dispatch.record_window``,
``push_window``); the simulated fleet crawls every open task, its rows timestamped inside
the hour after the window (as real crawlers answer the task dispatched at the hour's
start); ``lifecycle.sync_statuses`` moves the statuses along; then the checks of the
supervision run closing that hour: the suite (Great Expectations, in SQL), the volume
check and its rollup, schema drift, completeness (which settles the finished tasks: retry
tasks, Dead), re-crawl of incomplete rows, quarantine. Their findings and outcomes are
recorded as the DAG tasks record them. The volumes follow the day: the rows a results page
holds rise and fall with a sine over the day (12 to 20), 228 to 380 rows an hour with the
demo config, above the demo's ``min_records_per_hour`` of 100.

The package stamps what it observes with the database's clock, so after each step the
rows it stamped are moved back to the simulated time of that step (``_backdate``): the
tasks' push, start, finish and settle times, the alerts, check and validation rows. The
checks judge their window, so seen from the seeded hour they see what they would have
seen then.

The faults, counted back from the current hour (crawl hour ``now - k``), all inside the
Crawl Ops page's default 24 hours, and explained on it ("Demo story"):

- ``dead_task`` (k = 20..17): one results page of a task always fails; its retry chain
  fails three more times and the last retry is Dead (CRITICAL, completeness).
- ``dirty_hour`` (k = 14): 8 % of the rows invalid; the suite fails, quarantine moves them,
  the hour re-checked passes: ``repaired``.
- ``stopped_stream`` (k = 10): the fleet answers nothing for an hour: the suite's row count
  fails (observed 0), volume drops; the next hour's 5-minute checks find data stale
  (freshness), the task timed out (its elements sent to a retry task) and the success rate
  low; the backlog crawled in the next hour is a volume spike.
- ``product_layout`` (k = 7): the product pages come back without their title (a layout
  change): the ``amazon_product_detail`` suite fails while search passes, and the pages are
  re-crawled once (``recrawl_incomplete:product_detail``).
- ``volume_drop`` (k = 5): pages come back with half their rows: the suite passes, the
  volume check flags the drop.

Every crawl object of the starter config is crawled and checked each hour, each with its
own suite and thresholds (the demo's product volumes are small: ``DEMO_SETTINGS``); the
search faults are search's alone, except the stopped stream, which stops every crawl.

Volume bands need history: with 48 hours each hour of the last day has one past point (the
same hour yesterday), so the demo lowers ``anomaly_min_points`` to 1 (``DEMO_SETTINGS``);
every fault that changes an hour's volume lies in the last 24 hours, so it never becomes
the band of a later hour. Weekly config rows are left to the live schedule: with one past
point, Monday's weekly keywords would be flagged as a spike.

Idempotent: an hour already seeded (``crawlops_demo_story``), or whose window was
dispatched already (by an earlier demo that kept running), is skipped; faults are only
injected into a database with no tasks yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from crawlops import dispatch, health, lifecycle, objects, quality, report, validation
from crawlops.alerts import record_check, record_findings
from crawlops.db import Connection
from crawlops.findings import Finding, Level
from crawlops.harness import simulator
from crawlops.model import UTC, Window
from crawlops.queue import RedisClient
from crawlops.settings import Settings
from crawlops.store import story as store_story

HOURS = 48
TABLE = objects.get(objects.FIRST).results_table
#: The settings the demo runs with (the stack exports them to Airflow too, so a live re-check
#: of a seeded hour judges it the same way).
DEMO_SETTINGS = {
    "CRAWLOPS__QUALITY__MIN_RECORDS_PER_HOUR": "100",
    "CRAWLOPS__QUALITY__ANOMALY_MIN_POINTS": "1",
    # the starter config's few products: two product pages and 2 x 5 reviews an hour
    "CRAWLOPS__OBJECTS__PRODUCT_DETAIL": '{"min_records_per_hour": 1}',
    "CRAWLOPS__OBJECTS__PRODUCT_REVIEW": '{"min_records_per_hour": 5}',
}
#: Only these frequencies are dispatched for the seeded hours (see the module docstring).
FREQUENCIES = ("hourly", "daily")

# Crawl hours of the faults, counted back from the current hour (1: the last complete hour).
DEAD_ROOT = 20  # the task whose page keeps failing is crawled here; retries at 19, 18, 17
DEAD = DEAD_ROOT - 3  # the third retry fails: Dead
DIRTY = 14
STOPPED = 10  # nothing crawled; the catch-up follows at 9
PRODUCT = 7  # product pages without their title: the product_detail suite fails, the pages are re-crawled
DROP = 5
FAULT_HOURS = {
    DEAD: "dead_task", DIRTY: "dirty_hour", STOPPED: "stopped_stream", PRODUCT: "product_layout", DROP: "volume_drop",
}  # fmt: skip
REVIEWS_PER_PAGE = 5

HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
FAIL_RATE = 0.005
INVALID_RATE = 0.08

#: Columns the package stamps with the database clock, per table.
_STAMPS = {
    "amazon_task_information": (
        "created_at", "pushed_at", "started_at", "progress_at", "finished_at", "settled_at", "updated_at",
    ),
    "amazon_task_element": ("empty_at", "recrawl_at"),
    "amazon_alert": ("created_at", "resolved_at", "last_seen_at", "closed_at"),
    "amazon_check_run": ("checked_at",),
    "amazon_validation_run": ("validated_at",),
    "amazon_volume_hourly": ("checked_at",),
    **{entry.quarantine_table: ("quarantined_at",) for entry in objects.REGISTRY.values()},
    "amazon_daily_report": ("created_at",),
}  # fmt: skip


@dataclasses.dataclass
class Seeded:
    hours: list[dt.datetime] = dataclasses.field(default_factory=list)
    skipped: int = 0
    faults: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    reports: list[str] = dataclasses.field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        faults = (
            ", ".join(f"{name} {hour:%m-%d %H}:00 UTC" for name, hour in self.faults.items()) or "none (seeded before)"
        )
        return (
            f"{len(self.hours)} hours seeded ({self.skipped} already there), {self.rows:,} result rows, "
            f"faults: {faults}; {self.seconds:.1f} s"
        )


def rows_per_page(hour: dt.datetime, tz: str) -> int:
    """The daily shape: rows a results page holds at this hour of the day (12 at 02:00 to 20 at 14:00)."""
    local = hour.astimezone(ZoneInfo(tz)).hour
    return round(16 + 4 * math.sin(2 * math.pi * (local - 8) / 24))


def _db_now(conn: Connection) -> dt.datetime:
    with conn.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP()")
        return cur.fetchone()[0]


def _naive(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


def _backdate(
    conn: Connection, since: dt.datetime, at: dt.datetime, tasks: dt.datetime | None = None, **columns: dt.datetime
) -> None:
    """Every stamp the package wrote at or after ``since`` (database clock) moves to ``at``, never
    later than ``since`` itself; ``tasks``: another time for the task rows' and the manifest's,
    ``columns``: another for one of their columns."""
    for table, names in _STAMPS.items():
        own = tasks if tasks is not None and table in ("amazon_task_information", "amazon_task_element") else at
        times = {name: min(_naive(columns.get(name, own)), since) for name in names}
        sets = ", ".join(f"{n} = IF({n} >= %s, %s, {n})" for n in names)
        where = " OR ".join(f"{n} >= %s" for n in names)
        params: list[Any] = [v for n in names for v in (since, times[n])] + [since] * len(names)
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {table} SET {sets} WHERE {where}", params)  # noqa: S608 - constants
    conn.commit()


def _record(
    conn: Connection,
    check: str,
    findings: Sequence[Finding],
    window: Window,
    *,
    details: dict[str, Any] | None = None,
    resolves: Sequence[str] = (),
    status: str | None = None,
    scope: str | None = None,
) -> None:
    """What ``TaskRun.record`` does for a DAG task (no run id: no Airflow run to link to)."""
    record_findings(conn, findings, window=window, resolves=resolves, scope=scope)
    record_check(
        conn, check, window, status=status or ("fail" if findings else "pass"), findings=len(findings),
        details=details or {},
    )  # fmt: skip
    conn.commit()


def _retry_status(findings: Sequence[Finding]) -> str:
    """``RetryTaskOperator``'s outcome: INFO only means on its way to repair."""
    return "pass" if not findings else "repaired" if all(f.level == Level.INFO for f in findings) else "fail"


class Story:
    """Seeds the hours; each step is a step of a DAG task, in the order the DAGs run them."""

    def __init__(
        self, conn: Connection, r: RedisClient, settings: Settings, *, sa_url: str, tz: str, now: dt.datetime
    ) -> None:
        self.conn, self.r, self.settings, self.sa_url, self.tz = conn, r, settings, sa_url, tz
        self.now = now.astimezone(UTC)
        self.current = self.now.replace(minute=0, second=0, microsecond=0)
        self.notes: dict[int, dict[str, Any]] = {}
        self.dead_root: str | None = None
        self.dead_element: str | None = None

    def hour(self, k: int) -> dt.datetime:
        return self.current - HOUR * k

    # --- what the dispatch DAG does at the hour's start --------------------------------------

    def dispatch(self, crawl_hour: dt.datetime) -> dict[str, Any]:
        window = Window(crawl_hour - HOUR, crawl_hour)
        since = _db_now(self.conn)
        recorded = dispatch.record_window(self.conn, self.settings, window, self.tz, frequencies=FREQUENCIES)
        pushed = dispatch.push_window(self.conn, self.r, self.settings, window)
        _backdate(self.conn, since, crawl_hour + MINUTE)
        return {"recorded": recorded, "pushed": pushed}

    # --- the fleet ------------------------------------------------------------------------------

    def crawl(self, crawl_hour: dt.datetime, k: int, behaviour: simulator.Behaviour) -> dict[str, int]:
        rng = random.Random(1000 + k)  # noqa: S311 - the same fleet behaviour on every demo
        start = crawl_hour + 2 * MINUTE

        def inside() -> dt.datetime:
            return start + dt.timedelta(seconds=rng.uniform(0, 53 * 60))

        since = _db_now(self.conn)
        # one element a batch: the kit stamps a batch's rows at once, so they spread over the hour
        counts = simulator.crawl(self.conn, self.r, behaviour=behaviour, rng=rng, clock=inside, batch=1)
        lifecycle.sync_statuses(self.conn, self.r, self.settings)
        _backdate(self.conn, since, crawl_hour + 55 * MINUTE, started_at=start)
        return counts

    # --- the 5-minute supervision checks (only where the story needs them) ----------------------

    def five_minute_checks(self, at: dt.datetime) -> list[Finding]:
        window = Window(at - 5 * MINUTE, at)
        since = _db_now(self.conn)
        details, fresh = quality.check_freshness(self.conn, self.settings, at)
        _record(self.conn, "freshness", fresh, window, details=details, resolves=("freshness",))
        checked = health.check_tasks(self.conn, self.r, self.settings, at)
        _record(self.conn, "task_health", checked.findings, window, details=checked.to_json())
        _backdate(self.conn, since, at)
        return [*fresh, *checked.findings]

    # --- the supervision run that closes the hour -----------------------------------------------

    def validate(self, window: Window, entry: objects.CrawlObject, settings: Settings) -> validation.ValidationReport:
        """What ``ValidateSuiteOperator`` does for one crawl object."""
        table, path = entry.results_table, validation.suite_path_for(entry)
        suite = validation.load_suite(path)
        found = validation.validate_window(
            self.sa_url, table, path, window, validation.suite_parameters(settings, window)
        )
        findings = validation.report_findings(found)
        score, rows = quality.quality_score(self.conn, table, window, settings, validation.required_columns(suite))
        validation.store_report(self.conn, found, dag_run_id=None, quality_score=score)
        findings += quality.quality_score_finding(table, window, score, rows, settings.quality.data_quality_threshold)
        _record(
            self.conn, f"suite:{found.suite_name}", findings, window,
            resolves=[e["meta"]["name"] for e in suite["expectations"]] + ["data_quality"],
            status="pass" if found.success else "fail",
            details={"failed": [o.name for o in found.failed_outcomes()], "rows": found.row_count,
                     "quality_score": score}, scope=table,
        )  # fmt: skip
        return found

    def object_checks(self, window: Window, entry: objects.CrawlObject, recheck: bool) -> dict[str, Any]:
        """The supervision run's mapped checks of one crawl object for the hour."""
        conn, r, table = self.conn, self.r, entry.results_table
        settings = self.settings.for_object(entry.name, entry.quality_defaults)
        suite = self.validate(window, entry, settings)
        volume, found = quality.volume_check(conn, table, window, settings, dag_run_id=None)
        _record(conn, entry.check_name("volume_anomaly"), found, window, details=volume,
                resolves=("volume_anomaly",), scope=table)  # fmt: skip
        drift, found = quality.suite_schema_check(conn, table, entry.suite_file)
        _record(conn, entry.check_name("schema_drift"), found, window, details=drift, resolves=("schema_drift",),
                scope=table)  # fmt: skip
        required = validation.required_columns(validation.load_suite(validation.suite_path_for(entry)))
        incomplete, found = quality.recrawl_incomplete(conn, r, settings, table, window, required=required)
        _record(conn, entry.check_name("recrawl_incomplete"), found, window, details=incomplete,
                resolves=("incomplete_data",), status=_retry_status(found), scope=table)  # fmt: skip
        moved, found = quality.quarantine_invalid(conn, table, window, settings)
        _record(conn, entry.check_name("quarantine_invalid"), found, window, details=moved,
                resolves=("invalid_data",), scope=table)  # fmt: skip
        rechecked = self.validate(window, entry, settings) if recheck and moved["invalid"] else None
        return {"suite": suite, "volume": volume, "moved": moved, "rechecked": rechecked, "incomplete": incomplete}

    def hourly_checks(self, crawl_hour: dt.datetime, *, recheck: bool = False) -> dict[str, Any]:
        conn, r, settings = self.conn, self.r, self.settings
        window = Window(crawl_hour, crawl_hour + HOUR)
        since = _db_now(conn)
        complete, found = quality.check_completeness(conn, r, settings, window)
        _record(conn, "completeness", found, window, details=complete, resolves=("missing_data",),
                status=_retry_status(found))  # fmt: skip
        dead = [f for f in found if f.level == Level.CRITICAL]
        checked = {
            name: self.object_checks(window, objects.get(name), recheck)
            for name in quality.objects_to_check(conn, settings, window)
        }
        # settled by the 5-minute run after the tasks finished; the checks ran at the hour's close
        _backdate(conn, since, min(crawl_hour + HOUR + MINUTE, self.now), tasks=crawl_hour + 58 * MINUTE)
        return {**checked[objects.FIRST], "dead": dead, "objects": checked}

    # --- one hour -------------------------------------------------------------------------------

    def behaviour(self, k: int, crawl_hour: dt.datetime, inject: bool) -> simulator.Behaviour:
        rpp = rows_per_page(crawl_hour, self.tz)
        fail_if = None
        if inject and DEAD <= k <= DEAD_ROOT and self.dead_root and self.dead_element:
            root, text = self.dead_root, self.dead_element.encode()
            fail_if = _blocked(root, text)
        if inject and k == DROP:
            rpp //= 2
        invalid = INVALID_RATE if inject and k == DIRTY else 0.0
        # product pages and reviews keep their own, steady behaviour: the search faults are not theirs, and at
        # ten rows an hour one failed page would read as a volume anomaly against a single past hour
        detail = simulator.Behaviour(fail_rate=0.0, invalid_rate=0.0, null_rate=0.0)
        if inject and k == PRODUCT:  # a layout change: the product pages' title is no longer found
            detail = dataclasses.replace(detail, null_rate=1.0)
        reviews = simulator.Behaviour(results_per_page=REVIEWS_PER_PAGE, fail_rate=0.0, invalid_rate=0.0)
        return simulator.Behaviour(
            results_per_page=rpp, fail_rate=FAIL_RATE, invalid_rate=invalid, null_rate=0.0, fail_if=fail_if,
            objects=(("product_detail", detail), ("product_review", reviews)),
        )  # fmt: skip

    def seed_hour(self, k: int, inject: bool) -> int:
        crawl_hour = self.hour(k)
        self.dispatch(crawl_hour)
        if inject and k == DEAD_ROOT:
            self.dead_root, self.dead_element = _first_element(self.conn, crawl_hour - HOUR)
        five_minute: list[Finding] = []
        if inject and k == STOPPED - 1:  # the fleet is back; the 5-minute run after the hour finds it out
            five_minute = self.five_minute_checks(crawl_hour + 5 * MINUTE)
        counts = {"rows": 0}
        if not (inject and k == STOPPED):
            counts = self.crawl(crawl_hour, k, self.behaviour(k, crawl_hour, inject))
        checks = self.hourly_checks(crawl_hour, recheck=inject and k == DIRTY)
        fault = FAULT_HOURS.get(k) if inject else None
        note = _note(self, fault, crawl_hour, checks) if fault else None
        if inject and k == STOPPED - 1:
            stopped = self.notes.get(STOPPED)
            if stopped:
                _add_catch_up(stopped, self, crawl_hour, checks, five_minute)
                store_story.record_hour(self.conn, self.hour(STOPPED), fault="stopped_stream", **stopped)
        if note is not None:
            self.notes[k] = note
        store_story.record_hour(self.conn, crawl_hour, fault=fault, **(note or {"title": None, "story": None}))
        return int(counts.get("rows", 0))

    def daily_reports(self, first: dt.datetime) -> list[str]:
        """The reports of the days that closed inside the seeded hours, as the run at 00:00 publishes them."""
        zone = ZoneInfo(self.tz)
        midnight = dt.datetime.combine(self.now.astimezone(zone).date(), dt.time(0), tzinfo=zone)
        written = []
        while midnight.astimezone(UTC) > first:
            day = Window((midnight - dt.timedelta(days=1)).astimezone(UTC), midnight.astimezone(UTC))
            if day.end > first + HOUR:
                since = _db_now(self.conn)
                done = report.publish(self.conn, self.r, self.settings, day, tz=self.tz, run_url=None, robot=None,
                                      dag_run_id=None)  # fmt: skip
                _backdate(self.conn, since, min(day.end + 2 * MINUTE, self.now))
                written.append(done["html"])
            midnight -= dt.timedelta(days=1)
        return written


def _blocked(root: str, member: bytes) -> Callable[[Any], bool]:
    """The page the site keeps blocking: one element, in the task ``root`` and its retries."""

    def blocked(element: Any) -> bool:
        return bool(element.task_id.startswith(root) and element.member == member)

    return blocked


def _first_element(conn: Connection, window_start: dt.datetime) -> tuple[str | None, str | None]:
    """The hourly root task of the window and its first element."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT t.task_id, e.element FROM amazon_task_information t JOIN amazon_task_element e "
            "ON e.task_id = t.task_id WHERE t.interval_start = %s AND t.task_source IS NULL "
            "AND t.task_id LIKE %s AND t.task_type = %s ORDER BY e.seq LIMIT 1",
            (_naive(window_start), "%\\_hourly", objects.FIRST),
        )
        row = cur.fetchone()
    return (str(row[0]), str(row[1])) if row else (None, None)


def _local(story: Story, instant: dt.datetime) -> str:
    return instant.astimezone(ZoneInfo(story.tz)).strftime("%H:%M")


def _checks_found(findings: Sequence[Finding]) -> str:
    """``freshness ERROR x4, task_timeout ERROR``: the findings by check and level."""
    counts: dict[str, int] = {}
    for f in findings:
        key = f"{f.check} {f.level.value}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{key} x{n}" if n > 1 else key for key, n in counts.items())


def _note(story: Story, fault: str, hour: dt.datetime, checks: dict[str, Any]) -> dict[str, Any]:
    """The fault's title and what the package did about it, from what the checks found."""
    at = _local(story, hour)
    suite, volume, moved = checks["suite"], checks["volume"], checks["moved"]
    if fault == "dead_task":
        root = story.dead_root or "?"
        dead = "; ".join(f.title for f in checks["dead"]) or "no Dead task found"
        return {
            "title": f"Dead task: a results page that always fails ({at})",
            "story": f"One page of {root} (dispatched {_local(story, story.hour(DEAD_ROOT) - HOUR)}, crawled "
            f"{_local(story, story.hour(DEAD_ROOT))}) failed every time: {story.dead_element}. Its failures went "
            f"down the retry chain, one retry task an hour ({root}_fail, then _fail_fail, _fail_fail_fail), "
            "each failing again. "
            f"After retry_limit ({story.settings.dispatch.retry_limit}) retries the chain's last task is Dead: {dead}. "
            "A CRITICAL alert, the completeness cell red, a 'dead' bar in the tasks chart; the other elements "
            "of every task were answered.",
        }
    if fault == "dirty_hour":
        rechecked = checks["rechecked"]
        return {
            "title": f"Dirty hour repaired by quarantine ({at})",
            "story": f"The fleet wrote broken rows ({INVALID_RATE:.0%} of them: negative prices, ratings above 5, "
            f"lower-case ASINs). The suite failed ({', '.join(o.name for o in suite.failed_outcomes())}); "
            f"quarantine_invalid moved the {moved['invalid']} invalid rows of {moved['rows']} to "
            f"{TABLE}_quarantine with the rule each failed (an ERROR: {moved['error_rate']:.1%} is above "
            f"error_rate_max); the hour re-checked "
            + ("passes, so the suite cell reads 'repaired'." if rechecked and rechecked.success else "still fails."),
        }
    if fault == "product_layout":
        detail = checks["objects"]["product_detail"]
        failed = ", ".join(o.name for o in detail["suite"].failed_outcomes())
        return {
            "title": f"Product pages without their title, re-crawled ({at})",
            "story": f"The product pages crawled at {at} came back without a title (a layout change the parser "
            f"missed), on {detail['suite'].row_count} rows of amazon_product_detail. Its suite failed ({failed}) "
            f"while the search results of the same hour passed: each crawl object is checked on its own. "
            f"recrawl_incomplete:product_detail sent {detail['incomplete']['elements']} product pages back to the "
            f"crawlers once ({', '.join(detail['incomplete']['retry_tasks']) or 'no retry task'}), crawled the "
            "next hour.",
        }
    if fault == "stopped_stream":
        return {
            "title": f"Stopped stream: the crawler fleet answered nothing for an hour ({at})",
            "story": f"No rows at all from {at}: the suite's row count fails (observed {suite.row_count}) and the "
            f"volume check flags a drop ({volume['observed']} rows, z={volume['z']}).",
        }
    return {
        "title": f"Volume drop: result pages half empty ({at})",
        "story": f"The fleet answered every page, but with half the usual rows (a parser change, say): "
        f"{volume['observed']} rows against {volume['mean']:.0f} the same hour yesterday (z={volume['z']}). The suite "
        f"passes ({'above' if suite.success else 'NOT above'} min_records_per_hour), the volume check flags the "
        "drop: an ERROR, the bar red in the volume chart.",
    }


def _add_catch_up(note: dict[str, Any], story: Story, hour: dt.datetime, checks: dict[str, Any], five: list) -> None:
    """The stopped stream's consequences, found in the next hour."""
    volume = checks["volume"]
    found = _checks_found(five) or "nothing"
    note["story"] += (
        f" The 5-minute run at {_local(story, hour + 5 * MINUTE)} finds: {found} (the newest row over an hour "
        f"old, for the table and each marketplace; the task open past task_timeout, its elements sent to a "
        f"retry task; the success rate of the last hour 0). The fleet resumed and crawled the backlog with the "
        "next hour's task: "
        f"{volume['observed']} rows at {_local(story, hour)}, a spike (z={volume['z']}, WARNING)."
    )


def seed(
    conn: Connection,
    r: RedisClient,
    settings: Settings,
    *,
    sa_url: str,
    tz: str = "UTC",
    now: dt.datetime | None = None,
    hours: int = HOURS,
    progress: Callable[[str], None] | None = None,
) -> Seeded:
    """Seed the ``hours`` complete hours before ``now`` that are not there yet (see the module docstring)."""
    started = time.monotonic()
    story = Story(conn, r, settings, sa_url=sa_url, tz=tz, now=now or dt.datetime.now(UTC))
    store_story.ensure_table(conn)
    first = story.hour(hours)
    seeded = store_story.seeded_hours(conn, _naive(first), _naive(story.current))
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM amazon_task_information")
        inject = not seeded and cur.fetchone()[0] == 0
        cur.execute(
            "SELECT DISTINCT interval_end FROM amazon_task_information WHERE task_source IS NULL "
            "AND interval_end >= %s",
            (_naive(first),),
        )
        dispatched = {row[0] for row in cur.fetchall()}
    done = Seeded()
    for k in range(hours, 0, -1):
        hour = story.hour(k)
        if _naive(hour) in seeded or _naive(hour) in dispatched:
            done.skipped += 1
            continue
        done.rows += story.seed_hour(k, inject)
        done.hours.append(hour)
        if progress and len(done.hours) % 12 == 0:
            progress(f"  seeded {len(done.hours)} hours ({time.monotonic() - started:.0f} s)")
    if inject:
        done.faults = {name: story.hour(k) for k, name in sorted(FAULT_HOURS.items(), reverse=True)}
    if done.hours:
        done.reports = story.daily_reports(done.hours[0])
    done.seconds = time.monotonic() - started
    return done


def sqlalchemy_url(mysql_url: str) -> str:
    """The ``mysql+pymysql://`` URL Great Expectations needs, for a ``mysql://`` one."""
    return "mysql+pymysql://" + mysql_url.split("://", 1)[1]


def main() -> int:
    import redis

    from crawlops.db import connect
    from crawlops.settings import dag_timezone

    for name, value in DEMO_SETTINGS.items():
        os.environ.setdefault(name, value)
    url = os.environ.get("CRAWLOPS_MYSQL_URL", "mysql://crawlops:crawlops@127.0.0.1:3306/crawl")
    conn = connect(url)
    r = redis.Redis(host="127.0.0.1", port=6379, db=int(os.environ.get("CRAWLOPS_REDIS_DB", "1")))
    try:
        done = seed(conn, r, Settings.load(), sa_url=sqlalchemy_url(url), tz=dag_timezone(), progress=print)
    finally:
        conn.close()
    print(f"demo history: {done.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
