"""Freshness: the age of the newest row where crawling is expected, at the run's own time."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from crawlops import store
from crawlops.db import Connection
from crawlops.findings import Finding, Level
from crawlops.names import SUPERVISION_DAG as SOURCE
from crawlops.planning import CRAWL_OBJECTS
from crawlops.settings import Settings
from crawlops.store import results

log = logging.getLogger(__name__)


def check_freshness(
    conn: Connection, settings: Settings, reference: dt.datetime
) -> tuple[dict[str, Any], list[Finding]]:
    """Is data still arriving where crawling is expected? Judged at ``reference`` (the run's time).

    Crawling is expected for a crawl object, and for each marketplace in its tasks, while
    it has tasks that were pushed by ``reference`` and are open or finished within
    ``freshness_seconds`` before it. The age of the newest row (``create_time`` at or
    before ``reference``) is counted from the later of that row and the first push of the
    expected tasks, so a crawl resuming after an idle spell is not stale at once. Older
    than ``freshness_seconds`` (the crawl object's own, ``Settings.for_object``): an ERROR.
    Nothing expected (an idle crawl): nothing judged.
    """

    limits = {name: settings.for_object(name, o.quality_defaults).quality.freshness_seconds
              for name, o in CRAWL_OBJECTS.items()}  # fmt: skip
    ref = reference.astimezone(dt.UTC).replace(tzinfo=None)
    since = ref - dt.timedelta(seconds=max([settings.quality.freshness_seconds, *limits.values()]))
    expected: dict[str, list[tuple[str, dt.datetime]]] = {}
    for task_id, task_type, pushed_at in store.pushed_and_live(conn, until=ref, finished_since=since):
        expected.setdefault(str(task_type), []).append((str(task_id), pushed_at))
    judged: dict[str, Any] = {}
    findings: list[Finding] = []
    for crawl_object, tasks in sorted(expected.items()):
        if crawl_object not in CRAWL_OBJECTS:
            continue  # tasks of an object this process no longer knows
        table, limit = CRAWL_OBJECTS[crawl_object].results_table, limits[crawl_object]
        started = min(pushed for _, pushed in tasks)
        markets = store.manifest_marketplaces(conn, [t for t, _ in tasks])
        scopes: list[tuple[str, str | None, Any]] = [(crawl_object, None, results.newest_row_time(conn, table, ref))]
        scopes += [(crawl_object, m, results.newest_row_time(conn, table, ref, m)) for m in markets]
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
    return {"limit_seconds": settings.quality.freshness_seconds, "limits": limits, "scopes": judged}, findings
