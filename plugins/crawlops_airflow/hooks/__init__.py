"""Hooks: each owns one kind of connection, the way Airflow's providers do.

- ``DingTalkHook`` (``crawlops_airflow.hooks.dingtalk``): a DingTalk robot, ``crawl_dingtalk``;
- ``CrawlMySqlHook`` (``crawlops_airflow.hooks.mysql``): the crawl database, ``crawl_mysql``:
  connections in UTC and utf8mb4, and the SQLAlchemy URL Great Expectations connects with;
- ``CrawlRedisHook`` (``crawlops_airflow.hooks.redis``): the crawl Redis, ``crawl_redis``.

Only ``DingTalkHook`` is imported here: the MySQL and Redis providers cost DAG files a second
at parse time, so those hooks are imported where a task runs.
"""

from crawlops_airflow.hooks.dingtalk import DingTalkHook

__all__ = ["DingTalkHook"]
