"""The worker loop: take a batch, fetch each element, answer it; stop cleanly on SIGTERM.

A crawl team writes one function, ``fetch(element) -> results``: it returns the page's
results, or ``EMPTY`` when the page says there are none (results that are none without it
fail the element as ``nothing_parsed``: a page that parsed to nothing is not an empty
answer), or raises (the element is reported failed with the exception's reason class:
``crawlops.reasons``; ``raise Blocked()`` for a robot-check page, which
``crawlops.reasons.amazon_block`` recognises). ``run`` does the rest, honouring the
throttle supervision sets on a blocked marketplace; ``serve`` runs it in N processes
(``python -m crawlops.worker my_crawler:fetch --processes 4``), ``--objects`` choosing the
crawl objects whose elements it takes (default every one; each element's ``crawl_object``
and fields say what to fetch, its results fill that object's columns).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from crawlops.worker.client import WorkerClient
from crawlops.worker.model import Element, Empty, Result, Tally

log = logging.getLogger(__name__)

Fetch = Callable[[Element], Iterable[Result | Mapping[str, Any]] | Empty]


class Stop:
    """Set by SIGTERM / SIGINT (or by hand): the loop answers what it holds and returns."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self, *_: object) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


@contextlib.contextmanager
def stop_on_signals(stop: Stop) -> Iterator[Stop]:
    """SIGTERM and SIGINT set ``stop`` while inside (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, stop.set) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _attempt(fetch: Fetch, element: Element, client: WorkerClient) -> tuple[Element, list[Any] | Empty | BaseException]:
    try:
        client.pace(element)
        results = fetch(element)
        return element, results if isinstance(results, Empty) else list(results)
    except Exception as exc:  # any failure of the crawler's code is a failed element, never a lost one
        return element, exc


def _answer(client: WorkerClient, element: Element, outcome: list[Any] | Empty | BaseException) -> None:
    if not isinstance(outcome, BaseException):
        try:
            client.answer(element, outcome)
            return
        except ValueError as exc:  # a result that fits no column of the object (ResultError): the crawler's bug
            outcome = exc
    client.fail(element, outcome)


def run(
    fetch: Fetch,
    client: WorkerClient,
    *,
    batch: int = 16,
    threads: int = 1,
    poll_seconds: float = 2.0,
    stop: Stop | None = None,
    max_elements: int | None = None,
    idle_exit: bool = False,
) -> Tally:
    """Work until stopped (SIGTERM, ``stop``), ``max_elements`` were taken, or, with
    ``idle_exit``, no open task has elements left. Whatever was taken and not answered when
    it stops is reported failed (``client.release``), so a stopped worker loses nothing.

    ``threads`` fetches that many elements of a batch at once (for I/O-bound fetches).
    """
    stop = Stop() if stop is None else stop  # (a Stop not yet set is falsy)
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    try:
        with stop_on_signals(stop):
            while not stop:
                want = batch if max_elements is None else min(batch, max_elements - client.tally.taken)
                if want <= 0:
                    break
                elements = client.take(want)
                if not elements:
                    client.flush()
                    if idle_exit:
                        break
                    stop.wait(poll_seconds)
                    continue
                attempts = pool.map(lambda e: _attempt(fetch, e, client), elements) if pool else (
                    _attempt(fetch, e, client) for e in elements
                )  # fmt: skip
                for element, outcome in attempts:
                    _answer(client, element, outcome)
                    if stop:
                        break  # the rest of the batch is released below, as failed
                client.flush()
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
        client.release("worker stopping")
    return client.tally


def load_fetch(spec: str) -> Fetch:
    """``package.module:function`` -> the function."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"expected module:function, got {spec!r}")
    fetch = getattr(importlib.import_module(module), name)
    if not callable(fetch):
        raise TypeError(f"{spec} is not callable")
    return cast(Fetch, fetch)


def _process(spec: str, options: dict[str, Any], objects: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker {os.getpid()} %(levelname)s %(message)s")
    client = WorkerClient.from_env(objects=objects)
    try:
        tally = run(load_fetch(spec), client, **options)
        log.info("stopped: %s", tally)
    finally:
        client.close()


def serve(spec: str, *, processes: int = 1, objects: Sequence[str] | None = None, **options: Any) -> int:
    """Run ``processes`` worker processes of ``fetch`` (``module:function``) until SIGTERM,
    taking elements of the crawl ``objects`` only (default: every one, or ``CRAWLOPS_OBJECTS``).
    Returns the number of processes that exited with an error."""
    if processes <= 1:
        _process(spec, options, objects)
        return 0
    return run_processes(_process, (spec, options, objects), processes, name="crawlops-worker")


def _child(target: Callable[..., None], args: tuple[Any, ...]) -> None:
    os.setpgid(0, 0)  # signals come from the parent, once
    target(*args)


def run_processes(target: Callable[..., None], args: tuple[Any, ...], processes: int, *, name: str) -> int:
    """Run ``target(*args)`` in ``processes`` child processes until they exit.

    The parent forwards SIGTERM / SIGINT to its children and waits for them to answer what
    they hold. Each child runs in a process group of its own, so a signal to the parent's
    group (a terminal's Ctrl-C, ``kill -TERM -<pgid>``) reaches it once, through the parent:
    Scrapy reads a second SIGTERM as "stop now, uncleanly". (Under systemd, use
    ``KillMode=mixed``, which signals the main process only.) Returns the number of children
    that exited with an error.
    """
    import multiprocessing

    children = [
        multiprocessing.Process(target=_child, args=(target, args), name=f"{name}-{n}") for n in range(processes)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid and child.is_alive():
                os.kill(child.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            while child.is_alive():
                child.join(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return sum(1 for child in children if child.exitcode)
