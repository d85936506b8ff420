"""The suite file and its parameters.

Each crawl object has a suite: the JSON file ``include/expectations/<results_table>.json``
(:func:`suite_path_for`) whose thresholds are GE suite parameters (``{"$PARAMETER": "name"}``),
filled at run time from the settings and the window by :func:`suite_parameters`, so the
numbers live only in ``include/config/crawlops.toml``. Reading the file needs no Great
Expectations.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import Any

from crawlops import objects
from crawlops.model import Window
from crawlops.objects.product_detail import CURRENCIES
from crawlops.settings import Settings, include_dir

#: The suite of the first crawl object, ``search_result`` (``suite_path_for`` names any object's).
DEFAULT_SUITE_PATH = include_dir() / "expectations" / objects.get(objects.FIRST).suite_file

#: Columns the ``search_result`` suite requires to be filled (``required_columns`` reads any suite's).
REQUIRED_COLUMNS = ("task_id", "keyword", "marketplace", "asin", "title", "price", "page", "position")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def check_identifier(name: str, what: str) -> str:
    """``name`` if it is a plain SQL identifier (it is put into SQL text); ValueError otherwise."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid {what} name {name!r}")
    return name


def suite_path(suite: Path | str) -> Path:
    """A suite file: a path as given when absolute, else a file in ``include/expectations/``."""
    path = Path(suite)
    return path if path.is_absolute() else include_dir() / "expectations" / path


def suite_path_for(crawl_object: str | objects.CrawlObject) -> Path:
    """The suite file of a crawl object (by name or itself): its ``suite_file`` in ``include/expectations/``."""
    if isinstance(crawl_object, str):
        crawl_object = objects.get(crawl_object)
    return suite_path(crawl_object.suite_file)


def load_suite(path: Path | str = DEFAULT_SUITE_PATH) -> dict[str, Any]:
    """The suite file as a dict, checked for what the rest of this module relies on."""
    try:
        suite = json.loads(Path(path).read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(suite, dict) or not suite.get("name") or not isinstance(suite.get("expectations"), list):
        raise ValueError(f"{path}: not an expectation suite (needs 'name' and 'expectations')")
    names = []
    for i, exp in enumerate(suite["expectations"]):
        name = (exp.get("meta") or {}).get("name")
        if not exp.get("type") or not name:
            raise ValueError(f"{path}: expectation #{i} needs a 'type' and a meta 'name'")
        names.append(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate expectation names {duplicates}")
    return suite


def suite_parameters(
    settings: Settings, window: Window, crawl_object: str | objects.CrawlObject | None = None
) -> dict[str, Any]:
    """Values for the ``$PARAMETER`` placeholders of every shipped suite, from the settings and
    the window; each suite reads the ones it names.

    ``crawl_object`` (a name or the object): its own quality settings are applied first, as
    its checks read them (``settings.for_object`` with its registry defaults, which gives
    settings already made so the same values). Without it ``settings`` are taken as given.

    ``min_rows`` is ``min_records_per_hour`` scaled to the window's length (an hour: 1000 for
    search results). ``required_mostly`` is ``quality.required_mostly`` and ``validity_mostly``
    ``1 - error_rate_max`` (0.99): a required column may be null, and each validity rule may
    fail, in at most that share of the rows. Datetimes are naive UTC text, the way the
    DATETIME columns hold them; GE parses them when it compares them with a datetime metric.

    For ``product_detail``: ``currency_pairs``, the [marketplace, currency] pairs of
    ``CURRENCIES`` for ``dispatch.marketplaces`` (what quarantine's currency rule accepts).
    For ``product_review``: ``review_date_max``, the window's last UTC day + 1 day: quarantine
    judges ``review_date > create_time + INTERVAL 1 DAY``; review_date being a DATE, a row
    created on day D passes exactly when review_date <= D + 1, so over an hour window (one
    day) the max is exact, over a longer one it is that of its last day.
    """
    if crawl_object is not None:
        if isinstance(crawl_object, str):
            crawl_object = objects.get(crawl_object)
        settings = settings.for_object(crawl_object.name, crawl_object.quality_defaults)
    quality = settings.quality
    start, end = window.naive()
    validity = round(1.0 - quality.error_rate_max, 10)
    hours = (window.end - window.start) / dt.timedelta(hours=1)
    marketplaces = list(settings.dispatch.marketplaces)
    last_day = (end - dt.timedelta(microseconds=1)).date()
    return {
        "min_rows": math.ceil(quality.min_records_per_hour * hours),
        "required_mostly": quality.required_mostly,
        "validity_mostly": validity,
        "marketplaces": marketplaces,
        "window_end": end.isoformat(sep=" "),
        "window_start": start.isoformat(sep=" "),
        "currency_pairs": [[m, CURRENCIES[m]] for m in marketplaces if m in CURRENCIES],
        "review_date_max": (last_day + dt.timedelta(days=1)).isoformat(),
    }


def suite_parameter_names(suite: dict[str, Any]) -> set[str]:
    """Every ``$PARAMETER`` name the suite uses."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "$PARAMETER" in value:
                found.add(value["$PARAMETER"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for exp in suite["expectations"]:
        walk(exp.get("kwargs", {}))
    return found


def required_columns(suite: dict[str, Any]) -> list[str]:
    """Columns the suite requires (its ``expect_column_values_to_not_be_null`` rules), in order."""
    columns = [
        str(exp["kwargs"]["column"])
        for exp in suite["expectations"]
        if exp["type"] == "expect_column_values_to_not_be_null" and (exp.get("kwargs") or {}).get("column")
    ]
    return [check_identifier(c, "column") for c in dict.fromkeys(columns)]


def expected_columns(suite: dict[str, Any]) -> dict[str, str]:
    """The suite's ``meta.expected_columns``: column -> loose type, for schema-drift checks."""
    return dict((suite.get("meta") or {}).get("expected_columns") or {})
