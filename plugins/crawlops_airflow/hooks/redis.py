"""CrawlRedisHook: the ``crawl_redis`` connection (the database number in its extra ``{"db": N}``,
as the Redis provider's hook reads it)."""

from __future__ import annotations

from typing import Any

from airflow.providers.redis.hooks.redis import RedisHook

from crawlops.names import REDIS_CONN_ID


class CrawlRedisHook(RedisHook):
    default_conn_name = REDIS_CONN_ID
    hook_name = "Crawl Redis"

    def __init__(self, redis_conn_id: str = REDIS_CONN_ID, **kwargs: Any) -> None:
        super().__init__(redis_conn_id=redis_conn_id, **kwargs)
