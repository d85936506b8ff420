"""``python -m crawlops.worker module:fetch [--processes N] [--objects NAME,...]``: run a fetch
function as workers.

Connection settings come from ``CRAWLOPS_MYSQL_URL`` and ``CRAWLOPS_REDIS_URL``; ``--objects``
(comma-separated or repeated; default every crawl object, or ``CRAWLOPS_OBJECTS``) chooses
the crawl objects whose elements the workers take.
"""

from __future__ import annotations

import argparse
import os
import sys

from crawlops import objects
from crawlops.worker.loop import load_fetch, serve
from crawlops.worker.model import served_objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawlops.worker", description=__doc__)
    parser.add_argument("fetch", help="the fetch function, as package.module:function")
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="fetches at once per process (default 1)")
    parser.add_argument("--batch", type=int, default=16, help="elements taken per SPOP round (default 16)")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="pause when no task has work (default 2)")
    parser.add_argument(
        "--objects", action="append", metavar="NAME[,NAME...]",
        help="crawl objects served, comma-separated or repeated (default: every one, or CRAWLOPS_OBJECTS; "
        f"shipped: {', '.join(sorted(objects.REGISTRY))})",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        load_fetch(args.fetch)  # first: importing it may register a team's own crawl object
        served = served_objects(args.objects)
    except (ValueError, ImportError, AttributeError, TypeError) as exc:
        parser.error(str(exc))
    if args.objects:  # the command line over the environment; read by each process's client
        os.environ["CRAWLOPS_OBJECTS"] = ",".join(served or objects.REGISTRY)
    return serve(
        args.fetch, processes=args.processes, threads=args.threads, batch=args.batch, poll_seconds=args.poll_seconds
    )


if __name__ == "__main__":
    sys.exit(main())
