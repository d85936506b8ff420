"""Data-quality checks beyond the Great Expectations suite, and the data-side repairs.

- volume against its own history (z-score per hour of day or of week);
- schema drift of a results table against the columns its suite expects;
- completeness: finished tasks whose elements were taken and never answered;
- freshness: the age of the newest row where crawling is expected, at the run's own time;
- quarantine: invalid rows moved, with the rule they failed, in one transaction;
- re-crawl: rows lacking a required field traced back to their elements, crawled once more.
"""

from __future__ import annotations

from crawlops.names import SUPERVISION_DAG as SOURCE
from crawlops.objects.base import ASIN_PATTERN
from crawlops.quality.completeness import check_completeness
from crawlops.quality.drift import TYPE_FAMILIES, check_schema_drift, suite_schema_check
from crawlops.quality.freshness import check_freshness
from crawlops.quality.recrawl import IncompleteRows, recrawl_incomplete, trace_incomplete_rows
from crawlops.quality.rows import (
    find_invalid_rows,
    quality_score,
    quality_score_finding,
    quarantine_invalid,
)
from crawlops.quality.scope import objects_to_check
from crawlops.quality.volume import (
    VolumeVerdict,
    check_volume,
    history_hours,
    hourly_counts,
    judge_volume,
    record_volume,
    volume_band,
    volume_check,
)

__all__ = [
    "ASIN_PATTERN",
    "SOURCE",
    "TYPE_FAMILIES",
    "IncompleteRows",
    "VolumeVerdict",
    "check_completeness",
    "check_freshness",
    "check_schema_drift",
    "check_volume",
    "find_invalid_rows",
    "history_hours",
    "hourly_counts",
    "judge_volume",
    "objects_to_check",
    "quality_score",
    "quality_score_finding",
    "quarantine_invalid",
    "record_volume",
    "recrawl_incomplete",
    "suite_schema_check",
    "trace_incomplete_rows",
    "volume_band",
    "volume_check",
]
