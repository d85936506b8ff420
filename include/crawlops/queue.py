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
# "This task was published in this epoch", written atomically with the publish itself so a
# push interrupted before its ledger update is adopted instead of repeated.
PUSHED_PREFIX = "crawlops:pushed:"
PUSHED_MARKER_TTL_SECONDS = 2 * 86400
# SADD commands buffered before a pipeline round trip; bounds client memory per push.
_COMMANDS_PER_FLUSH = 8


def _text(value: bytes | str | None) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def current_epoch(r: Any, *, create: bool) -> str | None:
    """The sentinel's token; with ``create`` a missing or outdated sentinel is replaced.

    The token starts with the Redis run id. A Redis restarted from a snapshot (or a failover
    to a replica) brings an old sentinel back without the sets pushed since, so a token
    whose run id is not the live one counts as a new epoch too.
    """
    pipe = r.pipeline(transaction=False)
    pipe.get(EPOCH_KEY)
    pipe.info("server")
    raw, info = pipe.execute()
    value = _text(raw)
    run_id = (_text(info.get("run_id")) or "unknown")[:12]
    if value is not None and not value.startswith(run_id + "-"):
        value = None if create else "outdated:" + value
    if value is None and create:
        fresh = f"{run_id}-{uuid.uuid4().hex[:12]}"
        r.set(EPOCH_KEY, fresh)
        value = fresh
    return value


# Publish a filled staging set under its task id (or merge it into a set that exists) and
# mark the task published in this epoch, all in one atomic step.
_PUBLISH = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SUNIONSTORE', KEYS[2], KEYS[2], KEYS[1])
  redis.call('DEL', KEYS[1])
else
  redis.call('RENAME', KEYS[1], KEYS[2])
end
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
return redis.call('SCARD', KEYS[2])
"""


def pushed_in(r: Any, key: str) -> str | None:
    """The epoch in which ``key`` was last published, if its marker survives."""
    return _text(r.get(PUSHED_PREFIX + key))


def push_members(r: Any, key: str, batches: Iterable[Sequence[str]], *, epoch: str) -> int:
    """Publish members under ``key`` atomically: fill a staging key, then move it into place.

    Workers never see a half-filled set. If ``key`` exists (a set that survived, or one a
    late failure re-created) the members are merged into it. Returns the published count
    (the set's size afterwards; 0 when there was nothing to publish).
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
    return int(r.eval(_PUBLISH, 3, staging, key, PUSHED_PREFIX + key, epoch, PUSHED_MARKER_TTL_SECONDS))


_SIZES = "local out = {} for i, key in ipairs(KEYS) do out[i] = redis.call('SCARD', key) end return out"


def set_sizes(r: Any, keys: Sequence[str]) -> list[int]:
    """SCARD of each key in one round trip and one reply (0 for a missing key)."""
    sizes: list[int] = []
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        sizes += [int(n) for n in r.eval(_SIZES, len(chunk), *chunk)]
    return sizes


def members(r: Any, key: str, batch_size: int = 2000) -> Iterator[str]:
    """Members of a set, read incrementally with SSCAN."""
    for member in r.sscan_iter(key, count=batch_size):
        yield _text(member)  # type: ignore[misc]


def server_facts(r: Any) -> dict[str, Any]:
    """Run id and uptime of the Redis server, recorded as evidence next to epoch decisions."""
    info = r.info("server")
    return {"run_id": _text(info.get("run_id")), "uptime_seconds": int(info.get("uptime_in_seconds", 0))}
