"""Crawler liveness: which kit workers are alive, and an alert when work waits and none is.

Kit workers beat a heartbeat into the crawl Redis (``crawlops.telemetry``: worker id, host,
pid, crawl objects, elements held, answered, empty and failed counts, last seen). Every
5-minute run reads who was seen in the last ``fleet_lookback_seconds``:

- ERROR ``fleet_down`` when elements wait in open tasks and no worker has been seen for
  ``worker_silence_seconds`` (a fleet that died shows at once, not after ``stall_seconds``);
- WARNING ``fleet_shrunk`` when, with work waiting, ``fleet_shrink_share`` or more of the
  workers seen in the lookback went silent.

Heartbeats are wall-clock facts: a backfilled run for a past window records the fleet as it
is now and judges nothing. Workers without the kit beat nothing and are judged by queue
progress (``task_stalled``) as before; a Redis where no worker ever beat is not judged.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crawlops import queue, telemetry
from crawlops.findings import Finding, Level
from crawlops.names import SUPERVISION_DAG as SOURCE
from crawlops.queue import RedisClient
from crawlops.settings import Settings

CHECKS = ("fleet_down", "fleet_shrunk")
_SHOWN = 5  # workers named in a finding


def check_fleet(r: RedisClient, settings: Settings, reference: dt.datetime) -> tuple[dict[str, Any], list[Finding]]:
    """The fleet as its heartbeats show it now, and what is wrong with it (see the module)."""
    limits = settings.crawlers
    now = dt.datetime.now(dt.UTC)
    known = telemetry.workers_seen(r, now - dt.timedelta(seconds=telemetry.WORKER_FORGET_SECONDS))
    recent = [w for w in known if w.last_seen >= now - dt.timedelta(seconds=limits.fleet_lookback_seconds)]
    alive = [w for w in recent if w.last_seen >= now - dt.timedelta(seconds=limits.worker_silence_seconds)]
    silent = [w for w in recent if w not in alive]
    open_ids = sorted(queue.open_index(r))
    sizes = queue.task_set_sizes(r, open_ids)
    queued = sum(sizes[::3])
    live = reference.astimezone(dt.UTC) >= now - dt.timedelta(seconds=max(limits.worker_silence_seconds, 600))
    details: dict[str, Any] = {
        "judged": bool(live and known),
        "alive": len(alive),
        "silent": len(silent),
        "queued": queued,
        "open_tasks": len(open_ids),
        "workers": [w.to_json() for w in recent],
    }
    if not details["judged"] or not queued:
        return details, []
    findings = []
    if not alive:
        last = known[0]
        findings.append(
            Finding(
                Level.ERROR,
                SOURCE,
                "fleet_down",
                f"no crawler worker seen for {limits.worker_silence_seconds} s while {queued} elements wait in "
                f"{len(open_ids)} open tasks",
                subject="fleet",
                details={**details, "last_seen": last.to_json()},
                action=f"none automatic: restart the crawler fleet (last seen: {_name(last)} at "
                f"{last.last_seen:%Y-%m-%d %H:%M:%S} UTC); its unanswered elements are retried after the grace",
            )
        )
    elif len(recent) >= 2 and len(silent) / len(recent) >= limits.fleet_shrink_share:
        findings.append(
            Finding(
                Level.WARNING,
                SOURCE,
                "fleet_shrunk",
                f"{len(silent)} of {len(recent)} crawler workers went silent in the last "
                f"{limits.fleet_lookback_seconds // 60} min; {len(alive)} alive, {queued} elements waiting",
                subject="fleet",
                details=details,
                action="none automatic: silent workers: " + ", ".join(_name(w) for w in silent[:_SHOWN]),
            )
        )
    return details, findings


def _name(worker: telemetry.Worker) -> str:
    """The worker's id: host, pid and a token of its own (``host:pid:token``)."""
    return worker.worker_id
