"""``product_review``: one page of a product's reviews.

Config target: an ASIN (as ``product_detail``); elements ``{"asin", "marketplace", "page"}``
for pages 1..max_pages; rows in ``amazon_product_review``, one per review on the page.
"""

from __future__ import annotations

from collections.abc import Sequence

from crawlops.objects.base import BOOL, DATETIME, INT, TEXT, CrawlObject, Rule, asin_target, register
from crawlops.objects.product_detail import ASIN_ANY


def validity_rules(marketplaces: Sequence[str]) -> list[Rule]:
    markets = list(marketplaces)
    return [
        ("asin_format", "asin COLLATE utf8mb4_bin NOT REGEXP %s", [ASIN_ANY]),
        ("rating_integer_1_5", "(rating NOT IN (1, 2, 3, 4, 5))", []),
        # a review written after the row was crawled cannot be (a day of slack for time zones)
        ("review_date_not_future", "review_date > create_time + INTERVAL 1 DAY", []),
        ("helpful_votes_non_negative", "helpful_votes < 0", []),
        ("marketplace_known", "marketplace NOT IN (" + ", ".join(["%s"] * len(markets)) + ")", markets),
    ]


# Every column a crawler writes (task_id aside) and its type family.
COLUMNS = {
    "asin": TEXT,
    "marketplace": TEXT,
    "page": INT,
    "position": INT,
    "review_id": TEXT,
    "rating": INT,
    "title": TEXT,
    "body": TEXT,
    "author": TEXT,
    "review_date": DATETIME,
    "verified_purchase": BOOL,
    "helpful_votes": INT,
}


PRODUCT_REVIEW = register(
    CrawlObject(
        name="product_review",
        results_table="amazon_product_review",
        target_field="asin",
        paged=True,
        columns=COLUMNS,
        required=("review_id", "rating"),
        check_target=asin_target,
        validity_rules=validity_rules,
        quality_defaults={"min_records_per_hour": 50},
        description="one page of a product's reviews",
    )
)
