"""Outcome surges: what the crawlers saw, judged every 5-minute run per crawl object and marketplace.

A block storm does not look like a failure to a task: Amazon answers a crawler it has
noticed with HTTP 200 and a robot-check page. Kit workers recognise those pages and count
every answer per crawl object, marketplace, outcome and reason (``crawlops.telemetry``);
this check folds the counts into ``amazon_crawl_outcome`` and judges the last
``surge_window_seconds``: the share of answers that came back blocked, failed for each
other reason, or empty, against its limit in ``[crawlers]`` and against the same crawl
object and marketplace's own history, so a marketplace where half the pages are usually
empty (keywords with fewer pages than ``max_pages``) stays quiet while one whose pages
suddenly come back blocked is named: "DE: 41 % of search_result pages blocked (robot
check) in the last 30 min, usual 0.4 %".

Repair: a marketplace in a block surge is throttled (``crawlops:throttle:<marketplace>``,
renewed by every run that still sees the surge, cleared by the first that does not), and
kit workers slow their requests to it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from crawlops import telemetry
from crawlops.db import Connection
from crawlops.findings import Finding, Level
from crawlops.names import SUPERVISION_DAG as SOURCE
from crawlops.queue import RedisClient
from crawlops.reasons import Reason
from crawlops.settings import CrawlerSettings, Settings
from crawlops.store import outcomes as store_outcomes

log = logging.getLogger(__name__)

CHECK = "outcome_surge"
EMPTY = "empty"  # the kind of an empty surge; every other kind is a failure reason
# Minutes folded from Redis beyond the judged window: a minute that was still counting when
# the last run folded it is folded again.
_REFOLD_MINUTES = 10
_WORDS = {Reason.BLOCKED.value: "blocked (robot check)", EMPTY: "answered empty"}


@dataclasses.dataclass
class Tally:
    """One crawl object and marketplace's answers over a span: by outcome, failures by reason."""

    answered: int = 0
    empty: int = 0
    failed: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.answered + self.empty + sum(self.failed.values())

    def count(self, kind: str) -> int:
        return self.empty if kind == EMPTY else self.failed.get(kind, 0)

    def kinds(self) -> list[str]:
        return [EMPTY, *sorted(self.failed)]

    def to_json(self) -> dict[str, Any]:
        total = self.total
        return {
            "total": total, "answered": self.answered, "empty": self.empty, "failed": dict(sorted(self.failed.items())),
            "shares": {k: round(self.count(k) / total, 4) for k in self.kinds()} if total else {},
        }  # fmt: skip


Key = tuple[str, str]  # crawl object, marketplace


def tallies(rows: Iterable[tuple[str, str, str, str, int]]) -> dict[Key, Tally]:
    """(crawl_object, marketplace, outcome, reason, elements) rows -> a ``Tally`` per crawl object and marketplace."""
    out: dict[Key, Tally] = {}
    for crawl_object, marketplace, outcome, reason, n in rows:
        tally = out.setdefault((crawl_object, marketplace), Tally())
        if outcome == telemetry.ANSWERED:
            tally.answered += n
        elif outcome == telemetry.EMPTY:
            tally.empty += n
        elif outcome == telemetry.FAILED:
            tally.failed[reason or Reason.UNKNOWN.value] = tally.failed.get(reason or Reason.UNKNOWN.value, 0) + n
    return out


@dataclasses.dataclass(frozen=True)
class Surge:
    crawl_object: str
    marketplace: str
    kind: str  # "empty" or a failure reason
    share: float
    count: int
    total: int
    usual: float | None  # the share over the history, None without enough of it
    limit: float


def limit_of(kind: str, limits: CrawlerSettings) -> float:
    if kind == EMPTY:
        return limits.empty_share_max
    return limits.blocked_share_max if kind == Reason.BLOCKED.value else limits.failure_share_max


def judge(now: dict[Key, Tally], history: dict[Key, Tally], limits: CrawlerSettings) -> list[Surge]:
    """The surges of the window: a share at or above its limit that is not usual for its crawl
    object and marketplace (with enough history, it must also reach ``surge_factor`` times the
    usual share). Pure: the thresholds are the settings'."""
    surges = []
    for key, tally in sorted(now.items()):
        total = tally.total
        if total < limits.surge_min_elements:
            continue
        past = history.get(key)
        past_total = past.total if past else 0
        for kind in tally.kinds():
            share = tally.count(kind) / total
            limit = limit_of(kind, limits)
            if share < limit or not tally.count(kind):
                continue
            usual = past.count(kind) / past_total if past and past_total >= limits.surge_min_history_elements else None
            if usual is not None and share < limits.surge_factor * usual:
                continue
            surges.append(Surge(key[0], key[1], kind, share, tally.count(kind), total, usual, limit))
    return surges


def breakdown(conn: Connection, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """What the crawlers saw over minutes in [start, end) (naive UTC): per crawl object and
    marketplace (``markets``) answered, empty, failed by reason and the shares; failures by
    reason over all (``failed_by_reason``); answers in all (``total``). The Crawl Ops page and
    the daily report both show this one computation."""
    rows = tallies(store_outcomes.totals(conn, start, end))
    markets = [{"crawl_object": o, "marketplace": m, **t.to_json()} for (o, m), t in sorted(rows.items())]
    by_reason: dict[str, int] = {}
    for tally in rows.values():
        for reason, n in tally.failed.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    return {
        "markets": markets,
        "failed_by_reason": dict(sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))),
        "total": sum(t.total for t in rows.values()),
    }


def fold(conn: Connection, r: RedisClient, until: dt.datetime, minutes: int) -> int:
    """Copy the kit's counts of the ``minutes`` minutes up to ``until`` from Redis into MySQL."""
    end = until.astimezone(dt.UTC).replace(second=0, microsecond=0)
    span = [end - dt.timedelta(minutes=n) for n in range(minutes, -1, -1)]
    counts = telemetry.read_outcomes(r, span)
    return store_outcomes.upsert_minutes(
        conn, [(c.minute, c.crawl_object, c.marketplace, c.outcome, c.reason, c.elements) for c in counts]
    )


def check_outcomes(
    conn: Connection, r: RedisClient, settings: Settings, reference: dt.datetime, *, dry_run: bool = False
) -> tuple[dict[str, Any], list[Finding]]:
    """Fold, judge the window ending at ``reference`` (a backfilled run judges its own past
    window from MySQL), throttle blocked marketplaces (not in a ``dry_run``, nor for a window
    in the past), and the findings."""
    limits = settings.crawlers
    ref = reference.astimezone(dt.UTC)
    wall = dt.datetime.now(dt.UTC)
    window = dt.timedelta(seconds=limits.surge_window_seconds)
    live = ref >= wall - dt.timedelta(minutes=_REFOLD_MINUTES)
    folded = fold(conn, r, min(ref, wall), limits.surge_window_seconds // 60 + _REFOLD_MINUTES) if live else 0
    naive = ref.replace(tzinfo=None)
    now = tallies(store_outcomes.totals(conn, naive - window, naive))
    history = tallies(store_outcomes.totals(conn, naive - dt.timedelta(days=limits.surge_history_days), naive - window))
    surges = judge(now, history, limits)
    throttled, cleared = _throttle(r, surges, now, limits, write=live and not dry_run)
    findings = [_finding(s, limits, throttled.get(s.marketplace), dry_run) for s in surges]
    details = {
        "window_minutes": limits.surge_window_seconds // 60,
        "folded": folded,
        "judged_live": live,
        "by_marketplace": {f"{o}/{m}": t.to_json() for (o, m), t in sorted(now.items())},
        "surges": [dataclasses.asdict(s) for s in surges],
        "throttled": throttled,
        "throttle_cleared": cleared,
    }
    return details, findings


def _throttle(
    r: RedisClient, surges: list[Surge], now: dict[Key, Tally], limits: CrawlerSettings, *, write: bool
) -> tuple[dict[str, float], list[str]]:
    """Throttle the marketplaces in a block surge; lift the throttle of those judged and found
    below the block limit. Returns (marketplace -> interval now in force, marketplaces cleared)."""
    blocked = sorted({s.marketplace for s in surges if s.kind == Reason.BLOCKED.value})
    judged: dict[str, Tally] = {}
    for (_, marketplace), tally in now.items():
        merged = judged.setdefault(marketplace, Tally())
        merged.answered += tally.answered
        merged.empty += tally.empty
        for reason, n in tally.failed.items():
            merged.failed[reason] = merged.failed.get(reason, 0) + n
    calm = [
        m for m, t in judged.items()
        if m not in blocked and t.total >= limits.surge_min_elements
        and t.count(Reason.BLOCKED.value) / t.total < limits.blocked_share_max
    ]  # fmt: skip
    current = telemetry.throttles(r, sorted(set(calm) | set(blocked)))
    cleared = sorted(m for m in calm if m in current)
    intervals = {m: limits.throttle_interval_seconds for m in blocked}
    if write:
        telemetry.set_throttles(r, intervals, ttl_seconds=limits.throttle_ttl_seconds)
        telemetry.clear_throttles(r, cleared)
        if intervals or cleared:
            log.warning("throttled marketplaces: %s; throttle lifted: %s", intervals or "none", cleared or "none")
    return (intervals if write else {m: current[m] for m in blocked if m in current}), (cleared if write else [])


def _finding(surge: Surge, limits: CrawlerSettings, interval: float | None, dry_run: bool) -> Finding:
    what = _WORDS.get(surge.kind, f"failed ({surge.kind})")
    usual = f"usual {surge.usual:.1%}" if surge.usual is not None else "no history to compare"
    title = (
        f"{surge.marketplace}: {surge.share:.0%} of {surge.crawl_object} pages {what} in the last "
        f"{limits.surge_window_seconds // 60} min, {usual}"
    )
    blocked = surge.kind == Reason.BLOCKED.value
    if blocked and interval:
        action = (
            f"throttled {surge.marketplace}: each worker sends one request every {interval:g} s there for "
            f"{limits.throttle_ttl_seconds // 60} min, renewed while the share stays at or above {surge.limit:.0%}; "
            "blocked pages are retried"
        )
    elif blocked:
        action = "would throttle the marketplace (dry run or a past window); blocked pages are retried"
    elif surge.kind == EMPTY:
        action = "none automatic: check the parser's no-results test and the keywords' page counts"
    else:
        action = f"failed pages are retried; check what answers {surge.kind}"
    return Finding(
        Level.ERROR if blocked else Level.WARNING,
        SOURCE,
        CHECK,
        title,
        subject=f"{surge.crawl_object}/{surge.marketplace}/{surge.kind}",
        details={**dataclasses.asdict(surge), "dry_run": dry_run},
        action=action,
    )
