"""The MySQL ledger, one module per table family; only that module holds its tables' SQL.

- ``tasks``: ``amazon_task_information``; ``chains``: its retry chains, as retention deletes
  them; ``config``: the config rows tasks are planned from (``amazon_crawl_config``);
  ``manifest``: the element manifest ``amazon_task_element``;
- ``results``: the crawlers' results tables and their quarantine, with the validity rules;
- ``alerts``: the alert outbox ``amazon_alert``, ``amazon_alert_delivery``, ``amazon_check_run``;
- ``verdicts``: suite verdicts ``amazon_validation_run`` and the volume rollup
  ``amazon_volume_hourly``;
- ``outcomes``: what the crawlers saw per minute, ``amazon_crawl_outcome``;
- ``reports``: ``amazon_daily_report``.

DDL lives in the migrations (``include/sql/migrations``). The names of the tasks, config and
manifest modules are re-exported here (``store.select_tasks``...), as callers use them.
"""

from __future__ import annotations

from crawlops.store.config import add_config_rows, count_config_rows, load_config_rows
from crawlops.store.manifest import (
    add_to_manifest,
    element_from_text,
    empty_count,
    manifest_marketplaces,
    mark_empty,
    mark_fail_reasons,
    mark_recrawled,
    recrawled,
    split_known,
    stream_elements,
)
from crawlops.store.tasks import (
    TASK_COLUMNS,
    OpenTask,
    StatusChange,
    TaskRow,
    day_task_statistics,
    open_counts_by_type,
    outcome_counts_by_interval,
    pushed_and_live,
    record_push,
    record_retry_task,
    record_settlement,
    record_statuses,
    record_task,
    select_open_tasks,
    select_tasks,
    settled_between,
    settled_totals_by_type,
    status_counts,
)

__all__ = [
    "TASK_COLUMNS",
    "OpenTask",
    "StatusChange",
    "TaskRow",
    "add_config_rows",
    "add_to_manifest",
    "count_config_rows",
    "day_task_statistics",
    "element_from_text",
    "empty_count",
    "load_config_rows",
    "manifest_marketplaces",
    "mark_empty",
    "mark_fail_reasons",
    "mark_recrawled",
    "open_counts_by_type",
    "outcome_counts_by_interval",
    "pushed_and_live",
    "record_push",
    "record_retry_task",
    "record_settlement",
    "record_statuses",
    "record_task",
    "recrawled",
    "select_open_tasks",
    "select_tasks",
    "settled_between",
    "settled_totals_by_type",
    "split_known",
    "status_counts",
    "stream_elements",
]
