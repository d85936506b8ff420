"""``/crawl-ops-metrics/metrics``: the package's numbers for Prometheus, served by the API server.

A small FastAPI app of its own (a plugin beside the Crawl Ops page's), because Prometheus
scrapes with a bearer token, not an Airflow login: the scrape must carry
``Authorization: Bearer <token>`` with the token of the environment variable
``CRAWLOPS_METRICS_TOKEN`` (Prometheus: ``authorization: {credentials_file: ...}``); without
the variable every scrape is refused (403), a wrong or missing token gets 401. The values
come from ``crawlops.metrics`` (the tables and Redis, read at scrape time), rendered in the
Prometheus text format by ``prometheus-client``, plus how long ago each DAG last succeeded
and the age of the scheduler's, dag-processor's and triggerer's newest heartbeat (Airflow's own
metadata: the watchdog the shipped alert rules use). A failing read answers
``crawlops_scrape_error 1`` with what could be read, never a 500 without numbers.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Response, status

from crawlops.names import DISPATCH_DAG, SUPERVISION_DAG

URL_PREFIX = "/crawl-ops-metrics"
TOKEN_ENV = "CRAWLOPS_METRICS_TOKEN"  # noqa: S105 - the variable's name, not a secret
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

log = logging.getLogger(__name__)


def _authorize(authorization: str | None) -> None:
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"metrics are off: set {TOKEN_ENV} on the API server")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


def dag_success_ages(now: dt.datetime) -> dict[str, float]:
    """Seconds since each of the package's DAGs last had a successful run (Airflow's metadata)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import func, select

    ages: dict[str, float] = {}
    with create_session() as session:
        query = (
            select(DagRun.dag_id, func.max(DagRun.end_date))
            .where(DagRun.dag_id.in_([DISPATCH_DAG, SUPERVISION_DAG]), DagRun.state == DagRunState.SUCCESS)
            .group_by(DagRun.dag_id)
        )
        for dag_id, ended in session.execute(query):
            if ended is not None:
                ages[str(dag_id)] = max((now - ended).total_seconds(), 0.0)
    return ages


COMPONENTS = {"SchedulerJob": "scheduler", "DagProcessorJob": "dag_processor", "TriggererJob": "triggerer"}


def heartbeat_ages(now: dt.datetime) -> dict[str, float]:
    """Seconds since the newest heartbeat of each Airflow component that writes one (the
    scheduler, the dag-processor, the triggerer: Airflow's ``job`` table, index ``job_type_heart``).
    A component that stopped, cleanly or not, stops heartbeating: its age grows."""
    from airflow.jobs.job import Job
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    ages: dict[str, float] = {}
    with create_session() as session:
        query = select(Job.job_type, func.max(Job.latest_heartbeat)).where(Job.job_type.in_(list(COMPONENTS)))
        for job_type, beat in session.execute(query.group_by(Job.job_type)):
            if beat is not None:
                ages[COMPONENTS[str(job_type)]] = max((now - beat).total_seconds(), 0.0)
    return ages


def render(families: list[Any]) -> bytes:
    """The families (``crawlops.metrics.Family``) in the Prometheus text format."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    class Collector:
        def collect(self) -> Iterator[Any]:
            for family in families:
                gauge = GaugeMetricFamily(family.name, family.help, labels=list(family.labels))
                for labels, value in family.samples:
                    gauge.add_metric(list(labels), value)
                yield gauge

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry)


def scrape() -> list[Any]:
    """Every family: the package's (MySQL, Redis), the DAGs' last successes, and whether all was read."""
    from crawlops import metrics
    from crawlops_airflow.dashboard import impatient_redis
    from crawlops_airflow.hooks.mysql import CrawlMySqlHook
    from crawlops_airflow.variables import settings_or_defaults

    now = dt.datetime.now(dt.UTC)
    failed = False
    families: list[Any] = []
    try:
        with CrawlMySqlHook().session() as conn:
            redis_clients: Any = impatient_redis()
            try:
                silence = settings_or_defaults().crawlers.worker_silence_seconds
                families += metrics.collect(conn, next(redis_clients), now=now, silence_seconds=silence)
            finally:
                redis_clients.close()
    except Exception as exc:
        log.warning("metrics: the package's tables could not be read: %s", exc)
        failed = True
    ages = metrics.Family("crawlops_dag_last_success_age_seconds", "Seconds since the DAG's last successful run",
                          ("dag_id",))  # fmt: skip
    beats = metrics.Family("crawlops_airflow_heartbeat_age_seconds", "Seconds since the newest heartbeat of the "
                           "Airflow component (scheduler, dag_processor, triggerer)", ("component",))  # fmt: skip
    try:
        for dag_id, age in sorted(dag_success_ages(now).items()):
            ages.add(age, dag_id)
        for component, age in sorted(heartbeat_ages(now).items()):
            beats.add(age, component)
    except Exception as exc:
        log.warning("metrics: Airflow's runs could not be read: %s", exc)
        failed = True
    error = metrics.Family("crawlops_scrape_error", "1 when part of the scrape could not be read", ())
    error.add(1.0 if failed else 0.0)
    return [*families, ages, beats, error]


def create_metrics_app() -> FastAPI:
    app = FastAPI(title="Crawl Ops metrics", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/metrics", include_in_schema=False)
    def metrics(authorization: str | None = Header(default=None)) -> Response:
        _authorize(authorization)
        return Response(render(scrape()), media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    return app
