"""The crawl objects: the registry (``base``) and one module per object.

Importing this package imports every other module in it, and each registers its object:
the shipped ``search_result``, ``product_detail`` and ``product_review``, and any module a
team adds here (docs: "Adding a crawl object"): adding an object is that module, a
migration creating its tables and its suite file, with no other change.
"""

from __future__ import annotations

import importlib
import pkgutil

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


def _import_objects() -> list[str]:
    """Import every object module of this package (each registers itself), the first object first."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "base" and not m.name.startswith("_"))
    names.sort(key=lambda name: name != FIRST)
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
    return names


MODULES = _import_objects()

__all__ = [
    "FIRST",
    "MODULES",
    "REGISTRY",
    "CrawlObject",
    "Refusal",
    "Rule",
    "for_table",
    "get",
    "register",
    "unregister",
]
