"""The worker kit: what a crawler needs to take part in the protocol, and nothing of Airflow.

- ``WorkerClient``: find open tasks (of every crawl object, or of its ``objects``), take
  elements, answer them (rows in the element's object's results table, ``EMPTY`` when the
  page says so, failed with a reason class) per the contract, heartbeats, throttles,
  release what it holds on shutdown;
- ``Element`` (its object's fields: ``.keyword`` / ``.asin``, ``.marketplace``, ``.page``),
  ``Result`` (its object's columns, checked: ``ResultError``);
- ``Blocked`` / ``Failed`` / ``amazon_block``: fail an element with its reason, recognise
  a robot-check page;
- ``run`` / ``serve``: the loop around a team's ``fetch(element) -> results`` function,
  with graceful SIGTERM, in one or many processes (``python -m crawlops.worker``);
- ``crawlops.worker.scrapy``: the same for a Scrapy spider (``pip install .[scrapy]``);
- ``python -m crawlops.harness.check -- <worker command>``: the contract test a team runs
  against its own worker.
"""

from crawlops.reasons import Blocked, Failed, Reason, amazon_block, markers_detector
from crawlops.worker.client import WorkerClient
from crawlops.worker.loop import Fetch, Stop, load_fetch, run, serve
from crawlops.worker.model import EMPTY, Element, Result, ResultError, Tally

__all__ = [
    "EMPTY", "Blocked", "Element", "Failed", "Fetch", "Reason", "Result", "ResultError", "Stop", "Tally",
    "WorkerClient", "amazon_block", "load_fetch", "markers_detector", "run", "serve",
]  # fmt: skip
