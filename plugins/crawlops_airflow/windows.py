"""The window a task works on, from its context: the run's data interval, an hour picked in
the trigger form, the hour that closes with the run, the day a report covers."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from crawlops.model import Window, day_ending, hour_window_starting, last_complete_hour, last_complete_interval
from crawlops.names import HOUR_PARAMS, PERIOD_MINUTES
from crawlops.settings import dag_timezone

log = logging.getLogger(__name__)


def period_minutes(context: Mapping[str, Any]) -> int:
    """The schedule period of the context's DAG (``crawlops.names.PERIOD_MINUTES``; else an hour)."""
    dag = context.get("dag")
    dag_id = dag.dag_id if dag is not None else getattr(context.get("ti"), "dag_id", None)
    return PERIOD_MINUTES.get(dag_id or "", 60)


def run_window(context: Mapping[str, Any], *, minutes: int | None = None) -> Window:
    """The window a run works on (``minutes``: default the DAG's period).

    1. An hour a person picked in the trigger form (``interval_start`` for dispatch,
       ``check_hour`` for supervision): the period that closes that hour.
    2. The run's data interval (scheduled runs, backfills, manual runs given a logical date).
    3. A manual run with no logical date has no data interval: it takes the last complete
       interval before the run's ``run_after``, which is stored on the run, so clearing and
       re-running it works on the same window again.
    """
    tz = dag_timezone()
    minutes = minutes or period_minutes(context)
    for param in HOUR_PARAMS:
        requested = requested_hour(context, param)
        if requested is not None:
            return Window(requested.end - dt.timedelta(minutes=min(minutes, 60)), requested.end)
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and end > start:
        return Window(start, end)
    run_after = context["dag_run"].run_after
    window = last_complete_interval(run_after, tz, minutes=minutes)
    log.info("run has no data interval; using the last complete interval before run_after %s: %s", run_after, window)
    return window


def requested_hour(context: Mapping[str, Any], param: str) -> Window | None:
    """The hour a person picked in the trigger form (``param``), or None. A value that is not an
    ISO 8601 date-time on the hour (in the DAG timezone) fails the task at once, without
    retries, naming the param: retrying cannot fix it."""
    from airflow.sdk.exceptions import AirflowFailException

    value = (context.get("params") or {}).get(param)
    if not value:
        return None
    try:
        return hour_window_starting(dt.datetime.fromisoformat(str(value)), dag_timezone())
    except ValueError as exc:
        raise AirflowFailException(f"param {param}={value!r} is not an hour: {exc}") from None


def closing_hour(context: Mapping[str, Any], hour_param: str | None = None) -> Window:
    """The hour an hourly check judges: the one picked with ``hour_param`` (or a standard hour
    param) in the trigger form, else the last complete hour at the end of the run's window,
    which is the hour that closes with it in the run that closes an hour."""
    picked = requested_hour(context, hour_param) if hour_param else None
    return picked or last_complete_hour(run_window(context).end, dag_timezone())


def report_day(context: Mapping[str, Any]) -> Window:
    """The day a daily report covers: the day up to the end of the run's window (the whole
    day in the run that closes it); with an hour picked in the form, that hour's whole day."""
    tz = dag_timezone()
    window = run_window(context)
    if any((context.get("params") or {}).get(p) for p in HOUR_PARAMS):
        local = window.start.astimezone(ZoneInfo(tz))
        midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=ZoneInfo(tz))
        window = Window(midnight - dt.timedelta(minutes=5), midnight)
    return day_ending(window, tz)


WINDOWS: dict[str, Callable[[Mapping[str, Any]], Window]] = {
    "run": run_window,
    "closing_hour": closing_hour,
    "day": report_day,
}
