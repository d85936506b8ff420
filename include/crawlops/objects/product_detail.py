"""``product_detail``: one product page (price, availability, best-seller rank) by ASIN.

Config target: an ASIN (10 characters, A-Z and 0-9, upper-cased; anything else is skipped as
``invalid_target``), ``max_pages`` NULL or 1; the element is
``{"asin":"B0C1234567","marketplace":"US"}``; one row in ``amazon_product_detail``.
"""

from __future__ import annotations

from collections.abc import Sequence

from crawlops.objects.base import DECIMAL, INT, TEXT, CrawlObject, Rule, asin_target, register

#: Marketplace -> the currency its prices are in.
CURRENCIES = {
    "US": "USD",
    "CA": "CAD",
    "MX": "MXN",
    "BR": "BRL",
    "UK": "GBP",
    "DE": "EUR",
    "FR": "EUR",
    "IT": "EUR",
    "ES": "EUR",
    "NL": "EUR",
    "SE": "SEK",
    "PL": "PLN",
    "BE": "EUR",
    "TR": "TRY",
    "AE": "AED",
    "SA": "SAR",
    "EG": "EGP",
    "IN": "INR",
    "JP": "JPY",
    "SG": "SGD",
    "AU": "AUD",
}
AVAILABILITY = ("in_stock", "low_stock", "out_of_stock", "preorder", "unavailable")
ASIN_ANY = "^[0-9A-Z]{10}$"


def _marks(values: Sequence[str]) -> str:
    return ", ".join(["%s"] * len(values))


def currency_rule(marketplaces: Sequence[str]) -> Rule:
    """A row whose currency is not its marketplace's (NULL currency is not judged here)."""
    pairs = [(m, CURRENCIES[m]) for m in marketplaces if m in CURRENCIES]
    cases = " ".join("WHEN %s THEN %s" for _ in pairs)
    params = [v for pair in pairs for v in pair]
    return ("currency_matches_marketplace", f"currency <> (CASE marketplace {cases} ELSE currency END)", params)


def validity_rules(marketplaces: Sequence[str]) -> list[Rule]:
    markets = list(marketplaces)
    return [
        ("asin_format", "asin COLLATE utf8mb4_bin NOT REGEXP %s", [ASIN_ANY]),
        ("price_non_negative", "price < 0", []),
        ("list_price_non_negative", "list_price < 0", []),
        ("rating_range", "(rating < 0 OR rating > 5)", []),
        ("review_count_non_negative", "review_count < 0", []),
        ("availability_known", f"availability NOT IN ({_marks(AVAILABILITY)})", [*AVAILABILITY]),
        currency_rule(markets),
        ("marketplace_known", "marketplace NOT IN (" + ", ".join(["%s"] * len(markets)) + ")", markets),
    ]


# Every column a crawler writes (task_id aside) and its type family.
COLUMNS = {
    "asin": TEXT,
    "marketplace": TEXT,
    "title": TEXT,
    "brand": TEXT,
    "price": DECIMAL,
    "currency": TEXT,
    "list_price": DECIMAL,
    "rating": DECIMAL,
    "review_count": INT,
    "availability": TEXT,
    "seller": TEXT,
    "best_seller_rank": INT,
    "category": TEXT,
}


PRODUCT_DETAIL = register(
    CrawlObject(
        name="product_detail",
        results_table="amazon_product_detail",
        target_field="asin",
        paged=False,
        columns=COLUMNS,
        required=("title",),
        position_column=None,
        check_target=asin_target,
        validity_rules=validity_rules,
        # one row a product: far fewer rows an hour than search pages give
        quality_defaults={"min_records_per_hour": 50},
        description="one product page by ASIN",
    )
)
