"""The crawl objects: the registry (``base``) and the shipped objects, one module each.

Importing this package registers ``search_result``, ``product_detail`` and
``product_review``; a team's own object is one more module that calls ``register`` (see the
docs, "Adding a crawl object").
"""

from __future__ import annotations

from crawlops.objects import product_detail, product_review, search_result
from crawlops.objects.base import (
    FIRST,
    REGISTRY,
    CrawlObject,
    Refusal,
    Rule,
    for_table,
    get,
    register,
    unregister,
)

__all__ = [
    "FIRST",
    "REGISTRY",
    "CrawlObject",
    "Refusal",
    "Rule",
    "for_table",
    "get",
    "product_detail",
    "product_review",
    "register",
    "search_result",
    "unregister",
]
