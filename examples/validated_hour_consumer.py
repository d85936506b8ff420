"""An example consumer: a DAG of a data team that runs when an hour of search results has
passed its suite (or was repaired), and never for a failed hour.

Copy it into your DAGs folder (the package's plugins folder must be Airflow's, as in
``make demo``). Each run gets the hours that triggered it in ``triggering_asset_events``: one
event per validated hour, whose ``extra`` holds ``table``, ``crawl_object``, ``hour_start``,
``hour_end`` (ISO, UTC), ``verdict`` (``passed`` or ``repaired``), ``quality_score`` and ``rows``.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from crawlops_airflow.assets import validated_hours

SEARCH_HOURS = validated_hours("amazon_search_result")


@dag(
    dag_id="example_validated_search_hours",
    schedule=SEARCH_HOURS,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "crawl", "consumer"],
)
def example_validated_search_hours():
    @task
    def load_hours(**context) -> list[dict]:
        """The validated hours of this run: where a real consumer would load them downstream."""
        hours = []
        for event in context["triggering_asset_events"][SEARCH_HOURS]:
            extra = dict(event.extra)
            print(f"{extra['table']} {extra['hour_start']}..{extra['hour_end']}: {extra['verdict']}, "
                  f"quality {extra['quality_score']}, {extra['rows']} rows")  # fmt: skip
            hours.append(extra)
        return hours

    load_hours()


example_validated_search_hours()
