"""Which crawl objects the hourly checks judge for an hour."""

from __future__ import annotations

import datetime as dt

from crawlops.db import Connection
from crawlops.model import Window
from crawlops.planning import CRAWL_OBJECTS
from crawlops.settings import Settings
from crawlops.store import config, tasks

#: Tasks this far before the hour still make their object one the hour's checks judge.
LOOKBACK = dt.timedelta(days=1)


def objects_to_check(conn: Connection, settings: Settings, window: Window) -> list[str]:
    """The crawl objects in use for ``window``: enabled in settings and registered, with an
    enabled config row now or a task whose interval started in the day before the window's
    end (so a backfill still checks an object whose rows were since disabled). An object a
    team does not crawl is never judged (its empty table would fail every hour's suite)."""
    start, end = window.naive()
    used = config.enabled_crawl_objects(conn) | tasks.task_types_between(conn, start - LOOKBACK, end)
    return [name for name in settings.dispatch.crawl_objects if name in CRAWL_OBJECTS and name in used]
