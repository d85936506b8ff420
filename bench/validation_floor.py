"""The validation benchmark's floor and the tests' oracle: every count the shipped suite
computes, in ONE plain SQL statement, and the same numbers read off a validation report.

Not part of the deployed package: nothing but ``bench.validation_bench`` and the tests uses it.
"""

from __future__ import annotations

from typing import Any

from crawlops.db import Connection
from crawlops.model import Window
from crawlops.settings import Settings
from crawlops.validation import REQUIRED_COLUMNS, ValidationReport, check_identifier

#: The compound key the suite requires to be unique.
RESULT_KEY = ("task_id", "keyword", "marketplace", "page", "position")

#: The suite's asin rule; a test keeps the two equal. ``(?-i:...)``: MariaDB/MySQL REGEXP
#: follows the column collation, and utf8mb4_unicode_ci would accept lower-case ASINs.
ASIN_REGEX = "(?-i:^B0[0-9A-Z]{8}$)"
RATING_RANGE = (0, 5)


def floor_counts(
    conn: Connection,
    table: str,
    window: Window,
    *,
    marketplaces: tuple[str, ...] | list[str] | None = None,
    asin_regex: str = ASIN_REGEX,
    window_column: str = "create_time",
) -> dict[str, Any]:
    """Every count the suite computes, for the rows of ``window``, in ONE SQL statement.

    Reads the window through the ``create_time`` index. Keys: ``rows``, ``null_<column>``
    for each required column, ``price_negative``, ``rating_out_of_range``, ``asin_invalid``,
    ``marketplace_unknown``, ``duplicate_rows`` (rows whose (task_id, keyword, marketplace, page, position)
    occurs more than once, rows with the whole key null left out, as GE counts them).
    Nulls are not counted as invalid by the validity rules.
    """
    check_identifier(table, "table")
    check_identifier(window_column, "column")
    if marketplaces is None:
        marketplaces = Settings.load().dispatch.marketplaces
    marketplaces = list(marketplaces)
    if not marketplaces:
        raise ValueError("marketplaces must not be empty")
    key = ", ".join(f"`{c}`" for c in RESULT_KEY)
    key_all_null = " AND ".join(f"`{c}` IS NULL" for c in RESULT_KEY)
    columns = ", ".join(f"`{c}`" for c in dict.fromkeys((*REQUIRED_COLUMNS, "rating", window_column)))
    nulls = ", ".join(f"SUM(`{c}` IS NULL) AS `null_{c}`" for c in REQUIRED_COLUMNS)
    in_list = ", ".join(["%s"] * len(marketplaces))
    low, high = RATING_RANGE
    # A window count over the compound key finds duplicates in the same pass as everything
    # else (faster here than GROUP BY on the key and summing the groups).
    sql = (
        f"SELECT COUNT(*) AS `rows`, {nulls}, "  # noqa: S608 - checked identifiers
        "SUM(price < 0) AS price_negative, "
        f"SUM(rating < {low:d} OR rating > {high:d}) AS rating_out_of_range, "
        "SUM(NOT (asin REGEXP %s)) AS asin_invalid, "
        f"SUM(marketplace NOT IN ({in_list})) AS marketplace_unknown, "
        f"SUM(n > 1 AND NOT ({key_all_null})) AS duplicate_rows "
        f"FROM (SELECT {columns}, COUNT(*) OVER (PARTITION BY {key}) AS n "
        f"FROM `{table}` WHERE `{window_column}` >= %s AND `{window_column}` < %s) AS w"
    )
    start, end = window.naive()
    with conn.cursor() as cur:
        cur.execute(sql, (asin_regex, *marketplaces, start, end))
        names = [d[0] for d in cur.description]
        row = cur.fetchone()
    counts = dict(zip(names, row, strict=True))
    # SUM over no rows is NULL: an empty window has zero of everything.
    return {k: int(v or 0) for k, v in counts.items()}


def outcome_counts(report: ValidationReport) -> dict[str, Any]:
    """The report's numbers keyed like :func:`floor_counts`, to compare the two."""
    by_name = {o.name: o for o in report.outcomes}
    counts: dict[str, Any] = {"rows": report.row_count}
    for column in REQUIRED_COLUMNS:
        o = by_name.get(f"{column}_not_null")
        counts[f"null_{column}"] = o.unexpected_count if o else None
    for key, name in (
        ("price_negative", "price_non_negative"),
        ("rating_out_of_range", "rating_range"),
        ("asin_invalid", "asin_format"),
        ("marketplace_unknown", "marketplace_known"),
        ("duplicate_rows", "unique_result"),
    ):
        o = by_name.get(name)
        counts[key] = o.unexpected_count if o else None
    return counts
