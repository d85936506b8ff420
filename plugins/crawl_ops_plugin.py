"""Registers the Crawl Ops page with Airflow: its FastAPI app and its place in the navigation,
and the Prometheus metrics app beside it.

The API server mounts the app at ``/crawl-ops``; the UI lists "Crawl Ops" in its navigation
and shows the page inside the UI (route ``/plugin/crawl-ops``) with the user's session.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from crawlops_airflow import metrics
from crawlops_airflow.dashboard import URL_PREFIX, create_app


class CrawlOpsPlugin(AirflowPlugin):
    name = "crawl_ops"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "Crawl Ops"},
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Crawl Ops",
            "href": URL_PREFIX.lstrip("/") + "/",  # relative: works when Airflow is served under a path
            "url_route": "crawl-ops",
            "destination": "nav",
        }
    ]


class CrawlOpsMetricsPlugin(AirflowPlugin):
    """``/crawl-ops-metrics/metrics`` for Prometheus, behind a scrape token (``crawlops_airflow.metrics``)."""

    name = "crawl_ops_metrics"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": metrics.create_metrics_app(), "url_prefix": metrics.URL_PREFIX, "name": "Crawl Ops metrics"},
    ]
