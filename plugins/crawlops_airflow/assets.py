"""Assets for validated hours: data consumers schedule their own DAGs on "this hour of this
table passed its suite".

``validate_results`` declares the alias ``VALIDATED_HOURS`` as its outlet and, when the hour
it judged passed (or was repaired: failed first, passed on a later run), adds one event to the
results table's asset, ``validated_hours(table)``, with the hour, the verdict and the quality
score in its ``extra``. A failed hour fails the task and emits nothing. A consumer names the
asset the same way (``examples/validated_hour_consumer.py``)::

    from crawlops_airflow.assets import validated_hours

    @dag(schedule=validated_hours("amazon_search_result"))
    def my_report(): ...

and reads the hour from ``triggering_asset_events`` (each event's ``extra``).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetAlias

ALIAS = "crawlops_validated_hours"
VALIDATED_HOURS = AssetAlias(ALIAS)
VERDICTS_THAT_PUBLISH = ("passed", "repaired")


def validated_hours(table: str) -> Asset:
    """The asset whose events are a results table's hours that passed their suite.

    ``x-crawlops`` is a custom scheme (Airflow leaves ``x-`` URIs as they are): the asset is the
    table's stream of validated hours, the same name in every deployment, not a connection's
    host and port.
    """
    return Asset(name=f"crawlops.validated_hours.{table}", uri=f"x-crawlops://validated-hours/{table}")


def validated_hour_extra(
    *, table: str, crawl_object: str | None, window: Any, verdict: str, quality_score: float | None, rows: int | None
) -> dict[str, Any]:
    """What an event tells its consumer: the table and object, the hour (ISO, UTC), the verdict,
    the quality score and the rows validated."""
    return {
        "table": table,
        "crawl_object": crawl_object,
        "hour_start": window.start.isoformat(),
        "hour_end": window.end.isoformat(),
        "verdict": verdict,
        "quality_score": quality_score,
        "rows": rows,
    }
