"""The Redis side of the crawler protocol: task sets, fail and empty sets, the open-task
index and the epoch sentinel.

Crawlers find open task ids in the set ``crawlops:open_tasks``, take elements from the set
named by the task id, add the ones they fail on to ``<task_id>_fail`` and the ones they
crawled and found nothing on to ``<task_id>_empty``. Redis deletes a set when its last member is taken, so an absent
set means either "drained" or "lost". The epoch sentinel tells the two apart: a random
token stored under ``crawlops:epoch`` that every push records on its task row. A flush
or a restart of a Redis that keeps nothing on disk removes the sentinel together with the
sets, so a task whose recorded epoch differs from the current one lost its set; a task
whose epoch still matches was drained by workers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, Protocol, overload

from crawlops.model import EMPTY_SUFFIX, FAIL_SUFFIX, empty_key, fail_key

EPOCH_KEY = "crawlops:epoch"
# The ids of open tasks (Pending / In Progress), so workers find work without MySQL. Kept
# by publish (atomically with the set), by status sync (rebuilt from the ledger) and by
# settling (a retry task joins, its finished source leaves).
OPEN_INDEX = "crawlops:open_tasks"
# Open task id -> its priority (the highest of its config rows; absent: 0), kept beside the
# index, so workers take from the most urgent task first (``open_tasks_by_urgency``).
PRIORITY_KEY = "crawlops:task_priority"
STAGING_PREFIX = "crawlops:staging:"
# "This task was published in this epoch", written atomically with the publish itself so a
# push interrupted before its ledger update is adopted instead of repeated.
PUSHED_PREFIX = "crawlops:pushed:"
PUSHED_MARKER_TTL_SECONDS = 2 * 86400
# SADD commands buffered before a pipeline round trip; bounds client memory per push.
_COMMANDS_PER_FLUSH = 8


def _text(value: bytes | str | None) -> str | None:
    # surrogateescape: a member that is not UTF-8 (a worker's garbage) survives the round trip
    # back to Redis byte for byte, so it can be removed, instead of breaking the reader.
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


class RedisClient(Protocol):
    """The part of redis-py's client the package uses (``redis.Redis`` satisfies it)."""

    def sadd(self, name: Any, *values: Any) -> Any: ...
    def srem(self, name: Any, *values: Any) -> Any: ...
    def smembers(self, name: Any) -> Any: ...
    def spop(self, name: Any, count: Any = None) -> Any: ...
    def sscan_iter(self, name: Any, match: Any = None, count: Any = None) -> Any: ...
    def delete(self, *names: Any) -> Any: ...
    def expire(self, name: Any, time: Any) -> Any: ...
    def get(self, name: Any) -> Any: ...
    def set(self, name: Any, value: Any) -> Any: ...
    def info(self, section: Any = None) -> Any: ...
    def eval(self, script: Any, numkeys: Any, *keys_and_args: Any) -> Any: ...
    def pipeline(self, transaction: Any = True) -> Any: ...
    def ping(self) -> Any: ...
    def hset(self, name: Any, key: Any = None, value: Any = None, mapping: Any = None) -> Any: ...
    def hdel(self, name: Any, *keys: Any) -> Any: ...
    def hgetall(self, name: Any) -> Any: ...
    def scard(self, name: Any) -> Any: ...


def _raw(texts: Sequence[str]) -> list[bytes]:
    return [t.encode("utf-8", "surrogateescape") for t in texts]


@overload
def current_epoch(r: RedisClient, *, create: Literal[True]) -> str: ...
@overload
def current_epoch(r: RedisClient, *, create: bool) -> str | None: ...


def current_epoch(r: RedisClient, *, create: bool) -> str | None:
    """The sentinel's token; with ``create`` a missing or outdated sentinel is replaced.

    The token starts with the Redis run id. A Redis restarted from a snapshot (or a failover
    to a replica) brings an old sentinel back without the sets pushed since, so a token
    whose run id is not the live one counts as a new epoch too.
    """
    return epoch_and_facts(r, create=create)[0]


def epoch_and_facts(r: RedisClient, *, create: bool) -> tuple[str | None, dict[str, Any]]:
    """``current_epoch``, and the Redis server's run id and uptime from the same INFO reply,
    recorded as evidence next to epoch decisions (one round trip for both)."""
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
    return value, _server_facts(info)


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
redis.call('SADD', KEYS[4], KEYS[2])
return redis.call('SCARD', KEYS[2])
"""


def pushed_in(r: RedisClient, key: str) -> str | None:
    """The epoch in which ``key`` was last published, if its marker survives."""
    return _text(r.get(PUSHED_PREFIX + key))


def push_members(r: RedisClient, key: str, batches: Iterable[Sequence[str]], *, epoch: str, priority: int = 0) -> int:
    """Publish members under ``key`` atomically: fill a staging key, then move it into place
    and list it in the open-task index.

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
    set_priorities(r, {key: priority})  # before the index lists it
    return int(r.eval(_PUBLISH, 4, staging, key, PUSHED_PREFIX + key, OPEN_INDEX, epoch, PUSHED_MARKER_TTL_SECONDS))


def open_index(r: RedisClient) -> set[str]:
    """The task ids workers see as open."""
    return _texts(r.smembers(OPEN_INDEX))


def _texts(values: Iterable[bytes | str]) -> set[str]:
    return {_text(v) for v in values}  # type: ignore[misc]


def index_open(r: RedisClient, task_ids: Iterable[str], priorities: Mapping[str, int] | None = None) -> None:
    """List tasks as open, with their priority (``PRIORITY_KEY``; 0 is not stored)."""
    ids = list(task_ids)
    if ids:
        set_priorities(r, {t: (priorities or {}).get(t, 0) for t in ids})
        r.sadd(OPEN_INDEX, *ids)


def index_closed(r: RedisClient, task_ids: Iterable[str]) -> None:
    ids = list(task_ids)
    if ids:
        r.srem(OPEN_INDEX, *ids)
        r.hdel(PRIORITY_KEY, *ids)


def set_priorities(r: RedisClient, priorities: Mapping[str, int]) -> None:
    urgent = {t: p for t, p in priorities.items() if p}
    if urgent:
        r.hset(PRIORITY_KEY, mapping=urgent)
    plain = [t for t, p in priorities.items() if not p]
    if plain:
        r.hdel(PRIORITY_KEY, *plain)


# The index compared with the ledger's open tasks inside Redis, so that only the differences
# travel back (redis-py reads a reply at about 1 us a member, the index has one per open
# task). ARGV[1]: the open task ids, one per line. Returns the members that are no open
# task, the open tasks the index lacks, and the priority hash (HGETALL's flat list).
_INDEX_DIFF = """
local open, stale, missing = {}, {}, {}
for id in string.gmatch(ARGV[1], '[^\\n]+') do open[id] = true end
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if open[member] then open[member] = false else stale[#stale + 1] = member end
end
for id, unlisted in pairs(open) do
  if unlisted then missing[#missing + 1] = id end
end
return {stale, missing, redis.call('HGETALL', KEYS[2])}
"""


def rebuild_open_index(r: RedisClient, open_tasks: Mapping[str, int]) -> dict[str, int]:
    """Make the index hold exactly the ledger's open tasks (id -> priority), and the priority
    hash exactly their non-zero priorities; returns what changed in the index."""
    lines = "\n".join(open_tasks)
    if lines.count("\n") == len(open_tasks) - 1 and "" not in open_tasks:  # one id a line: compared in Redis
        stale_raw, missing_raw, flat = r.eval(_INDEX_DIFF, 2, OPEN_INDEX, PRIORITY_KEY, _raw([lines])[0])
        stale, missing = _texts(stale_raw), _texts(missing_raw)
        priorities = dict(zip(flat[::2], flat[1::2], strict=True))
    else:  # an id the lines cannot carry: read the index and compare here
        pipe = r.pipeline(transaction=False)
        pipe.smembers(OPEN_INDEX)
        pipe.hgetall(PRIORITY_KEY)
        members, priorities = pipe.execute()
        listed = _texts(members)
        stale, missing = listed - open_tasks.keys(), open_tasks.keys() - listed
    index_closed(r, stale)
    index_open(r, missing, open_tasks)
    known = {_text(k): int(v) for k, v in priorities.items()}
    # read before the two calls above: the priorities they just wrote (missing) or removed (stale) are right
    wrong = {t: p for t, p in open_tasks.items() if known.get(t, 0) != p and t not in missing}
    set_priorities(r, wrong)
    orphans = [t for t in known if t not in open_tasks and t not in stale]
    if orphans:
        r.hdel(PRIORITY_KEY, *orphans)
    return {"added": len(missing), "removed": len(stale)}


def open_tasks_by_urgency(r: RedisClient) -> list[str]:
    """The open task ids as a worker should take them: higher priority first, then shorter
    ids (a task before its retries), then by id (within a crawl object and frequency, the
    older interval first)."""
    pipe = r.pipeline(transaction=False)
    pipe.smembers(OPEN_INDEX)
    pipe.hgetall(PRIORITY_KEY)
    members, priorities = pipe.execute()
    priority = {_text(k): int(v) for k, v in priorities.items()}
    ids = [t for t in (_text(m) for m in members) if t]
    return sorted(ids, key=lambda t: (-priority.get(t, 0), len(t), t))


# -- the worker's side: take elements, report them failed or empty ---------------------------


def take(r: RedisClient, task_id: str, count: int) -> list[bytes]:
    """``SPOP`` up to ``count`` members of a task's set, as the bytes they are."""
    members = r.spop(task_id, count) or []
    return [m if isinstance(m, bytes) else str(m).encode() for m in members]


def report(pipe: Any, *, failed: Mapping[str, Sequence[bytes]], empty: Mapping[str, Sequence[bytes]]) -> None:
    """Queue on ``pipe`` the members (as popped) a worker failed on (``<task_id>_fail``) and
    found empty (``<task_id>_empty``), per task id."""
    for key, by_task in ((fail_key, failed), (empty_key, empty)):
        for task_id, members in by_task.items():
            if members:
                pipe.sadd(key(task_id), *members)


def remove_members(r: RedisClient, key: str, texts: Sequence[str], batch_size: int = 2000) -> None:
    for start in range(0, len(texts), batch_size):
        r.srem(key, *_raw(texts[start : start + batch_size]))


def add_members(r: RedisClient, key: str, texts: Sequence[str], batch_size: int = 2000) -> None:
    for start in range(0, len(texts), batch_size):
        r.sadd(key, *_raw(texts[start : start + batch_size]))


# The sizes come back as one comma-separated string: redis-py parses an array reply element
# by element in Python (about 1 us each), a string in one piece.
_SIZES = (
    "local out = {} for i, key in ipairs(KEYS) do out[i] = redis.call('SCARD', key) end return table.concat(out, ',')"
)


def set_sizes(r: RedisClient, keys: Sequence[str]) -> list[int]:
    """SCARD of each key in one round trip and one reply (0 for a missing key)."""
    sizes: list[int] = []
    for start in range(0, len(keys), 5000):
        chunk = _raw(keys[start : start + 5000])  # encoded here: cheaper than redis-py's per-argument encoder
        reply = _text(r.eval(_SIZES, len(chunk), *chunk))
        sizes += map(int, reply.split(",")) if reply else []
    return sizes


# The sizes of each task's three sets (queue, fail, empty), the task ids given as one argument,
# one per line. The script names the fail and empty sets itself instead of being handed them as
# keys: handing 2,000 open tasks' 6,000 names as keys cost 2.8 ms of argument packing (redis-py
# packs each in Python) and parsing, more than the 6,000 SCARDs themselves; given one line each,
# 0.6 ms. A script touching keys it was not given is what Redis Cluster cannot route, and this
# package's scripts were never for a cluster (a task's sets hash to different slots, and the
# crawl Redis is chosen by database number, which a cluster does not have).
_TASK_SIZES = """
local fail, empty, out, n = ARGV[2], ARGV[3], {}, 0
for id in string.gmatch(ARGV[1], '[^\\n]+') do
  out[n + 1] = redis.call('SCARD', id)
  out[n + 2] = redis.call('SCARD', id .. fail)
  out[n + 3] = redis.call('SCARD', id .. empty)
  n = n + 3
end
return table.concat(out, ',')
"""


# Task ids a script: 6,000 SCARDs take Redis about 3 ms, during which it serves nobody else.
_IDS_PER_SCRIPT = 2000


def task_set_sizes(r: RedisClient, task_ids: Sequence[str]) -> list[int]:
    """For each task, the sizes of its queue, fail and empty sets (0 for a missing set), flat:
    ``[queued_1, failed_1, empty_1, queued_2, ...]``, one round trip and one reply per 2,000 tasks."""
    sizes: list[int] = []
    for start in range(0, len(task_ids), _IDS_PER_SCRIPT):
        chunk = task_ids[start : start + _IDS_PER_SCRIPT]
        lines = "\n".join(chunk)
        if lines.count("\n") != len(chunk) - 1 or "" in chunk:  # an id the lines cannot carry: named as keys
            sizes += set_sizes(r, [k for t in chunk for k in (t, fail_key(t), empty_key(t))])
            continue
        reply = _text(r.eval(_TASK_SIZES, 0, _raw([lines])[0], FAIL_SUFFIX, EMPTY_SUFFIX))
        sizes += map(int, reply.split(",")) if reply else []
    return sizes


def members(r: RedisClient, key: str, batch_size: int = 2000) -> Iterator[str]:
    """Members of a set, read incrementally with SSCAN."""
    for member in r.sscan_iter(key, count=batch_size):
        yield _text(member)  # type: ignore[misc]


def _server_facts(info: Mapping[str, Any]) -> dict[str, Any]:
    return {"run_id": _text(info.get("run_id")), "uptime_seconds": int(info.get("uptime_in_seconds", 0))}


def env_redis_url() -> str:
    """The crawl queues' Redis as the command-line tools find it: ``CRAWLOPS_REDIS_URL``, else the
    local server's database ``CRAWLOPS_REDIS_DB`` (1)."""
    return os.environ.get("CRAWLOPS_REDIS_URL") or f"redis://127.0.0.1:6379/{os.environ.get('CRAWLOPS_REDIS_DB', '1')}"
