"""The worker kit: what a crawler needs to take part in the protocol, and nothing of Airflow.

- ``WorkerClient``: find open tasks, take elements, answer them (rows, empty, failed) per
  the contract, release what it holds on shutdown;
- ``run`` / ``serve``: the loop around a team's ``fetch(element) -> results`` function,
  with graceful SIGTERM, in one or many processes (``python -m crawlops.worker``);
- ``crawlops.worker.scrapy``: the same for a Scrapy spider (``pip install .[scrapy]``);
- ``python -m crawlops.worker.check -- <worker command>``: the contract test a team runs
  against its own worker.
"""

from crawlops.worker.client import Element, Result, Tally, WorkerClient
from crawlops.worker.loop import Fetch, Stop, load_fetch, run, serve

__all__ = ["Element", "Fetch", "Result", "Stop", "Tally", "WorkerClient", "load_fetch", "run", "serve"]
