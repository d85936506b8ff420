"""``python -m crawlops.worker module:fetch [--processes N]``: run a fetch function as workers.

Connection settings come from ``CRAWLOPS_MYSQL_URL`` and ``CRAWLOPS_REDIS_URL``.
"""

from __future__ import annotations

import argparse
import os
import sys

from crawlops.worker.loop import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawlops.worker", description=__doc__)
    parser.add_argument("fetch", help="the fetch function, as package.module:function")
    parser.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="fetches at once per process (default 1)")
    parser.add_argument("--batch", type=int, default=16, help="elements taken per SPOP round (default 16)")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="pause when no task has work (default 2)")
    parser.add_argument(
        "--objects", help="the crawl objects served, comma-separated (default: every one; CRAWLOPS_OBJECTS)"
    )
    args = parser.parse_args(argv)
    if args.objects:
        os.environ["CRAWLOPS_OBJECTS"] = args.objects  # read by each process's client
    return serve(
        args.fetch, processes=args.processes, threads=args.threads, batch=args.batch, poll_seconds=args.poll_seconds
    )


if __name__ == "__main__":
    sys.exit(main())
