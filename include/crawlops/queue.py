"""The Redis side of the crawler protocol: task sets, fail sets, and the epoch sentinel.

Crawlers take elements from the set named by the task id and add the ones they fail on
to ``<task_id>_fail``. Redis deletes a set when its last member is taken, so an absent
set means either "drained" or "lost". The epoch sentinel tells the two apart: a random
token stored under ``crawlops:epoch`` that every push records on its task row. A flush
or a restart of a Redis that keeps nothing on disk removes the sentinel together with the
sets, so a task whose recorded epoch differs from the current one lost its set; a task
whose epoch still matches was drained by workers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

EPOCH_KEY = "crawlops:epoch"
STAGING_PREFIX = "crawlops:staging:"
# SADD commands buffered before a pipeline round trip; bounds client memory per push.
_COMMANDS_PER_FLUSH = 8


def _text(value: bytes | str | None) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def current_epoch(r: Any, *, create: bool) -> str | None:
    """The sentinel's token; with ``create`` a missing sentinel is started (atomically, once)."""
    value = r.get(EPOCH_KEY)
    if value is None and create:
        run_id = _text(r.info("server").get("run_id")) or "unknown"
        r.set(EPOCH_KEY, f"{run_id[:12]}-{uuid.uuid4().hex[:12]}", nx=True)
        value = r.get(EPOCH_KEY)
    return _text(value)


def push_members(r: Any, key: str, batches: Iterable[Sequence[str]]) -> int | None:
    """Publish a set atomically: fill a staging key, then RENAMENX it to ``key``.

    Workers never see a half-filled set. Returns the member count pushed, or None when
    ``key`` already existed (then nothing is published and the staging copy is dropped).
    """
    staging = STAGING_PREFIX + key
    r.delete(staging)
    pipe = r.pipeline(transaction=False)
    pushed = 0
    for batch in batches:
        if not batch:
            continue
        pipe.sadd(staging, *batch)
        pushed += len(batch)
        if len(pipe) >= _COMMANDS_PER_FLUSH:
            pipe.execute()
    pipe.execute()
    if pushed == 0:
        return 0
    if not r.renamenx(staging, key):
        r.delete(staging)
        return None
    return pushed


def set_sizes(r: Any, keys: Sequence[str]) -> list[int]:
    """SCARD of each key in one round trip (0 for a missing key)."""
    if not keys:
        return []
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.scard(key)
    return [int(n) for n in pipe.execute()]


def members(r: Any, key: str, batch_size: int = 2000) -> Iterator[str]:
    """Members of a set, read incrementally with SSCAN."""
    for member in r.sscan_iter(key, count=batch_size):
        yield _text(member)  # type: ignore[misc]


def server_facts(r: Any) -> dict[str, Any]:
    """Run id and uptime of the Redis server, recorded as evidence next to epoch decisions."""
    info = r.info("server")
    return {"run_id": _text(info.get("run_id")), "uptime_seconds": int(info.get("uptime_in_seconds", 0))}
