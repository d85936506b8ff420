"""``search_result``: one results page of one keyword in one marketplace.

Config target: the keyword (any text); elements ``{"keyword", "marketplace", "page"}`` for
pages 1..max_pages; rows in ``amazon_search_result``, one per product on the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from crawlops.objects.base import ASIN_PATTERN, DECIMAL, INT, TEXT, CrawlObject, Rule, register


def validity_rules(marketplaces: Sequence[str]) -> list[Rule]:
    markets = list(marketplaces)
    return [
        ("price_non_negative", "price < 0", []),
        ("rating_range", "(rating < 0 OR rating > 5)", []),
        # utf8mb4_bin: REGEXP under a _ci collation would accept lower-case ASINs.
        ("asin_format", "asin COLLATE utf8mb4_bin NOT REGEXP %s", [ASIN_PATTERN]),
        ("marketplace_known", "marketplace NOT IN (" + ", ".join(["%s"] * len(markets)) + ")", markets),
    ]


# Every column a crawler writes (task_id aside) and its type family.
COLUMNS = {
    "keyword": TEXT,
    "marketplace": TEXT,
    "asin": TEXT,
    "title": TEXT,
    "price": DECIMAL,
    "currency": TEXT,
    "rating": DECIMAL,
    "review_count": INT,
    "page": INT,
    "position": INT,
}


SEARCH_RESULT = register(
    CrawlObject(
        name="search_result",
        results_table="amazon_search_result",
        target_field="keyword",
        paged=True,
        columns=COLUMNS,
        required=("asin", "title", "price"),
        validity_rules=validity_rules,
        description="one results page of one keyword",
    )
)
