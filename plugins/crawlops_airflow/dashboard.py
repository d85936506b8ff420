"""The Crawl Ops page: a FastAPI app the Airflow API server mounts at ``/crawl-ops``.

``GET /crawl-ops/`` is one self-contained HTML page (inline CSS and script, charts drawn
as SVG in the browser, nothing fetched from the internet) that reads the JSON endpoints
under ``/crawl-ops/api/``; their schema is at ``/crawl-ops/openapi.json``.

Same login as the Airflow UI: every route needs the Airflow session (the ``_token``
cookie the UI sets at login, or an ``Authorization: Bearer`` API token) of a user who
may read the runs of both crawl DAGs. Without a token the answer is 401, with an invalid
one or without that permission 403. The numbers come from ``crawlops.dashboard``; the
connections are the DAGs' own (``crawl_mysql``, ``crawl_redis``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from crawlops import dashboard
from crawlops.settings import dag_timezone

URL_PREFIX = "/crawl-ops"
PAGE = Path(__file__).with_name("static") / "crawl_ops.html"


def _airflow_reader() -> Any:
    """The dependency that lets a request in: an Airflow user allowed to read both DAGs' runs."""
    from crawlops_airflow.access import crawl_dag_access

    return crawl_dag_access("GET", "read")


# ---------------------------------------------------------------------------------------
# Response models (they document the endpoints in the OpenAPI schema)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Model):
    start: dt.datetime
    end: dt.datetime


class Queue(_Model):
    open_tasks: int
    queued: int | None
    failed_waiting: int | None


class Overview(_Model):
    range: Range
    timezone: str
    queues: dict[str, Queue]
    queued_total: int | None
    redis_error: str | None
    status_counts: dict[str, int]
    tasks_total: int
    crawl_objects: list[str] = []


class TasksByHour(_Model):
    hours: list[dt.datetime]
    outcomes: list[str]
    series: dict[str, list[int]]
    totals: dict[str, int]


class QualityCell(BaseModel):
    status: str
    failures: list[str]
    run: str | None = None
    evaluated: int | None = None
    failed: int | None = None
    row_count: int | None = None
    findings: int | None = None
    quality_score: float | None = None


class QualityStrip(_Model):
    name: str
    kind: str
    cells: list[QualityCell | None]
    passed: int
    failed: int
    not_run: int


class QualityByHour(_Model):
    hours: list[dt.datetime]
    strips: list[QualityStrip]


class VolumeHour(_Model):
    hour: dt.datetime
    rows: int | None
    source: str
    history_points: int | None
    mean: float | None
    band_low: float | None
    band_high: float | None
    anomalous: bool | None
    direction: str | None
    outside: bool | None = None


class VolumeByHour(_Model):
    table: str
    hours: list[VolumeHour]
    total_rows: int
    missing_hours: int
    anomalous_hours: int


class Alert(_Model):
    id: int
    level: str
    source: str
    check_name: str
    subject: str
    title: str
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    created_at: dt.datetime | None
    dag_id: str | None
    dag_run_id: str | None
    run: str | None
    delivery_status: str
    status: str = Field(description="open, acknowledged, expected, closed, or withdrawn (a re-run no longer made it)")
    occurrences: int = Field(description="Runs that made this finding while it was open")
    last_seen: dt.datetime | None
    owner: str | None = Field(description="The owner of the route that sent it")
    acted_by: str | None = Field(description="Who acknowledged it or marked it expected")
    acted_at: dt.datetime | None
    action_note: str | None
    crawl_object: str | None
    marketplace: str | None
    escalated_at: dt.datetime | None


class Alerts(_Model):
    by_level: dict[str, int]
    total: int
    alerts: list[Alert]
    truncated: bool


class LatestReport(_Model):
    report_date: dt.date
    created_at: dt.datetime | None
    dag_run_id: str | None
    run: str | None
    title: str | None
    tasks: dict[str, Any] | None
    quality: dict[str, int | None]
    volume: dict[str, int | None]
    alerts: dict[str, int] | None


class MarketOutcomes(_Model):
    crawl_object: str
    marketplace: str
    total: int
    answered: int
    empty: int
    failed: dict[str, int]
    shares: dict[str, float]


class CrawlOutcomes(_Model):
    markets: list[MarketOutcomes]
    failed_by_reason: dict[str, int]
    total: int


class Worker(BaseModel):  # the heartbeat's facts, as the worker kit wrote them
    worker_id: str
    last_seen: dt.datetime
    alive: bool
    host: str | None = None
    pid: str | None = None
    objects: str | None = None
    held: str | None = None
    answered: str | None = None
    empty: str | None = None
    failed: str | None = None
    started: str | None = None


class Fleet(_Model):
    workers: list[Worker]
    alive: int
    silence_seconds: int


class StoryFault(_Model):
    hour: dt.datetime
    fault: str
    title: str | None
    story: str | None


class Story(_Model):
    faults: list[StoryFault]


# ---------------------------------------------------------------------------------------
# Dependencies


def _mysql() -> Iterator[Any]:
    from crawlops_airflow.hooks.mysql import CrawlMySqlHook

    with CrawlMySqlHook().session() as conn:
        yield conn


REDIS_TIMEOUT_SECONDS = 0.5


def impatient_redis() -> Iterator[Any]:
    """The ``crawl_redis`` client, impatient: a page must not wait out redis-py's retries when Redis is down
    (the overview then answers from MySQL alone and says so)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from crawlops_airflow.hooks.redis import CrawlRedisHook

    client = CrawlRedisHook().get_conn()
    client.connection_pool.connection_kwargs.update(
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        yield client
    finally:
        client.close()


def _span(
    start: Annotated[
        dt.datetime | None, Query(description="Range start (ISO 8601; UTC if no offset). Default: end - 24 h.")
    ] = None,
    end: Annotated[
        dt.datetime | None, Query(description="Range end (ISO 8601; UTC if no offset). Default: now.")
    ] = None,
) -> dashboard.HourRange:
    try:
        return dashboard.HourRange.of(_aware(start), _aware(end))
    except dashboard.RangeError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    except (OverflowError, ValueError) as exc:  # e.g. year 1 or 9999 shifted past the calendar's ends
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unusable range: {exc}") from exc


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


Conn = Annotated[Any, Depends(_mysql)]
Span = Annotated[dashboard.HourRange, Depends(_span)]


def create_app(reader: Any | None = None, editor: Any | None = None) -> FastAPI:  # noqa: C901 - a function per route
    """The app; ``reader`` / ``editor`` authorize reading and acting (Airflow's auth manager
    unless a test swaps them)."""
    from crawlops_airflow import actions_api

    app = FastAPI(
        title="Crawl Ops",
        version="1.0",
        description="Queues, tasks, data quality, volume and alerts of the Amazon crawl control plane.",
        dependencies=[Depends(reader or _airflow_reader())],
        # FastAPI's own schema and docs routes would skip the app's dependencies, and Swagger UI
        # loads from a CDN: the schema is served below, behind the login like everything else.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    app.include_router(actions_api.router(editor or actions_api.airflow_editor(), _mysql))

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text("utf-8"), headers={"Cache-Control": "no-store"})

    @app.get("/api/overview", response_model=Overview, summary="Queue depth now and task counts per status")
    def overview(span: Span, conn: Conn, r: Annotated[Any, Depends(impatient_redis)]) -> dict[str, Any]:
        return {**dashboard.overview(conn, r, span), "timezone": dag_timezone()}

    @app.get("/api/tasks/hourly", response_model=TasksByHour, summary="Tasks per hour of their window by outcome")
    def tasks_hourly(span: Span, conn: Conn) -> dict[str, Any]:
        return dashboard.tasks_by_hour(conn, span)

    @app.get("/api/quality/hourly", response_model=QualityByHour, summary="Suite and check verdicts per hour")
    def quality_hourly(span: Span, conn: Conn) -> dict[str, Any]:
        return dashboard.quality_by_hour(conn, span)

    @app.get("/api/volume/hourly", response_model=VolumeByHour, summary="Result rows per hour against their band")
    def volume_hourly(
        span: Span, conn: Conn, crawl_object: Annotated[str, Query(description="a crawl object")] = "search_result"
    ) -> dict[str, Any]:
        from crawlops import objects
        from crawlops_airflow.variables import settings_or_defaults

        if crawl_object not in objects.REGISTRY:
            raise HTTPException(status_code=422, detail=f"unknown crawl object {crawl_object!r}")
        entry = objects.get(crawl_object)
        settings = settings_or_defaults().for_object(crawl_object, entry.quality_defaults)
        return dashboard.volume_by_hour(conn, span, table=entry.results_table, settings=settings.quality)

    @app.get(
        "/api/outcomes",
        response_model=CrawlOutcomes,
        summary="What the crawlers saw in the range per crawl object and marketplace: answered, empty, failed",
    )
    def outcomes(span: Span, conn: Conn) -> dict[str, Any]:
        return dashboard.crawl_outcomes(conn, span)

    @app.get("/api/fleet", response_model=Fleet, summary="Kit workers seen in the last day, from their heartbeats")
    def fleet(r: Annotated[Any, Depends(impatient_redis)]) -> dict[str, Any]:
        from crawlops_airflow.variables import settings_or_defaults

        return dashboard.fleet(r, silence_seconds=settings_or_defaults().crawlers.worker_silence_seconds)

    @app.get("/api/alerts", response_model=Alerts, summary="Alerts raised in the range by level, newest first")
    def alerts(
        span: Span, conn: Conn, limit: Annotated[int, Query(ge=1, le=1000)] = dashboard.ALERT_LIMIT
    ) -> dict[str, Any]:
        return dashboard.alerts(conn, span, limit=limit)

    @app.get(
        "/api/story",
        response_model=Story,
        summary="The faults make demo injected into its seeded history (none outside a demo database)",
    )
    def story(span: Span, conn: Conn) -> dict[str, Any]:
        return dashboard.story(conn, span)

    @app.get(
        "/api/report/latest",
        response_model=LatestReport,
        summary="The newest daily report's headline numbers",
        responses={404: {"description": "No daily report yet"}},
    )
    def report_latest(conn: Conn) -> dict[str, Any]:
        report = dashboard.latest_report(conn)
        if report is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no daily report yet")
        return report

    @app.get("/report/latest", response_class=HTMLResponse, summary="The newest daily report as its HTML page")
    def report_latest_html(conn: Conn) -> HTMLResponse:
        html = dashboard.latest_report_html(conn)
        if html is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no daily report yet")
        return HTMLResponse(html)

    return app
