"""What workers tell the control plane besides their answers, and what it tells them back:
failure reasons, outcome counts, heartbeats and throttles, all in the crawl Redis.

The keys (all beside the task sets; a seed worker that only ``SPOP`` s and ``SADD`` s to
``<task_id>_fail`` never touches them and keeps working: its failures read ``unknown``):

- ``crawlops:fail_reason:<task_id>``: hash, failed member (the bytes in ``<task_id>_fail``)
  -> ``<reason class>|<detail>``; written with the ``SADD``, read when the task settles,
  expires after ``REASON_TTL_SECONDS``;
- ``crawlops:outcomes:<YYYYMMDDHHMM>``: hash per UTC minute, field
  ``<crawl_object>|<marketplace>|<outcome>|<reason>`` (outcome ``answered``, ``empty`` or
  ``failed``; reason empty unless failed) -> elements; ``HINCRBY`` by the kit at each flush,
  expires after ``OUTCOME_TTL_SECONDS``; supervision folds the minutes into MySQL;
- ``crawlops:workers``: sorted set, worker id -> last heartbeat (UTC epoch seconds), and
  ``crawlops:worker:<worker_id>``: hash of the worker's facts (host, pid, crawl objects,
  elements held, answered, empty, failed, started, last seen), expiring after
  ``HEARTBEAT_TTL_SECONDS``; a kit worker beats every few seconds while it runs;
- ``crawlops:throttle:<marketplace>``: the minimum seconds between two requests a worker
  process sends to that marketplace, set by supervision with an expiry while the
  marketplace's pages come back blocked; absent: no throttle.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from crawlops.queue import RedisClient

REASON_PREFIX = "crawlops:fail_reason:"
OUTCOMES_PREFIX = "crawlops:outcomes:"
WORKERS_KEY = "crawlops:workers"
WORKER_PREFIX = "crawlops:worker:"
THROTTLE_PREFIX = "crawlops:throttle:"

REASON_TTL_SECONDS = 7 * 86400
OUTCOME_TTL_SECONDS = 6 * 3600
HEARTBEAT_TTL_SECONDS = 3600
# Workers not seen for this long leave the sorted set (their hash has expired by then).
WORKER_FORGET_SECONDS = 86400

ANSWERED, EMPTY, FAILED = "answered", "empty", "failed"


def reason_key(task_id: str) -> str:
    return REASON_PREFIX + task_id


def throttle_key(marketplace: str) -> str:
    return THROTTLE_PREFIX + marketplace


def minute_key(instant: dt.datetime) -> str:
    return OUTCOMES_PREFIX + instant.astimezone(dt.UTC).strftime("%Y%m%d%H%M")


def outcome_field(crawl_object: str, marketplace: str, outcome: str, reason: str = "") -> str:
    return f"{crawl_object}|{marketplace}|{outcome}|{reason}"


def encode_reason(reason: str, detail: str) -> str:
    return f"{reason}|{detail}" if detail else reason


def decode_reason(value: bytes | str | None) -> tuple[str, str]:
    """(reason class, detail) of a stored value; a member with none (a seed worker) is ``unknown``."""
    if value is None:
        return "unknown", ""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    reason, _, detail = text.partition("|")
    return reason or "unknown", detail


# -- the worker's side: written on the pipeline of its flush ------------------------------------


def write_reasons(pipe: Any, task_id: str, reasons: Mapping[bytes, str]) -> None:
    """Failed member -> ``encode_reason(...)`` of one task."""
    if reasons:
        key = reason_key(task_id)
        pipe.hset(key, mapping=dict(reasons))
        pipe.expire(key, REASON_TTL_SECONDS)


def count_outcomes(pipe: Any, instant: dt.datetime, counts: Mapping[str, int]) -> None:
    """Add ``outcome_field(...)`` -> elements to the minute of ``instant``."""
    if counts:
        key = minute_key(instant)
        for field, n in counts.items():
            pipe.hincrby(key, field, n)
        pipe.expire(key, OUTCOME_TTL_SECONDS)


def beat(pipe: Any, worker_id: str, facts: Mapping[str, Any], seen: dt.datetime) -> None:
    """A worker's heartbeat: its facts, and its last-seen time in ``WORKERS_KEY``."""
    key = WORKER_PREFIX + worker_id
    pipe.hset(key, mapping={**facts, "last_seen": seen.isoformat(timespec="seconds")})
    pipe.expire(key, HEARTBEAT_TTL_SECONDS)
    pipe.zadd(WORKERS_KEY, {worker_id: seen.timestamp()})


# -- supervision's side ------------------------------------------------------------------------


def fail_reasons(r: RedisClient, task_id: str) -> dict[str, tuple[str, str]]:
    """Failed member (text, as the manifest holds it) -> (reason, detail) reported for ``task_id``."""
    raw = r.hgetall(reason_key(task_id))
    return {
        (k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else k): decode_reason(v) for k, v in raw.items()
    }


def forget_reasons(r: RedisClient, task_id: str) -> None:
    r.delete(reason_key(task_id))


@dataclasses.dataclass(frozen=True)
class OutcomeCount:
    minute: dt.datetime  # naive UTC, the minute's start
    crawl_object: str
    marketplace: str
    outcome: str
    reason: str
    elements: int


def read_outcomes(r: RedisClient, minutes: Sequence[dt.datetime]) -> list[OutcomeCount]:
    """The kit's counts of the given UTC minutes (one round trip)."""
    pipe = r.pipeline(transaction=False)
    for minute in minutes:
        pipe.hgetall(minute_key(minute))
    out = []
    for minute, counts in zip(minutes, pipe.execute(), strict=True):
        start = minute.astimezone(dt.UTC).replace(second=0, microsecond=0, tzinfo=None)
        for field, value in counts.items():
            text = field.decode("utf-8", "replace") if isinstance(field, bytes) else field
            parts = text.split("|")
            if len(parts) != 4:
                continue  # not the kit's: ignored
            out.append(OutcomeCount(start, parts[0], parts[1], parts[2], parts[3], int(value)))
    return out


@dataclasses.dataclass(frozen=True)
class Worker:
    worker_id: str
    last_seen: dt.datetime  # aware UTC
    facts: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"worker_id": self.worker_id, "last_seen": self.last_seen.isoformat(), **self.facts}


def workers_seen(r: RedisClient, since: dt.datetime) -> list[Worker]:
    """Workers whose last heartbeat is at or after ``since``, with their facts, newest first;
    workers silent for ``WORKER_FORGET_SECONDS`` are forgotten on the way."""
    now = dt.datetime.now(dt.UTC).timestamp()
    pipe = r.pipeline(transaction=False)
    pipe.zremrangebyscore(WORKERS_KEY, "-inf", now - WORKER_FORGET_SECONDS)
    pipe.zrevrangebyscore(WORKERS_KEY, "+inf", since.timestamp(), withscores=True)
    _, seen = pipe.execute()
    ids = [(m.decode("utf-8", "replace") if isinstance(m, bytes) else m, float(s)) for m, s in seen]
    pipe = r.pipeline(transaction=False)
    for worker_id, _ in ids:
        pipe.hgetall(WORKER_PREFIX + worker_id)
    facts = pipe.execute() if ids else []
    return [
        Worker(worker_id, dt.datetime.fromtimestamp(score, dt.UTC), {_s(k): _s(v) for k, v in f.items()})
        for (worker_id, score), f in zip(ids, facts, strict=True)
    ]


def _s(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def set_throttles(r: RedisClient, intervals: Mapping[str, float], *, ttl_seconds: int) -> None:
    """Throttle each marketplace to one request per ``interval`` seconds per worker, for ``ttl_seconds``."""
    if not intervals:
        return
    pipe = r.pipeline(transaction=False)
    for marketplace, interval in intervals.items():
        pipe.set(throttle_key(marketplace), f"{interval:g}", ex=ttl_seconds)
    pipe.execute()


def clear_throttles(r: RedisClient, marketplaces: Iterable[str]) -> None:
    keys = [throttle_key(m) for m in marketplaces]
    if keys:
        r.delete(*keys)


def throttles(r: RedisClient, marketplaces: Sequence[str]) -> dict[str, float]:
    """The throttled marketplaces among ``marketplaces``: marketplace -> seconds between requests."""
    if not marketplaces:
        return {}
    pipe = r.pipeline(transaction=False)
    for marketplace in marketplaces:
        pipe.get(throttle_key(marketplace))
    return {m: float(v) for m, v in zip(marketplaces, pipe.execute(), strict=True) if v is not None}
